"""Scale: an input multiplied by a learned tensor (ConvNeXt's ``layer_scale``, timm's ``LayerScale``/``gamma``).

``x * weight`` with torch's broadcasting: the weight's sizes align with the input's from the right,
each equal or 1 (``[96, 1, 1]`` scales each channel of an N×96×H×W map, ``[96]`` the last dimension
of an N×H×W×96 one, ``[]`` is one learned number: ``nn.Parameter(torch.tensor(0.5))``). The parameters are the weight's elements. MACs count 0: the multiplication is
elementwise, and MACs are those of the weights in matrix products and convolutions — what
FlopCounterMode counts (0 for ``x * w``), as for BatchNorm's affine part and Multiply. torch has no
``nn.Scale``: verify builds its own module, a ``weight`` parameter of ``shape``.
"""

from __future__ import annotations

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


def _weight_shape(type_name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise SpecError(
            f"{type_name}: shape must be the weight's sizes, such as [96, 1, 1] (per channel of an N×96×H×W input), got {value!r}",
            layer=type_name,
        )
    values = value if isinstance(value, (list, tuple)) else [value]
    return tuple(as_int(type_name, "shape", v) for v in values)


@register("Scale")
@dataclass(frozen=True)
class Scale(Layer):
    """``x * weight``, ``weight`` an ``nn.Parameter`` of ``shape`` broadcast against the input."""

    shape: tuple[int, ...] = (1,)

    PARAMS: ClassVar[dict[str, Any]] = {"shape": REQUIRED}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Scale:
        return cls(type_name=type_name, shape=_weight_shape(type_name, kw["shape"]))

    def torch_kwargs(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def _output(self, shape: Shape) -> Shape:
        out = broadcast([self.shape, shape])
        if isinstance(out, Mismatch):
            weight, given = out.sizes
            # the weight that fits: each size not 1 that meets an input dimension takes that dimension's size
            fit = [s if s == 1 or len(self.shape) - j > len(shape) else shape[j - len(self.shape)] for j, s in enumerate(self.shape)]
            raise self.error(
                f"the weight {list(self.shape)} and the input {shape_text(shape)} differ in dimension {out.dim}"
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
        return IDENTITY if self.output_shape(shape) == tuple(shape) else None

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return () if self.window(shape) == IDENTITY else None

    def describe(self) -> str:
        return "weight " + (times(self.shape) if self.shape else "scalar")


LAYERS = table(Scale)
