"""Rescale: arithmetic with constants, ``x * scale + shift`` (``q * 0.125``, ``x / 8``, ``16 * sigmoid(x)``,
``1 - x``, ``x + 3``).

Hand-written attention scales its queries by a number (``q * self.scale``), CaiT and LeViT multiply
their logits, Swin V2 its bias table by 16. The output has the input's shape; no parameters; MACs 0,
as FlopCounterMode counts a multiplication by a number (no weights). Division by ``c`` is written as
``scale: 1 / c`` (the two agree within a rounding of the last bit). torch.nn has no such class:
verify builds its own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import IDENTITY, Layer, Shape, as_float, register, table
from .dims import number


@register("Rescale")
@dataclass(frozen=True)
class Rescale(Layer):
    """``x * scale + shift`` with numbers ``scale`` and ``shift``."""

    scale: float = 1.0
    shift: float = 0.0

    PARAMS: ClassVar[dict[str, Any]] = {"scale": 1.0, "shift": 0.0}
    PRESERVES_SHAPE: ClassVar[bool] = True
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Rescale:
        return cls(type_name=type_name, scale=as_float(type_name, "scale", kw["scale"]), shift=as_float(type_name, "shift", kw["shift"]))

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return ()

    def describe(self) -> str:
        parts = [] if self.scale == 1 else [f"×{number(self.scale)}"]
        if self.shift:
            parts.append(f"{'+' if self.shift > 0 else '−'}{number(abs(self.shift))}")
        return " ".join(parts) or "×1"


LAYERS = table(Rescale)
