"""Unfold and Fold: torch's im2col and col2im (``nn.Unfold``, ``nn.Fold``), over two spatial axes.

``Unfold`` cuts every ``kernel_size`` block a convolution would read out of ``(N, C, H, W)`` and lays
them side by side: ``(N, C·kh·kw, L)``, ``L`` the number of blocks, ``Lh·Lw``, each axis's count by the
convolution's formula. ``Fold`` is its inverse in shape: ``(N, C·kh·kw, L)`` → ``(N, C, *output_size)``,
summing where blocks overlap; its ``L`` must be the number of blocks that ``output_size`` holds.
Unbatched inputs (one dimension fewer) work as in torch. Neither has parameters; torch's counter sees
no multiply-accumulates in either (an overlap's sum is an addition).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import formulas
from ..errors import ErrorKind
from .base import AXES, REQUIRED, Layer, Shape, as_tuple, register, table
from .dims import shape_text
from .spatial import compact

PAIR = AXES[2]  # ("H", "W"): torch's im2col and col2im take two spatial axes


@dataclass(frozen=True)
class _Blocks(Layer):
    """What Unfold and Fold share: a 2-D window (kernel_size, dilation, padding, stride, as torch's
    ``_pair`` reads each) and the count of the blocks it cuts from a spatial size."""

    kernel_size: tuple[int, ...] = (1, 1)
    dilation: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    stride: tuple[int, ...] = (1, 1)

    @staticmethod
    def window_args(type_name: str, kw: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {
            "kernel_size": as_tuple(type_name, "kernel_size", kw["kernel_size"], 2),
            "dilation": as_tuple(type_name, "dilation", kw["dilation"], 2),
            "padding": as_tuple(type_name, "padding", kw["padding"], 2, minimum=0),
            "stride": as_tuple(type_name, "stride", kw["stride"], 2),
        }

    def block_axes(self, sizes: Shape) -> tuple[formulas.SlidingAxis, ...]:
        """One :class:`formulas.SlidingAxis` per axis of the spatial ``sizes`` (the blocks along it: ``output``)."""
        return tuple(
            formulas.sliding_axis(axis, size, k, s, p, p, d)
            for axis, size, k, d, p, s in zip(PAIR, sizes, self.kernel_size, self.dilation, self.padding, self.stride)
        )

    def blocks(self, sizes: Shape, what: str) -> tuple[int, int]:
        """Blocks along H and W of the spatial ``sizes`` (``what`` names them in the message), or the
        ShapeError of an axis where no block fits (torch: "its components must be at least one")."""
        axes = self.block_axes(sizes)
        for axis in axes:
            if axis.output < 1:
                dilated = f" (dilated: {axis.span})" if axis.dilation != 1 else ""
                fix = f"use {what} of at least {axis.smallest_input()} or padding ≥ {axis.padding_to_fit()}"
                raise self.error(
                    f"{axis.name}: kernel {axis.kernel}{dilated} is larger than the padded {what.split()[-1]} {axis.padded}"
                    f" ({axis.size} + 2×{axis.pad_left} padding), so no block fits",
                    ErrorKind.TOO_SMALL,
                    numbers={"kernel": axis.kernel, "span": axis.span, "padded_input": axis.padded, "input": axis.size,
                             "smallest_input": axis.smallest_input()},
                    fix=fix,
                )
        return axes[0].output, axes[1].output

    @property
    def patch(self) -> int:
        """Values of one channel in a block: kh·kw."""
        return self.kernel_size[0] * self.kernel_size[1]

    def describe(self) -> str:
        parts = [f"k={compact(self.kernel_size)}", f"s={compact(self.stride)}", f"p={compact(self.padding)}"]
        if any(d != 1 for d in self.dilation):
            parts.append(f"d={compact(self.dilation)}")
        return " ".join(parts)

    def block_lines(self, sizes: Shape) -> list[str]:
        """The count of blocks per axis, worked as a convolution's output size."""
        axes = self.block_axes(sizes)
        head = formulas.formula_lines("sliding", dilated=any(d != 1 for d in self.dilation))
        return head + [axis.explain() for axis in axes]


