"""MaxPool/AvgPool/AdaptiveAvgPool/AdaptiveMaxPool in 1, 2 and 3 dimensions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from .base import (
    REQUIRED,
    Shape,
    as_bool,
    as_int,
    as_tuple,
    register,
    spatial_dims,
    table,
)
from .spatial import Sliding, Spatial, compact, pooling_window


@dataclass(frozen=True)
class Pool(Sliding):
    """Max and average pooling: conv arithmetic, ceil_mode, padding at most half the kernel."""

    padding: tuple[int, ...] = (0,)
    ceil_mode: bool = False
    extra: tuple[tuple[str, Any], ...] = ()  # return_indices, count_include_pad, divisor_override

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Pool:
        dims, kernel, stride, padding = pooling_window(type_name, kw)
        dilation = as_tuple(type_name, "dilation", kw.get("dilation", 1), dims)
        for k, p in zip(kernel, padding):
            if p > k // 2:
                raise SpecError(
                    f"{type_name}: padding {p} must be at most half the kernel size {k}; use padding ≤ {k // 2}"
                    " (dilation does not loosen this)",
                    layer=type_name,
                )
        extra = []
        for name in ("return_indices", "count_include_pad"):
            if name in kw:
                extra.append((name, as_bool(type_name, name, kw[name])))
        if "divisor_override" in kw:
            divisor = kw["divisor_override"]
            if divisor is not None:
                divisor = as_int(type_name, "divisor_override", divisor, minimum=None)
                if divisor == 0:
                    raise SpecError(f"{type_name}: divisor_override must not be zero", layer=type_name)
            extra.append(("divisor_override", divisor))
        return cls(
            type_name=type_name,
            dims=dims,
            kernel_size=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=as_bool(type_name, "ceil_mode", kw["ceil_mode"]),
            extra=tuple(extra),
        )

    def torch_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
        }
        if "dilation" in self.PARAMS:
            kwargs["dilation"] = self.dilation
        kwargs.update(self.extra)
        return kwargs

    @property
    def ceil(self) -> bool:
        return self.ceil_mode

    @property
    def returns_indices(self) -> bool:
        """return_indices=True: torch returns (values, indices), both of the output shape."""
        return bool(dict(self.extra).get("return_indices", False))

    def pads(self) -> list[tuple[int, int]]:
        return [(p, p) for p in self.padding]

    def _output(self, shape: Shape) -> Shape:
        sizes = self.spatial_sizes(self.spatial(shape))
        if sizes is not None:
            return self.replace_spatial(shape, sizes)
        axes = self.geometry(shape)
        for axis, k, p in zip(axes, self.kernel_size, self.padding):
            if axis.output < 1:
                fix = f"use an input of at least {axis.smallest_input()}"
                if 2 * (k // 2) + axis.size >= axis.span and p < k // 2:
                    fix += f" or padding ≥ {axis.padding_to_fit()}"
                dilated = f" (dilated: {axis.span})" if axis.dilation != 1 else ""
                raise self.error(
                    f"kernel {k}{dilated} is larger than the padded input {axis.padded} (input {axis.size} + 2×{p} padding)",
                    ErrorKind.TOO_SMALL,
                    axis=axis.name,
                    numbers={"kernel": k, "span": axis.span, "padded_input": axis.padded, "input": axis.size,
                             "smallest_input": axis.smallest_input()},
                    fix=fix,
                )
        return self.replace_spatial(shape, tuple(axis.output for axis in axes))

    def describe(self) -> str:
        parts = [f"k={compact(self.kernel_size)}", f"s={compact(self.stride)}", f"p={compact(self.padding)}"]
        if any(d != 1 for d in self.dilation):
            parts.append(f"d={compact(self.dilation)}")
        if self.ceil_mode:
            parts.append("ceil")
        return " ".join(parts)


@register("MaxPool1d", "MaxPool2d", "MaxPool3d")
@dataclass(frozen=True)
class MaxPool(Pool):
    PARAMS: ClassVar[dict[str, Any]] = {
        "kernel_size": REQUIRED,
        "stride": None,
        "padding": 0,
        "dilation": 1,
        "return_indices": False,
        "ceil_mode": False,
    }


@register("AvgPool1d")
@dataclass(frozen=True)
class AvgPool1d(Pool):
    PARAMS: ClassVar[dict[str, Any]] = {
        "kernel_size": REQUIRED,
        "stride": None,
        "padding": 0,
        "ceil_mode": False,
        "count_include_pad": True,
    }


@register("AvgPool2d", "AvgPool3d")
@dataclass(frozen=True)
class AvgPool(Pool):
    PARAMS: ClassVar[dict[str, Any]] = {**AvgPool1d.PARAMS, "divisor_override": None}

    def _unpadded_misfit(self, spatial: Shape) -> tuple[str, int, int] | None:
        """torch's avg_pool3d (unlike 1-D/2-D and max pooling) also wants the kernel to fit the input
        without its padding: the first (axis, size, kernel) where it does not, else None."""
        if self.dims != 3:
            return None
        return next(((axis, size, k) for axis, size, k in zip(self.axes, spatial, self.kernel_size) if size < k), None)

    def spatial_sizes(self, spatial: Shape) -> Shape | None:
        if self._unpadded_misfit(spatial) is not None:
            return None  # _output says why
        return super().spatial_sizes(spatial)

    def _output(self, shape: Shape) -> Shape:
        misfit = self._unpadded_misfit(self.spatial(shape))
        if misfit is not None:
            axis, size, k = misfit
            raise self.error(
                f"kernel {k} is larger than the input {size} (torch's 3-D average pooling does not count"
                " the padding here)",
                ErrorKind.TOO_SMALL,
                axis=axis,
                numbers={"kernel": k, "input": size},
                fix=f"use an input of at least {k} or kernel ≤ {size}",
            )
        return super()._output(shape)


@register("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
@dataclass(frozen=True)
class AdaptivePool(Spatial):
    """Adaptive pooling: the output size is given; ``None`` keeps that axis's input size."""

    output_size: tuple[int | None, ...] = (1,)
    #: output_size was written as one number (torch then skips one of its rank checks)
    scalar: bool = False
    #: AdaptiveMaxPool's return_indices=True: torch returns (values, indices) of the output shape
    returns_indices: bool = False

    PARAMS: ClassVar[dict[str, Any]] = {"output_size": REQUIRED}
    #: torch computes an all-1 adaptive *average* pool as a mean over the last axes (see ``_output``)
    MEAN_SHORTCUT: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> AdaptivePool:
        dims = spatial_dims(type_name)
        value = kw["output_size"]
        if isinstance(value, (list, tuple)):
            if len(value) != dims:
                raise SpecError(
                    f"{type_name}: output_size needs {dims} values (one per spatial axis), got {list(value)}",
                    layer=type_name,
                )
            if dims == 1 and None in value:
                raise SpecError(
                    f"{type_name}: output_size must be a whole number, got {list(value)}"
                    " (None, to keep an axis's size, works only for 2-D and 3-D adaptive pooling)",
                    layer=type_name,
                )
            sizes = tuple(None if v is None else _output_size(type_name, v) for v in value)
        else:
            sizes = (_output_size(type_name, value),) * dims
        indices = as_bool(type_name, "return_indices", kw["return_indices"]) if "return_indices" in kw else False
        return cls(type_name=type_name, dims=dims, output_size=sizes, scalar=not isinstance(value, (list, tuple)), returns_indices=indices)

    def torch_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"output_size": self.output_size if self.dims > 1 and not self.scalar else self.output_size[0]}
        if self.returns_indices:
            kwargs["return_indices"] = True
        return kwargs

    def _mean_shortcut(self) -> bool:
        return self.MEAN_SHORTCUT and self.dims > 1 and all(v in (1, None) for v in self.output_size)

    def ranks(self) -> tuple[int, ...] | None:
        return None if self._mean_shortcut() else super().ranks()  # _output checks the rank then

    def _output(self, shape: Shape) -> Shape:
        sizes = tuple(size if want is None else want for size, want in zip(self.spatial(shape), self.output_size))
        if len(shape) not in super().ranks():
            # AdaptiveAvgPool2d/3d with every output size 1 is a mean over the last axes in torch,
            # which takes any input holding those axes (with output_size a tuple, one axis more)
            mean = self._mean_shortcut() and len(shape) >= self.dims + (0 if self.scalar else 1)
            if not (mean and all(size == 1 for size in sizes)):
                raise self.error(self._rank_message(shape), ErrorKind.RANK)
        return self.replace_spatial(shape, sizes)

    def describe(self) -> str:
        return "out=" + "x".join("·" if v is None else str(v) for v in self.output_size)


@register("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")
@dataclass(frozen=True)
class AdaptiveMaxPool(AdaptivePool):
    PARAMS: ClassVar[dict[str, Any]] = {"output_size": REQUIRED, "return_indices": False}
    MEAN_SHORTCUT: ClassVar[bool] = False


def _output_size(type_name: str, value: Any) -> int:
    """One axis of an adaptive pool's output_size: at least 1 (torch accepts 0 and returns an
    empty tensor; convcalc does not calculate with empty outputs)."""
    if as_int(type_name, "output_size", value, minimum=0) == 0:
        raise SpecError(
            f"{type_name}: output_size 0 gives an empty output (torch returns an empty tensor); use an output_size of at least 1",
            layer=type_name,
        )
    return int(value)


LAYERS = table(MaxPool, AvgPool1d, AvgPool, AdaptivePool, AdaptiveMaxPool)
