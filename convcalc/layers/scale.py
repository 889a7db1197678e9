"""Scale and Bias: an input multiplied by, or added to, a learned tensor broadcast against it.

``Scale`` is ``x * weight`` (ConvNeXt's ``layer_scale``, timm's ``LayerScale``/``gamma``); ``Bias`` is
``x + weight`` (a Vision Transformer's learned position embedding, ``x + self.pos_embedding`` of
shape ``[1, 197, 768]``). Both broadcast as torch does: the weight's sizes align with the input's
from the right, each equal or 1 (``[96, 1, 1]`` acts on each channel of an N×96×H×W map, ``[96]`` on
the last dimension of an N×H×W×96 one, ``[]`` is one learned number: ``nn.Parameter(torch.tensor(0.5))``).
The parameters are the weight's elements. MACs count 0: the product or sum is elementwise, and MACs are
those of the weights in matrix products and convolutions — what FlopCounterMode counts (0 for ``x * w``
and ``x + w``), as for BatchNorm's affine part, Multiply and Add. torch has no ``nn.Scale`` or
``nn.Bias``: verify builds its own module for each, a ``weight`` parameter of ``shape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import SpecError
from .base import (
    IDENTITY,
    REQUIRED,
    UNKNOWN,
    Layer,
    Roles,
    Shape,
    as_int,
    product,
    register,
    table,
)
from .dims import Mismatch, broadcast, shape_text, times


def _weight_shape(type_name: str, value: Any, noun: str, example: str) -> tuple[int, ...]:
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise SpecError(f"{type_name}: shape must be the {noun}'s sizes, such as {example}, got {value!r}", layer=type_name)
    values = value if isinstance(value, (list, tuple)) else [value]
    return tuple(as_int(type_name, "shape", v) for v in values)


@dataclass(frozen=True)
class Broadcast(Layer):
    """``x ∘ weight`` for an elementwise ``∘``, ``weight`` an ``nn.Parameter`` of ``shape`` broadcast
    against the input (the shared rules of Scale and Bias)."""

    shape: tuple[int, ...] = (1,)

    PARAMS: ClassVar[dict[str, Any]] = {"shape": REQUIRED}
    OWN_MODULE: ClassVar[bool] = True
    #: What the family's messages and descriptions call its weight, and a shape to show as an example.
    NOUN: ClassVar[str] = "weight"
    EXAMPLE: ClassVar[str] = "[96, 1, 1] (per channel of an N×96×H×W input)"

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Broadcast:
        return cls(type_name=type_name, shape=_weight_shape(type_name, kw["shape"], cls.NOUN, cls.EXAMPLE))

    def torch_kwargs(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def _output(self, shape: Shape) -> Shape:
        out = broadcast([self.shape, shape])
        if isinstance(out, Mismatch):
            weight, given = out.sizes
            # the weight that fits: each size not 1 that meets an input dimension takes that dimension's size
            fit = [s if s == 1 or len(self.shape) - j > len(shape) else shape[j - len(self.shape)] for j, s in enumerate(self.shape)]
            raise self.error(
                f"the {self.NOUN} {list(self.shape)} and the input {shape_text(shape)} differ in dimension {out.dim}"
                f" ({weight} vs {given}) and neither is 1, so they cannot be broadcast; use shape: {fit}"
            )
        return out

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """The input's axes keep their roles; a weight with more dimensions adds unknown ones in front."""
        return (UNKNOWN,) * (len(out) - len(shape)) + tuple(roles)

    @property
    def num_params(self) -> int:
        return product(self.shape)

    def window(self, shape: Shape) -> str | None:
        """Value by value, even where the weight varies along a spatial axis (a position embedding):
        each output value reads the input value at its own position only."""
        return IDENTITY if self.output_shape(shape) == tuple(shape) else None

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return () if self.window(shape) == IDENTITY else None

    def describe(self) -> str:
        return f"{self.NOUN} " + (times(self.shape) if self.shape else "scalar")

    def explain(self, shape: Sequence[int]) -> list[str]:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        broadcast = f"the {self.NOUN} {shape_text(self.shape)} broadcast against {shape_text(shape)} (sizes from the right, each equal or 1)"
        return [f"{broadcast}: {shape_text(out)}; {product(self.shape)} parameters"]


@register("Scale")
@dataclass(frozen=True)
class Scale(Broadcast):
    """``x * weight``, ``weight`` an ``nn.Parameter`` of ``shape`` broadcast against the input."""


@register("Bias")
@dataclass(frozen=True)
class Bias(Broadcast):
    """``x + weight``, ``weight`` an ``nn.Parameter`` of ``shape`` broadcast against the input (a learned
    position embedding)."""

    NOUN: ClassVar[str] = "bias"
    EXAMPLE: ClassVar[str] = "[1, 197, 768] (a position embedding of an N×197×768 input)"


LAYERS = table(Scale, Bias)