@register("Unfold")
@dataclass(frozen=True)
class Unfold(_Blocks):
    """``nn.Unfold`` (im2col): ``(N, C, H, W)`` → ``(N, C·kh·kw, Lh·Lw)``; unbatched ``(C, H, W)`` → ``(C·kh·kw, L)``."""

    PARAMS: ClassVar[dict[str, Any]] = {"kernel_size": REQUIRED, "dilation": 1, "padding": 0, "stride": 1}
    RANKS: ClassVar[tuple[int, ...]] = (3, 4)

    @classmethod
    def create(cls, type_name: str, kw: Mapping[str, Any]) -> Unfold:
        return cls(type_name=type_name, **cls.window_args(type_name, kw))

    def _rank_message(self, shape: Shape) -> str:
        return f"expects a 4-D (N, C, H, W) or unbatched 3-D (C, H, W) input, got {len(shape)}-D {shape_text(shape)}"

    def _output(self, shape: Shape) -> Shape:
        rows, columns = self.blocks(shape[-2:], "an input")
        return (*shape[:-3], shape[-3] * self.patch, rows * columns)

    def explain(self, shape: Any) -> list[str]:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        channels = shape[-3]
        kh, kw = self.kernel_size
        return [
            *self.block_lines(shape[-2:]),
            f"blocks: L = {' × '.join(str(a.output) for a in self.block_axes(shape[-2:]))} = {out[-1]}",
            f"values per block: C × kh × kw = {channels} × {kh} × {kw} = {out[-2]}",
        ]


@register("Fold")
@dataclass(frozen=True)
class Fold(_Blocks):
    """``nn.Fold`` (col2im): ``(N, C·kh·kw, L)`` → ``(N, C, *output_size)``, ``L`` the blocks that output_size holds;
    unbatched ``(C·kh·kw, L)`` → ``(C, *output_size)``."""

    output_size: tuple[int, ...] = (1, 1)

    PARAMS: ClassVar[dict[str, Any]] = {"output_size": REQUIRED, "kernel_size": REQUIRED, "dilation": 1, "padding": 0, "stride": 1}
    RANKS: ClassVar[tuple[int, ...]] = (2, 3)

    @classmethod
    def create(cls, type_name: str, kw: Mapping[str, Any]) -> Fold:
        return cls(type_name=type_name, output_size=as_tuple(type_name, "output_size", kw["output_size"], 2), **cls.window_args(type_name, kw))

    def _rank_message(self, shape: Shape) -> str:
        return f"expects a 3-D (N, C×kh×kw, L) or unbatched 2-D (C×kh×kw, L) input, got {len(shape)}-D {shape_text(shape)}"

    def _output(self, shape: Shape) -> Shape:
        rows, columns = self.blocks(self.output_size, "an output_size")
        values, length = shape[-2:]
        kh, kw = self.kernel_size
        if values % self.patch:
            low = values // self.patch * self.patch
            works = " or ".join(str(v) for v in (low, low + self.patch) if v)
            raise self.error(
                f"dimension {len(shape) - 2} of {shape_text(shape)} ({values}) must be divisible by kernel_size"
                f" {kh}×{kw} = {self.patch} (it holds C×kh×kw values per block); use {works}"
            )
        blocks = rows * columns
        if length != blocks:
            raise self.error(
                f"output_size {compact(self.output_size)} holds {rows}×{columns} = {blocks} blocks, but dimension {len(shape) - 1}"
                f" of {shape_text(shape)} is {length}; use an input of {shape_text((*shape[:-1], blocks))}"
            )
        return (*shape[:-2], values // self.patch, *self.output_size)

    def describe(self) -> str:
        return f"out={compact(self.output_size)} {super().describe()}"

    def explain(self, shape: Any) -> list[str]:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        kh, kw = self.kernel_size
        return [
            *self.block_lines(self.output_size),
            f"blocks in output_size {compact(self.output_size)}: L = {' × '.join(str(a.output) for a in self.block_axes(self.output_size))} = {shape[-1]}",
            f"channels: (C×kh×kw) / (kh × kw) = {shape[-2]} / ({kh} × {kw}) = {out[-3]}",
        ]


LAYERS = table(Unfold, Fold)
