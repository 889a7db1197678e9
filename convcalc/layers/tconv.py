"""ConvTranspose1d/2d/3d: torch's rules, shapes, parameters and MACs (over input positions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from .. import formulas
from ..errors import ErrorKind, SpecError
from .base import (
    REQUIRED,
    Shape,
    as_tuple,
    batch_of,
    channels_of,
    product,
    register,
    table,
)
from .conv import _ConvBase
from .spatial import axis_pictures, compact


@register("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
@dataclass(frozen=True)
class ConvTranspose(_ConvBase):
    """``nn.ConvTranspose{1,2,3}d``: out = (in − 1)s − 2p + d(k−1) + output_padding + 1."""

    padding: tuple[int, ...] = (0,)
    output_padding: tuple[int, ...] = (0,)
    padding_mode: str = "zeros"

    PARAMS: ClassVar[dict[str, Any]] = {
        "in_channels": None,
        "out_channels": REQUIRED,
        "kernel_size": REQUIRED,
        "stride": 1,
        "padding": 0,
        "output_padding": 0,
        "groups": 1,
        "bias": True,
        "dilation": 1,
        "padding_mode": "zeros",
    }

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> ConvTranspose:
        values = cls._common(type_name, kw)
        dims = values["dims"]
        if kw["padding_mode"] != "zeros":
            raise SpecError(
                f'{type_name}: only padding_mode "zeros" is supported for {type_name}, got {kw["padding_mode"]!r}',
                layer=type_name,
            )
        if isinstance(kw["padding"], str):
            raise SpecError(
                f"{type_name}: padding must be a number (or one per axis); 'same' and 'valid' exist only for"
                f" Conv{dims}d, got {kw['padding']!r}",
                layer=type_name,
            )
        padding = as_tuple(type_name, "padding", kw["padding"], dims, minimum=0)
        output_padding = as_tuple(type_name, "output_padding", kw["output_padding"], dims, minimum=0)
        for op, s, d in zip(output_padding, values["stride"], values["dilation"]):
            if op >= s and op >= d:
                raise SpecError(
                    f"{type_name}: output_padding {op} must be smaller than either stride ({s}) or dilation ({d});"
                    f" use output_padding ≤ {max(s, d) - 1}",
                    layer=type_name,
                )
        return cls(padding=padding, output_padding=output_padding, padding_mode="zeros", **values)

    @property
    def padding_value(self) -> tuple[int, ...]:
        return self.padding

    def describe(self) -> str:
        text = super().describe()
        if any(self.output_padding):
            text += f" op={compact(self.output_padding)}"
        return text

    SLIDING_WINDOW: ClassVar[bool] = True

    @cached_property
    def axis_rules(self) -> tuple[tuple[int, int, int, int, int], ...]:
        """Per axis, what :func:`formulas.tconv_out` takes after the size: (kernel, stride,
        padding, dilation, output_padding)."""
        return tuple(zip(self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding))

    @cached_property
    def _axis_columns(self) -> tuple[tuple[int, ...], ...]:
        """The per-axis arguments of :func:`formulas.tconv_out` as columns (kernels, strides, …)."""
        return tuple(zip(*self.axis_rules))

    def spatial_sizes(self, spatial: Shape) -> Shape | None:
        """Every axis's output (:func:`formulas.tconv_out`, one C-level ``map``), or None where
        one is below 1 (then ``_output`` says why)."""
        sizes = tuple(map(formulas.tconv_out, spatial, *self._axis_columns))
        return sizes if min(sizes) >= 1 else None

    def geometry(self, shape: Sequence[int]) -> tuple[formulas.ScatterAxis, ...]:
        """One :class:`formulas.ScatterAxis` per spatial axis of ``shape`` (the scatter view)."""
        return tuple(
            formulas.scatter_axis(axis, size, *rule) for axis, size, rule in zip(self.axes, tuple(shape)[-self.dims :], self.axis_rules)
        )

    def _output(self, shape: Shape) -> Shape:
        self._check_channels(shape)
        sizes = self.spatial_sizes(self.spatial(shape))
        if sizes is not None:
            return self.replace_spatial(shape, sizes, self.out_channels)
        axes = self.geometry(shape)
        for axis in axes:
            if axis.output < 1:
                raise self.error(
                    f"the output size ({axis.size} − 1)×{axis.stride} − 2×{axis.padding}"
                    f" + {axis.dilation}×({axis.kernel}−1) + {axis.output_padding} + 1 = {axis.output} is too small",
                    ErrorKind.TOO_SMALL,
                    axis=axis.name,
                    numbers={"output": axis.output, "padding": axis.padding, "max_padding": axis.max_padding()},
                    fix=f"use padding ≤ {axis.max_padding()} or a larger input",
                )
        return self.replace_spatial(shape, tuple(axis.output for axis in axes), self.out_channels)

    def solve_padding(self, shape: Shape, want: Sequence[int]) -> dict[str, tuple[int, ...]] | None:
        """The padding/output_padding closest to the current ones that give the spatial size ``want``."""
        padding, output_padding = [], []
        for axis, size in zip(self.geometry(shape), want):
            found = axis.adjust(size - axis.output) if size != axis.output else (axis.padding, axis.output_padding)
            if found is None:
                return None
            padding.append(found[0])
            output_padding.append(found[1])
        return {"padding": tuple(padding), "output_padding": tuple(output_padding)}

    @property
    def num_params(self) -> int:
        c_in = self._known_in_channels()
        return c_in * (self.out_channels // self.groups) * product(self.kernel_size) + self._bias_params()

    def macs(self, shape: Sequence[int]) -> int:
        """Counted over input positions: each input pixel meets every kernel weight once."""
        shape = self.check_input(shape)
        self.output_shape(shape)
        c_in = channels_of(shape, self.dims)[1]
        return (
            batch_of(shape, self.dims)
            * product(self.spatial(shape))
            * c_in
            * (self.out_channels // self.groups)
            * product(self.kernel_size)
        )

    def window(self, shape: Shape) -> None:
        return None  # a fractional stride: the receptive field stops being defined

    def explain(self, shape: Sequence[int]) -> list[str]:
        axes = self.geometry(self.check_input(shape))
        head = formulas.formula_lines("scatter", dilated=any(d != 1 for d in self.dilation), output_padding=any(self.output_padding))
        return head + [axis.explain() for axis in axes] + axis_pictures(axes, lambda axis: axis.picture())


LAYERS = table(ConvTranspose)
