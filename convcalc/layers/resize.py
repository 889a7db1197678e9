"""Layers that resize or rearrange feature maps: Upsample, PixelShuffle/Unshuffle, ChannelShuffle."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from ..sizes import MAX_SIZE
from .base import (
    AXES,
    IDENTITY,
    REQUIRED,
    Layer,
    Shape,
    as_bool,
    as_choice,
    as_float,
    as_int,
    register,
    table,
)
from .dims import number, shape_text

UPSAMPLE_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
#: Modes that interpolate, and so take align_corners.
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")
#: The one input rank each interpolating mode accepts (the others take 3-D, 4-D and 5-D).
MODE_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def _scaled(size: int, scale: float) -> int:
    """``int(size × scale)`` as torch computes it; beyond float's range, a number past every limit."""
    product = size * scale
    return int(product) if math.isfinite(product) else MAX_SIZE + 1


def _size(type_name: str, value: Any) -> int | tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= 3:
            raise SpecError(f"{type_name}: size needs 1 to 3 values (one per spatial axis), got {list(value)}", layer=type_name)
        return tuple(as_int(type_name, "size", v) for v in value)
    return as_int(type_name, "size", value)


def _scale(type_name: str, value: Any) -> float | tuple[float, ...] | None:
    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= 3:
            raise SpecError(
                f"{type_name}: scale_factor needs 1 to 3 values (one per spatial axis), got {list(value)}",
                layer=type_name,
            )
        factors = tuple(as_float(type_name, "scale_factor", v) for v in value)
    elif value is None:
        return None
    else:
        factors = (as_float(type_name, "scale_factor", value),)
        if factors[0] == 0:
            return None  # torch: ``float(scale_factor) if scale_factor else None``
    for factor in factors:
        if factor <= 0:
            raise SpecError(
                f"{type_name}: scale_factor must be positive, got {number(factor)}; e.g. scale_factor: 2",
                layer=type_name,
            )
    return factors if isinstance(value, (list, tuple)) else factors[0]


