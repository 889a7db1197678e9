"""Normalization layers: BatchNorm, InstanceNorm, GroupNorm, LayerNorm, RMSNorm, LocalResponseNorm.

They keep the shape. What torch checks, and what convcalc checks with it:
- the input rank (BatchNorm2d takes 4-D only, InstanceNorm2d 3-D or 4-D …);
- the channel count against ``num_features`` — but only where torch has a tensor of that size
  to compare with (affine weights, running statistics). Without them torch never looks;
- batch statistics from a single value per channel (torch raises ValueError).

Verdicts follow the module in ``eval()`` mode, as ``torchinfo`` and ``convcalc verify`` run it.
What fails only while training (BatchNorm on a batch of one) comes back from ``warnings()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from .base import (
    IDENTITY,
    REQUIRED,
    Layer,
    Roles,
    Shape,
    as_bool,
    as_float,
    as_int,
    product,
    register,
    spatial_dims,
    table,
)
from .dims import number, shape_text, times


def _eps(type_name: str, value: Any) -> float:
    return as_float(type_name, "eps", value)


def _momentum(type_name: str, value: Any) -> float | None:
    return None if value is None else as_float(type_name, "momentum", value)


def _features(type_name: str, name: str, value: Any) -> int | None:
    return None if value is None else as_int(type_name, name, value)


@dataclass(frozen=True)
class _ChannelNorm(Layer):
    """What BatchNorm and InstanceNorm share: per-channel affine weights and running statistics."""

    TAKES_CHANNELS: ClassVar[bool] = True

    PRESERVES_SHAPE: ClassVar[bool] = True

    dims: int = 2
    num_features: int | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    bias: bool = True

    @classmethod
    def _values(cls, type_name: str, kw: dict[str, Any]) -> dict[str, Any]:
        return {
            "type_name": type_name,
            "dims": spatial_dims(type_name),
            "num_features": _features(type_name, "num_features", kw["num_features"]),
            "eps": _eps(type_name, kw["eps"]),
            "momentum": _momentum(type_name, kw["momentum"]),
            "affine": as_bool(type_name, "affine", kw["affine"]),
            "track_running_stats": as_bool(type_name, "track_running_stats", kw["track_running_stats"]),
            "bias": as_bool(type_name, "bias", kw["bias"]),
        }

    # -- the channel axis ---------------------------------------------------------------
    def channel_axis(self, shape: Shape) -> int:
        raise NotImplementedError

    @property
    def checks_channels(self) -> bool:
        """Whether torch holds a per-channel tensor to compare the input's channels with."""
        return self.affine or self.track_running_stats

    def bind(self, shape: Sequence[int]) -> Layer:
        shape = self.check_input(shape)
        channels = shape[self.channel_axis(shape)]
        if self.num_features is None:
            return self.with_values(num_features=channels)
        if channels != self.num_features and self.checks_channels:
            raise self.error(
                f"expects num_features = {channels} (the channels, dimension {self.channel_axis(shape)} of the"
                f" input {shape_text(shape)}), but the spec says {self.num_features}; use num_features: {channels}"
                f" (or leave it out: it is inferred)",
                ErrorKind.CHANNELS,
            )
        return self

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        return shape

    @property
    def num_params(self) -> int:
        if not self.affine:
            return 0
        if self.num_features is None:
            raise self.error("num_features is not known yet: give num_features or an input shape")
        return self.num_features * (2 if self.bias else 1)

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def describe(self) -> str:
        parts = [] if self.num_features is None else [str(self.num_features)]
        if self.eps != 1e-5:
            parts.append(f"eps={self.eps:g}")
        if not self.affine:
            parts.append("no affine")
        elif not self.bias:
            parts.append("no bias")
        if self.track_running_stats != self.PARAMS["track_running_stats"]:
            parts.append("running stats" if self.track_running_stats else "no running stats")
        return " ".join(parts)

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        shape = self.check_input(shape)
        lines = []
        if self.num_features is not None and not self.checks_channels:
            channels = shape[self.channel_axis(shape)]
            if channels != self.num_features:
                lines.append(
                    f"{self.type_name}: num_features {self.num_features} differs from the input's {channels}"
                    " channels; torch ignores it here (no affine weights, no running statistics)"
                )
        return lines


