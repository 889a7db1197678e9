"""Conv1d/2d/3d (and the base they share with ConvTranspose): torch's rules, shapes, parameters, MACs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import formulas
from ..errors import ErrorKind, ShapeError, SpecError
from .base import (
    REQUIRED,
    Layer,
    Shape,
    as_bool,
    as_choice,
    as_int,
    as_tuple,
    batch_of,
    channels_of,
    product,
    register,
    spatial_dims,
    table,
)
from .spatial import Sliding, Spatial, compact

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class _ConvBase(Spatial):
    """What Conv and ConvTranspose share: channels, groups, bias, kernel."""

    TAKES_CHANNELS: ClassVar[bool] = True

    in_channels: int | None = None
    out_channels: int = 1
    kernel_size: tuple[int, ...] = (1,)
    stride: tuple[int, ...] = (1,)
    dilation: tuple[int, ...] = (1,)
    groups: int = 1
    bias: bool = True

    @classmethod
    def _common(cls, type_name: str, kw: dict[str, Any]) -> dict[str, Any]:
        dims = spatial_dims(type_name)
        groups = kw["groups"]
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise SpecError(f"{type_name}: groups must be a positive integer, got {groups!r}", layer=type_name)
        values = {
            "type_name": type_name,
            "dims": dims,
            "in_channels": None if kw["in_channels"] is None else as_int(type_name, "in_channels", kw["in_channels"]),
            "out_channels": as_int(type_name, "out_channels", kw["out_channels"]),
            "kernel_size": as_tuple(type_name, "kernel_size", kw["kernel_size"], dims),
            "stride": as_tuple(type_name, "stride", kw["stride"], dims),
            "dilation": as_tuple(type_name, "dilation", kw["dilation"], dims),
            "groups": groups,
            "bias": as_bool(type_name, "bias", kw["bias"]),
        }
        for name in ("in_channels", "out_channels"):
            count = values[name]
            if count is not None and count % groups:
                good = [g for g in range(1, min(count, 64) + 1) if count % g == 0]
                raise SpecError(
                    f"{type_name}: {name} must be divisible by groups ({name} {count}, groups {groups});"
                    f" groups that divide {count}: {', '.join(map(str, good[:8]))}",
                    layer=type_name,
                )
        return values

    def bind(self, shape: Sequence[int]) -> Layer:
        return self._bind_checked(self.check_input(shape))

    def _bind_checked(self, shape: Shape) -> Layer:
        """:meth:`bind` for a shape ``check_input`` has already passed."""
        _, channels = channels_of(shape, self.dims)
        if self.in_channels is None:
            if channels % self.groups:
                raise self.error(
                    f"the input has {channels} channels, which groups={self.groups} does not divide"
                    f" (in_channels must be divisible by groups)"
                )
            return self.with_values(in_channels=channels)
        if channels != self.in_channels:
            raise self.error(
                f"expects in_channels = {self.in_channels}, but the input {list(shape)} has {channels} channels",
                ErrorKind.CHANNELS,
                numbers={"in_channels": self.in_channels, "channels": channels},
                fix=f"use in_channels: {channels} (or make the previous layer produce {self.in_channels})",
            )
        return self

    def _known_in_channels(self) -> int:
        if self.in_channels is None:
            raise self.error("in_channels is not known yet: give in_channels or an input shape")
        return self.in_channels

    def _check_channels(self, shape: Shape) -> None:
        """The channel rules of :meth:`bind`, on a shape already checked (the hot path: no copy
        of the layer when in_channels is known)."""
        if self.in_channels is None or shape[-self.dims - 1] != self.in_channels:  # else: they agree
            self._bind_checked(shape)

    def describe(self) -> str:
        parts = [f"k={compact(self.kernel_size)}", f"s={compact(self.stride)}", f"p={compact(self.padding_value)}"]
        if any(d != 1 for d in self.dilation):
            parts.append(f"d={compact(self.dilation)}")
        if self.groups != 1:
            parts.append(f"g={self.groups}")
        return " ".join(parts)

    @property
    def padding_value(self) -> tuple[int, ...] | str:
        raise NotImplementedError

    def _bias_params(self) -> int:
        return self.out_channels if self.bias else 0


@register("Conv1d", "Conv2d", "Conv3d")
@dataclass(frozen=True)
class Conv(_ConvBase, Sliding):
    """``nn.Conv{1,2,3}d``: out = floor((in + 2p − d(k−1) − 1)/s) + 1 per axis."""

    padding: tuple[int, ...] | str = (0,)
    padding_mode: str = "zeros"

    PARAMS: ClassVar[dict[str, Any]] = {
        "in_channels": None,
        "out_channels": REQUIRED,
        "kernel_size": REQUIRED,
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "groups": 1,
        "bias": True,
        "padding_mode": "zeros",
    }

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Conv:
        values = cls._common(type_name, kw)
        dims = values["dims"]
        mode = as_choice(type_name, "padding_mode", kw["padding_mode"], PADDING_MODES)
        padding = kw["padding"]
        if isinstance(padding, str):
            padding = as_choice(type_name, "padding", padding, ("same", "valid"))
            if padding == "same" and any(s != 1 for s in values["stride"]):
                raise SpecError(
                    f"{type_name}: padding='same' is not supported for strided convolutions"
                    f" (stride {compact(values['stride'])}); use stride 1, or a number: padding"
                    f" {compact(tuple(d * (k - 1) // 2 for k, d in zip(values['kernel_size'], values['dilation'])))}"
                    " keeps the size at stride 1",
                    layer=type_name,
                )
        else:
            # torch rejects negative padding in zeros mode; the other modes crop with F.pad.
            padding = as_tuple(type_name, "padding", padding, dims, minimum=0 if mode == "zeros" else None)
        return cls(padding=padding, padding_mode=mode, **values)

    @property
    def padding_value(self) -> tuple[int, ...] | str:
        return self.padding

    def explain_head(self) -> list[str]:
        lines = []
        if self.padding == "same":
            lines.append("padding='same': total padding d×(k−1) per axis, the odd one on the right/bottom")
        if self.padding_mode != "zeros" and any(pl or pr for pl, pr in self.pads()):
            what = {"reflect": "mirrors the input without repeating its edge", "replicate": "repeats the edge value", "circular": "wraps around to the other side"}
            lines.append(f"padding_mode='{self.padding_mode}': the padding ({formulas.PAD_MARKS[self.padding_mode]}) {what[self.padding_mode]}, not zeros")
        return lines

    @property
    def pad_mode(self) -> str:
        return self.padding_mode

    def describe(self) -> str:
        text = super().describe()
        return text if self.padding_mode == "zeros" else f"{text} padding_mode={self.padding_mode}"

    def pads(self) -> list[tuple[int, int]]:
        """(left, right) padding per axis, with 'same' and 'valid' resolved."""
        if self.padding == "same":
            return [formulas.same_padding(k, d) for k, d in zip(self.kernel_size, self.dilation)]
        if self.padding == "valid":
            return [(0, 0)] * self.dims
        return [(p, p) for p in self.padding]

    def _output(self, shape: Shape) -> Shape:
        self._check_channels(shape)
        sizes = self.spatial_sizes(self.spatial(shape))
        if sizes is not None:
            return self.replace_spatial(shape, sizes, self.out_channels)
        axes = self.geometry(shape)
        for axis in axes:
            self._check_padding_mode(axis)
            if axis.padded < axis.span:
                raise self._too_small(axis)
        return self.replace_spatial(shape, tuple(axis.output for axis in axes), self.out_channels)

    def shortcut(self) -> bool:
        return self.padding_mode == "zeros"  # the other modes have limits, checked on the geometry

    def _check_padding_mode(self, axis: formulas.SlidingAxis) -> None:
        limit = formulas.pad_limit(self.padding_mode, axis.size, axis.pad_left, axis.pad_right)
        if limit is None:
            return
        pad = max(axis.pad_left, axis.pad_right)
        rule, smallest = formulas.pad_limit_rule(self.padding_mode, pad, axis.size)
        raise self.error(
            f"{self.padding_mode} {rule}",
            ErrorKind.PADDING,
            axis=axis.name,
            numbers={"padding": pad, "input": axis.size, "max_padding": limit, "smallest_input": smallest},
            fix=f"use padding ≤ {limit} or an input of at least {smallest}",
        )

    def _too_small(self, axis: formulas.SlidingAxis) -> ShapeError:
        pl, pr = axis.pad_left, axis.pad_right
        pad_text = f"2×{pl}" if pl == pr else f"{pl}+{pr}"
        numbers = {"kernel": axis.kernel, "span": axis.span, "padded_input": axis.padded, "input": axis.size,
                   "smallest_input": axis.smallest_input()}
        fix = f"use an input of at least {axis.smallest_input()}"
        if self.padding not in ("same", "valid"):
            fix += f" or padding ≥ {axis.padding_to_fit()}"
            numbers["padding_to_fit"] = axis.padding_to_fit()
        return self.error(
            f"kernel {axis.kernel} (dilated: {axis.span}) is larger than the padded input {axis.padded}"
            f" (input {axis.size} + {pad_text} padding)",
            ErrorKind.TOO_SMALL,
            axis=axis.name,
            numbers=numbers,
            fix=fix,
        )

    def solve_padding(self, shape: Shape, want: Sequence[int]) -> dict[str, tuple[int, ...]] | None:
        """The numeric padding that makes this stride-1 conv give the spatial size ``want``, or None."""
        if isinstance(self.padding, str):
            return None
        padding = []
        for axis, size in zip(self.geometry(shape), want):
            found = axis.padding_for(size) if axis.output != size else axis.pad_left
            if found is None:
                return None
            padding.append(found)
        return {"padding": tuple(padding)}

    @property
    def num_params(self) -> int:
        c_in = self._known_in_channels()
        return self.out_channels * (c_in // self.groups) * product(self.kernel_size) + self._bias_params()

    def macs(self, shape: Sequence[int]) -> int:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        c_in = channels_of(shape, self.dims)[1]
        return (
            batch_of(shape, self.dims)
            * product(self.spatial(out))
            * self.out_channels
            * (c_in // self.groups)
            * product(self.kernel_size)
        )


LAYERS = table(Conv)