@register("Upsample")
@dataclass(frozen=True)
class Upsample(Layer):
    """``nn.Upsample`` (``F.interpolate``): out = size, or floor(in × scale_factor) per spatial axis."""

    size: int | tuple[int, ...] | None = None
    scale_factor: float | tuple[float, ...] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None

    PARAMS: ClassVar[dict[str, Any]] = {
        "size": None,
        "scale_factor": None,
        "mode": "nearest",
        "align_corners": None,
        "recompute_scale_factor": None,
    }

    #: Arguments a subclass fixes (UpsamplingBilinear2d is Upsample with mode 'bilinear' …).
    FIXED: ClassVar[dict[str, Any]] = {}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Upsample:
        kw = {"mode": "nearest", "align_corners": None, "recompute_scale_factor": None, **kw, **cls.FIXED}
        mode = kw["mode"]
        if mode == "lanczos":
            raise SpecError(
                f"{type_name}: mode 'lanczos' needs antialias=True, which nn.Upsample cannot pass;"
                " use 'bicubic' or 'bilinear'",
                layer=type_name,
            )
        mode = as_choice(type_name, "mode", mode, UPSAMPLE_MODES)
        align = kw["align_corners"]
        if align is not None:
            align = as_bool(type_name, "align_corners", align)
            if mode not in INTERPOLATING:
                raise SpecError(
                    f"{type_name}: align_corners can only be set with the interpolating modes"
                    f" ({', '.join(INTERPOLATING)}), not with mode '{mode}'; leave it out",
                    layer=type_name,
                )
        recompute = kw["recompute_scale_factor"]
        if recompute is not None:
            recompute = as_bool(type_name, "recompute_scale_factor", recompute)
        size = _size(type_name, kw["size"])
        scale = _scale(type_name, kw["scale_factor"])
        if size is not None and scale is not None:
            raise SpecError(
                f"{type_name}: give only one of size or scale_factor (size {kw['size']!r},"
                f" scale_factor {kw['scale_factor']!r})",
                layer=type_name,
            )
        if size is None and scale is None:
            raise SpecError(f"{type_name}: give size or scale_factor, e.g. scale_factor: 2", layer=type_name)
        if recompute and size is not None:
            raise SpecError(
                f"{type_name}: recompute_scale_factor is not meaningful with an explicit size; leave it out",
                layer=type_name,
            )
        return cls(
            type_name=type_name,
            size=size,
            scale_factor=scale,
            mode=mode,
            align_corners=align,
            recompute_scale_factor=recompute,
        )

    def ranks(self) -> tuple[int, ...]:
        wanted = MODE_RANK.get(self.mode)
        return (wanted,) if wanted else (3, 4, 5)

    def _rank_kind(self) -> ErrorKind:
        return ErrorKind.GEOMETRY if MODE_RANK.get(self.mode) else ErrorKind.RANK  # the mode fixes the rank

    def _rank_message(self, shape: Shape) -> str:
        wanted = MODE_RANK.get(self.mode)
        if wanted:
            return (
                f"mode '{self.mode}' needs a {wanted}-D (N, C, {', '.join(AXES[wanted - 2])}) input,"
                f" got {len(shape)}-D {shape_text(shape)}"
            )
        return (
            f"expects a 3-D (N, C, L), 4-D (N, C, H, W) or 5-D (N, C, D, H, W) input, got {len(shape)}-D"
            f" {shape_text(shape)} (dimension 0 is always the batch)"
        )

    def _targets(self, shape: Shape) -> list[tuple[str, int, float | None, int | None]]:
        """(axis, input size, scale or None, wanted size or None) per spatial axis."""
        dims = len(shape) - 2
        axes = AXES[dims]
        spatial = shape[2:]
        if self.size is not None:
            sizes = self.size if isinstance(self.size, tuple) else (self.size,) * dims
            if len(sizes) != dims:
                raise self.error(
                    f"size {list(sizes)} has {len(sizes)} value{'s' if len(sizes) > 1 else ''}, but the input"
                    f" {shape_text(shape)} has {dims} spatial axis{'es' if dims > 1 else ''}; give {dims}"
                )
            return [(axis, n, None, s) for axis, n, s in zip(axes, spatial, sizes)]
        scales = self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * dims
        if len(scales) != dims:
            raise self.error(
                f"scale_factor {list(scales)} has {len(scales)} value{'s' if len(scales) > 1 else ''}, but the"
                f" input {shape_text(shape)} has {dims} spatial axis{'es' if dims > 1 else ''}; give {dims}"
            )
        return [(axis, n, s, None) for axis, n, s in zip(axes, spatial, scales)]

    def _output(self, shape: Shape) -> Shape:
        sizes = []
        for axis, size, scale, wanted in self._targets(shape):
            if wanted is None:
                wanted = _scaled(size, scale)  # torch: int(in × scale), in double precision
                if wanted > MAX_SIZE:
                    raise self.error(
                        f"{axis}: floor({size} × {number(scale)}) is beyond convcalc's limit of {MAX_SIZE:.0e};"
                        f" use a scale_factor of at most {number(MAX_SIZE // size)}"
                    )
                if wanted < 1:
                    raise self.error(
                        f"{axis}: floor({size} × {number(scale)}) = {wanted}; the output must have at least 1"
                        f" — use scale_factor ≥ {number(1 / size)} or a larger input"
                    )
            sizes.append(wanted)
        return (*shape[:2], *sizes)

    def window(self, shape: Shape) -> None:
        return None

    def describe(self) -> str:
        if self.size is not None:
            text = "size=" + ("x".join(map(str, self.size)) if isinstance(self.size, tuple) else str(self.size))
        elif isinstance(self.scale_factor, tuple):
            text = "scale=" + "x".join(number(s) for s in self.scale_factor)
        else:
            text = f"scale={number(self.scale_factor or 0)}"
        return text if self.mode == "nearest" else f"{text} {self.mode}"

    def explain(self, shape: Sequence[int]) -> list[str]:
        shape = self.check_input(shape)
        lines = []
        for axis, size, scale, wanted in self._targets(shape):
            if wanted is None:
                lines.append(f"{axis}: floor({size} × {number(scale)}) = {_scaled(size, scale)}")
            else:
                lines.append(f"{axis}: size {wanted} given ({size} → {wanted})")
        return lines


@register("UpsamplingNearest2d")
@dataclass(frozen=True)
class UpsamplingNearest2d(Upsample):
    """``nn.UpsamplingNearest2d``: Upsample with mode 'nearest' (torch lets it take 3-D and 5-D too)."""

    PARAMS: ClassVar[dict[str, Any]] = {"size": None, "scale_factor": None}
    FIXED: ClassVar[dict[str, Any]] = {"mode": "nearest"}

    def torch_kwargs(self) -> dict[str, Any]:
        return {"size": self.size, "scale_factor": self.scale_factor}


