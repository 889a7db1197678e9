"""MaxUnpool1d/2d/3d: the inverse of max pooling, scattering each value back to its index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import REQUIRED, Shape, register, table
from .spatial import Spatial, compact, pooling_window


@register("MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d")
@dataclass(frozen=True)
class MaxUnpool(Spatial):
    """``out = (in − 1)·stride − 2·padding + kernel`` per axis, as torch's default output size.

    The layer takes (values, indices) of a max pool with return_indices=True; the indices have the
    values' shape, and the output is read from the values' shape. An ``output_size`` given at call
    time overrides the formula, which convcalc cannot see.
    """

    kernel_size: tuple[int, ...] = (1,)
    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] = (0,)

    PARAMS: ClassVar[dict[str, Any]] = {"kernel_size": REQUIRED, "stride": None, "padding": 0}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> MaxUnpool:
        dims, kernel, stride, padding = pooling_window(type_name, kw)
        return cls(type_name=type_name, dims=dims, kernel_size=kernel, stride=stride, padding=padding)

    def torch_kwargs(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def _output(self, shape: Shape) -> Shape:
        sizes = []
        for axis, size, k, s, p in zip(self.axes, self.spatial(shape), self.kernel_size, self.stride, self.padding):
            out = (size - 1) * s - 2 * p + k
            if out < 1:
                smallest = -(-(2 * p - k + 1) // s) + 1
                raise self.error(
                    f"{self.axis_prefix(axis)}output ({size} − 1)×{s} − 2×{p} + {k} = {out} is not a size;"
                    f" use an input of at least {smallest} or padding ≤ {max(0, ((size - 1) * s + k - 1) // 2)}"
                )
            sizes.append(out)
        return self.replace_spatial(shape, tuple(sizes))

    def describe(self) -> str:
        return f"k={compact(self.kernel_size)} s={compact(self.stride)} p={compact(self.padding)}"


LAYERS = table(MaxUnpool)