@register("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
@dataclass(frozen=True)
class BatchNorm(_ChannelNorm):
    """``nn.BatchNorm{1,2,3}d``: statistics per channel over the batch and every position."""

    PARAMS: ClassVar[dict[str, Any]] = {
        "num_features": None,
        "eps": 1e-5,
        "momentum": 0.1,
        "affine": True,
        "track_running_stats": True,
        "bias": True,
    }

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> BatchNorm:
        layer = cls(**cls._values(type_name, kw))
        if layer.eps < 0:
            raise SpecError(f"{type_name}: eps must not be negative, got {layer.eps:g}; use e.g. eps: 1e-05", layer=type_name)
        if layer.eps == 0 and not layer.track_running_stats:
            raise SpecError(
                f"{type_name}: eps must be positive when statistics come from the batch"
                " (track_running_stats: false); use e.g. eps: 1e-05",
                layer=type_name,
            )
        return layer

    def ranks(self) -> tuple[int, ...]:
        return (2, 3) if self.dims == 1 else (self.dims + 2,)

    def _rank_message(self, shape: Shape) -> str:
        if self.dims == 1:
            want = "a 2-D (N, C) or 3-D (N, C, L) input"
        else:
            want = f"a {self.dims + 2}-D (N, C, {', '.join('DHW'[3 - self.dims:])}) input; there is no unbatched form"
        return f"expects {want}, got {len(shape)}-D {shape_text(shape)}"

    def channel_axis(self, shape: Shape) -> int:
        return 1

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        if not self.track_running_stats and self._values_per_channel(shape) == 1:
            raise self.error(
                f"the input {shape_text(shape)} has one value per channel; statistics from the batch"
                " (track_running_stats: false) need more than 1 — use a batch of at least 2"
            )
        return shape

    @staticmethod
    def _values_per_channel(shape: Shape) -> int:
        return shape[0] * product(shape[2:])

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        lines = super().warnings(shape, roles)
        shape = self.check_input(shape)
        if self.track_running_stats and self._values_per_channel(shape) == 1:
            lines.append(
                f"{self.type_name}: one value per channel in {shape_text(shape)}; this works in eval() mode but"
                " torch raises in training mode — train with a batch of at least 2"
            )
        if self.track_running_stats and self.eps == 0:
            lines.append(f"{self.type_name}: eps 0 works in eval() mode only; training needs eps > 0")
        return lines


@register("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
@dataclass(frozen=True)
class InstanceNorm(_ChannelNorm):
    """``nn.InstanceNorm{1,2,3}d``: statistics per sample and channel over the positions."""

    PARAMS: ClassVar[dict[str, Any]] = {
        "num_features": None,
        "eps": 1e-5,
        "momentum": 0.1,
        "affine": False,
        "track_running_stats": False,
        "bias": True,
    }

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> InstanceNorm:
        return cls(**cls._values(type_name, kw))

    def ranks(self) -> tuple[int, ...]:
        return (self.dims + 1, self.dims + 2)

    def _rank_message(self, shape: Shape) -> str:
        axes = ", ".join("DHW"[3 - self.dims :]) if self.dims > 1 else "L"
        return (
            f"expects a {self.dims + 1}-D (C, {axes}) or {self.dims + 2}-D (N, C, {axes}) input,"
            f" got {len(shape)}-D {shape_text(shape)}"
        )

    def channel_axis(self, shape: Shape) -> int:
        return len(shape) - self.dims - 1

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        if not self.track_running_stats and product(shape[-self.dims :]) == 1:
            raise self.error(
                f"the input {shape_text(shape)} has a single position per channel; instance statistics need more"
                f" than 1 (make the {times(shape[-self.dims:])} map larger)"
            )
        return shape

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        lines = super().warnings(shape, roles)
        shape = self.check_input(shape)
        if self.track_running_stats and product(shape[-self.dims :]) == 1:
            lines.append(
                f"{self.type_name}: a single position per channel in {shape_text(shape)}; this works in eval()"
                " mode but torch raises in training mode"
            )
        return lines


@register("GroupNorm")
@dataclass(frozen=True)
class GroupNorm(Layer):
    """``nn.GroupNorm``: channels (dimension 1) in ``num_groups`` groups, statistics per sample and group."""

    TAKES_CHANNELS: ClassVar[bool] = True

    PRESERVES_SHAPE: ClassVar[bool] = True

    num_groups: int = 1
    num_channels: int | None = None
    eps: float = 1e-5
    affine: bool = True
    bias: bool = True

    PARAMS: ClassVar[dict[str, Any]] = {
        "num_groups": REQUIRED,
        "num_channels": None,
        "eps": 1e-5,
        "affine": True,
        "bias": True,
    }

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> GroupNorm:
        groups = as_int(type_name, "num_groups", kw["num_groups"])
        channels = _features(type_name, "num_channels", kw["num_channels"])
        if channels is not None and channels % groups:
            raise SpecError(
                f"{type_name}: num_channels ({channels}) must be divisible by num_groups ({groups});"
                f" num_groups that divide {channels}: {_divisors(channels)}",
                layer=type_name,
            )
        return cls(
            type_name=type_name,
            num_groups=groups,
            num_channels=channels,
            eps=_eps(type_name, kw["eps"]),
            affine=as_bool(type_name, "affine", kw["affine"]),
            bias=as_bool(type_name, "bias", kw["bias"]),
        )

    def ranks(self) -> None:
        return None

    def check_input(self, shape: Sequence[int]) -> Shape:
        shape = super().check_input(shape)
        if len(shape) < 2:
            raise self.error(f"expects an input of at least 2 dimensions (N, C, …), got {len(shape)}-D {shape_text(shape)}", ErrorKind.RANK)
        return shape

    def bind(self, shape: Sequence[int]) -> GroupNorm:
        shape = self.check_input(shape)
        channels = shape[1]
        if channels % self.num_groups:
            raise self.error(
                f"the input {shape_text(shape)} has {channels} channels, which num_groups={self.num_groups} does not"
                f" divide; num_groups that divide {channels}: {_divisors(channels)}"
            )
        if self.num_channels is None:
            return self.with_values(num_channels=channels)
        if channels != self.num_channels and self.affine:
            raise self.error(
                f"expects num_channels = {channels} (dimension 1 of the input {shape_text(shape)}), but the spec"
                f" says {self.num_channels}; use num_channels: {channels} (or leave it out: it is inferred)",
                ErrorKind.CHANNELS,
            )
        return self

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        if shape[0] * shape[1] // self.num_groups * product(shape[2:]) == 1:
            raise self.error(
                f"the input {shape_text(shape)} leaves one value per group; statistics need more than 1"
                " (use a larger batch, fewer groups or a larger map)"
            )
        return shape

    @property
    def num_params(self) -> int:
        if not self.affine:
            return 0
        if self.num_channels is None:
            raise self.error("num_channels is not known yet: give num_channels or an input shape")
        return self.num_channels * (2 if self.bias else 1)

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def describe(self) -> str:
        return f"groups={self.num_groups}" + ("" if self.affine else " no affine")


def _normalized_shape(type_name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise SpecError(
                f"{type_name}: normalized_shape must name at least one dimension, e.g. [64] or [C, H, W]",
                layer=type_name,
            )
        return tuple(as_int(type_name, "normalized_shape", v) for v in value)
    return (as_int(type_name, "normalized_shape", value),)


@dataclass(frozen=True)
class _TrailingNorm(Layer):
    """Normalization over the trailing dimensions given by ``normalized_shape``."""

    PRESERVES_SHAPE: ClassVar[bool] = True

    normalized_shape: tuple[int, ...] = (1,)
    elementwise_affine: bool = True

    def _output(self, shape: Shape) -> Shape:
        count = len(self.normalized_shape)
        if len(shape) < count or tuple(shape[-count:]) != self.normalized_shape:
            trailing = list(shape[-count:]) if len(shape) >= count else list(shape)
            raise self.error(
                f"normalized_shape {list(self.normalized_shape)} must equal the last {count} dimension"
                f"{'s' if count > 1 else ''} of the input {shape_text(shape)} ({trailing});"
                f" use normalized_shape: {trailing if count > 1 or len(trailing) != 1 else trailing[0]}"
            )
        return shape

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        """The normalized trailing axes: their values are mixed (the mean and the scale of each position's features)."""
        return tuple(range(len(shape) - len(self.normalized_shape), len(shape)))

    def torch_kwargs(self) -> dict[str, Any]:
        kwargs = super().torch_kwargs()
        kwargs["normalized_shape"] = list(self.normalized_shape)
        return kwargs

    def describe(self) -> str:
        return times(self.normalized_shape) + ("" if self.elementwise_affine else " no affine")


@register("LayerNorm")
@dataclass(frozen=True)
class LayerNorm(_TrailingNorm):
    """``nn.LayerNorm``: ``normalized_shape`` must match the input's trailing dimensions."""

    eps: float = 1e-5
    bias: bool = True

    PARAMS: ClassVar[dict[str, Any]] = {
        "normalized_shape": REQUIRED,
        "eps": 1e-5,
        "elementwise_affine": True,
        "bias": True,
    }

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> LayerNorm:
        return cls(
            type_name=type_name,
            normalized_shape=_normalized_shape(type_name, kw["normalized_shape"]),
            eps=_eps(type_name, kw["eps"]),
            elementwise_affine=as_bool(type_name, "elementwise_affine", kw["elementwise_affine"]),
            bias=as_bool(type_name, "bias", kw["bias"]),
        )

    @property
    def num_params(self) -> int:
        if not self.elementwise_affine:
            return 0
        return product(self.normalized_shape) * (2 if self.bias else 1)


@register("RMSNorm")
@dataclass(frozen=True)
class RMSNorm(_TrailingNorm):
    """``nn.RMSNorm``: like LayerNorm, with a weight and no bias."""

    eps: float | None = None

    PARAMS: ClassVar[dict[str, Any]] = {"normalized_shape": REQUIRED, "eps": None, "elementwise_affine": True}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> RMSNorm:
        return cls(
            type_name=type_name,
            normalized_shape=_normalized_shape(type_name, kw["normalized_shape"]),
            eps=None if kw["eps"] is None else _eps(type_name, kw["eps"]),
            elementwise_affine=as_bool(type_name, "elementwise_affine", kw["elementwise_affine"]),
        )

    @property
    def num_params(self) -> int:
        return product(self.normalized_shape) if self.elementwise_affine else 0


@register("LocalResponseNorm")
@dataclass(frozen=True)
class LocalResponseNorm(Layer):
    """``nn.LocalResponseNorm`` (AlexNet): normalizes over ``size`` neighbouring channels of dimension 1."""

    PRESERVES_SHAPE: ClassVar[bool] = True

    size: int = 1
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    PARAMS: ClassVar[dict[str, Any]] = {"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "k": 1.0}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> LocalResponseNorm:
        return cls(
            type_name=type_name,
            size=as_int(type_name, "size", kw["size"]),
            alpha=as_float(type_name, "alpha", kw["alpha"]),
            beta=as_float(type_name, "beta", kw["beta"]),
            k=as_float(type_name, "k", kw["k"]),
        )

    def check_input(self, shape: Sequence[int]) -> Shape:
        shape = super().check_input(shape)
        if len(shape) < 3:
            raise self.error(f"expects an input of at least 3 dimensions (N, C, …), got {len(shape)}-D {shape_text(shape)}", ErrorKind.RANK)
        return shape

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def describe(self) -> str:
        return f"size={self.size} alpha={number(self.alpha)} beta={number(self.beta)} k={number(self.k)}"


def _divisors(n: int) -> str:
    found = [d for d in range(1, min(n, 64) + 1) if n % d == 0]
    return ", ".join(map(str, found[:10]))


LAYERS = table(BatchNorm, InstanceNorm, GroupNorm, LayerNorm, RMSNorm, LocalResponseNorm)