@register("UpsamplingBilinear2d")
@dataclass(frozen=True)
class UpsamplingBilinear2d(UpsamplingNearest2d):
    """``nn.UpsamplingBilinear2d``: Upsample with mode 'bilinear', align_corners=True (4-D only)."""

    FIXED: ClassVar[dict[str, Any]] = {"mode": "bilinear", "align_corners": True}


@dataclass(frozen=True)
class _Shuffle(Layer):
    """A factor r applied to (C, H, W), the last three dimensions of an input of rank ≥ 3."""

    factor: int = 1

    NAME: ClassVar[str] = "upscale_factor"

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> _Shuffle:
        return cls(type_name=type_name, factor=as_int(type_name, cls.NAME, kw[cls.NAME]))

    def torch_kwargs(self) -> dict[str, Any]:
        return {self.NAME: self.factor}

    def check_input(self, shape: Sequence[int]) -> Shape:
        shape = super().check_input(shape)
        if len(shape) < 3:
            raise self.error(f"expects an input of at least 3 dimensions (*, C, H, W), got {len(shape)}-D {shape_text(shape)}", ErrorKind.RANK)
        return shape

    def window(self, shape: Shape) -> None:
        return None


@register("PixelShuffle")
@dataclass(frozen=True)
class PixelShuffle(_Shuffle):
    """``nn.PixelShuffle``: (*, C·r², H, W) → (*, C, H·r, W·r)."""

    NAME: ClassVar[str] = "upscale_factor"
    PARAMS: ClassVar[dict[str, Any]] = {"upscale_factor": REQUIRED}

    def _output(self, shape: Shape) -> Shape:
        *lead, channels, height, width = shape
        r2 = self.factor**2
        if channels % r2:
            raise self.error(
                f"the channels ({channels}, dimension -3 of {shape_text(shape)}) must be divisible by"
                f" upscale_factor² = {r2}; make them a multiple of {r2} (e.g. {(channels // r2 + 1) * r2})"
            )
        return (*lead, channels // r2, height * self.factor, width * self.factor)

    def describe(self) -> str:
        return f"r={self.factor}"


@register("PixelUnshuffle")
@dataclass(frozen=True)
class PixelUnshuffle(_Shuffle):
    """``nn.PixelUnshuffle``: (*, C, H·r, W·r) → (*, C·r², H, W)."""

    NAME: ClassVar[str] = "downscale_factor"
    PARAMS: ClassVar[dict[str, Any]] = {"downscale_factor": REQUIRED}

    def _output(self, shape: Shape) -> Shape:
        *lead, channels, height, width = shape
        r = self.factor
        for axis, size in (("H", height), ("W", width)):
            if size % r:
                raise self.error(
                    f"{axis}: the size {size} must be divisible by downscale_factor {r}; use an input of"
                    f" {(size // r + 1) * r} or a factor that divides {size}"
                )
        return (*lead, channels * r * r, height // r, width // r)

    def describe(self) -> str:
        return f"r={self.factor}"


@register("ChannelShuffle")
@dataclass(frozen=True)
class ChannelShuffle(Layer):
    """``nn.ChannelShuffle`` (ShuffleNet): permutes the channels (dimension 1) across ``groups``."""

    PRESERVES_SHAPE: ClassVar[bool] = True

    groups: int = 1

    PARAMS: ClassVar[dict[str, Any]] = {"groups": REQUIRED}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> ChannelShuffle:
        return cls(type_name=type_name, groups=as_int(type_name, "groups", kw["groups"]))

    def check_input(self, shape: Sequence[int]) -> Shape:
        shape = super().check_input(shape)
        if len(shape) < 3:
            raise self.error(f"expects an input of at least 3 dimensions (N, C, …), got {len(shape)}-D {shape_text(shape)}", ErrorKind.RANK)
        return shape

    def _output(self, shape: Shape) -> Shape:
        if shape[1] % self.groups:
            raise self.error(
                f"the channels ({shape[1]}, dimension 1 of {shape_text(shape)}) must be divisible by"
                f" groups {self.groups}"
            )
        return shape

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def describe(self) -> str:
        return f"groups={self.groups}"


LAYERS = table(Upsample, UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle, PixelUnshuffle, ChannelShuffle)
