"""ConvTranspose1d/2d/3d: torch's rules, shapes, parameters and MACs (over input positions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import formulas
from ..errors import SpecError
from .base import REQUIRED, Shape, as_tuple, batch_of, channels_of, product, register
from .conv import _ConvBase
from .spatial import compact


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

    def _output(self, shape: Shape) -> Shape:
        self._check_channels(shape)
        sizes = []
        for axis, size, k, s, p, d, op in zip(
            self.axes, self.spatial(shape), self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding
        ):
            out = formulas.tconv_out(size, k, s, p, d, op)
            if out < 1:
                # (in−1)s + d(k−1) + op + 1 − 2p ≥ 1  ⇔  p ≤ ((in−1)s + d(k−1) + op) / 2
                max_pad = ((size - 1) * s + d * (k - 1) + op) // 2
                raise self.error(
                    f"{self.axis_prefix(axis)}the output size ({size} − 1)×{s} − 2×{p} + {d}×({k}−1) + {op} + 1 = {out}"
                    f" is too small; use padding ≤ {max_pad} or a larger input"
                )
            sizes.append(out)
        return self.replace_spatial(shape, tuple(sizes), self.out_channels)

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
        shape = self.check_input(shape)
        return [
            formulas.explain_tconv(axis, size, k, s, p, d, op)
            for axis, size, k, s, p, d, op in zip(
                self.axes, self.spatial(shape), self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding
            )
        ]
