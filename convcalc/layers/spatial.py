"""Shared bases of the layers over 1, 2 or 3 spatial axes, and of those that slide a window
over them (conv, pooling): one geometry per axis, read by every answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from .. import formulas
from .base import AXES, AXIS_WORDS, CHANNELS, SPATIAL, Layer, Roles, Shape, Window, as_tuple, spatial_dims


@dataclass(frozen=True)
class Spatial(Layer):
    """A layer over ``(N, C, *spatial)`` or unbatched ``(C, *spatial)`` input."""

    dims: int = 2

    def ranks(self) -> tuple[int, ...]:
        return (self.dims + 1, self.dims + 2)

    def _rank_message(self, shape: Shape) -> str:
        return (
            f"expects a {self.dims + 1}-D (unbatched C×{'×'.join(self.axes)}) or {self.dims + 2}-D (batched) input,"
            f" got {len(shape)}-D {list(shape)}"
        )

    @property
    def axes(self) -> tuple[str, ...]:
        return AXES[self.dims]

    def axis_prefix(self, axis: str) -> str:
        """``"W: "`` for multi-axis layers, nothing for 1-D ones."""
        return f"{axis}: " if self.dims > 1 else ""

    def spatial(self, shape: Shape) -> Shape:
        return shape[-self.dims :]

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """The layer reads its input as (N, C, *spatial) whatever came before, and gives that."""
        return roles[: len(out) - self.dims - 1] + (CHANNELS,) + (SPATIAL,) * self.dims

    def spatial_sizes(self, spatial: Shape) -> Shape | None:
        """The output's spatial sizes for the input's ``spatial`` sizes, where they come without a
        word to say: the hot path of ``output_shape``, for an input whose rank and channels this
        layer has accepted before and whose sizes are within 1..MAX_SIZE. None where only
        ``output_shape`` can answer (and say why): a window that does not fit, a padding mode's
        limit, a family without a shortcut."""
        return None

    def replace_spatial(self, shape: Shape, sizes: tuple[int, ...], channels: int | None = None) -> Shape:
        """``shape`` with the spatial ``sizes`` (and ``channels``, when given) in place of its own."""
        if channels is None:
            return shape[: -self.dims] + sizes
        return shape[: -self.dims - 1] + (channels,) + sizes

    def uncovered_warnings(self, shape: Shape, counts: list[int]) -> list[str]:
        """Warnings about trailing input positions that no window reads."""
        lines = []
        for axis, count in zip(self.axes, counts):
            if count:
                word = AXIS_WORDS[axis]
                what = f"the last {count} {word}" if count > 1 else f"the last {word.rstrip('s')}"
                lines.append(
                    f"{self.type_name}: {what} of the input ({axis}) {'are' if count > 1 else 'is'} never covered"
                    " by a window (the stride does not divide evenly)"
                )
        return lines


@dataclass(frozen=True)
class Sliding(Spatial):
    """A window sliding over every spatial axis (Conv, MaxPool, AvgPool).

    A family gives its per-axis ``kernel_size``, ``stride``, ``dilation``, ``pads()`` and
    ``ceil``; :meth:`geometry` turns them and an input into one :class:`formulas.SlidingAxis`
    per axis, which the output shape, explanation, picture, warnings and receptive field read.
    """

    kernel_size: tuple[int, ...] = (1,)
    stride: tuple[int, ...] = (1,)
    dilation: tuple[int, ...] = (1,)

    SLIDING_WINDOW: ClassVar[bool] = True

    @property
    def ceil(self) -> bool:
        return False

    def pads(self) -> list[tuple[int, int]]:
        """(left, right) padding per spatial axis."""
        raise NotImplementedError

    @cached_property
    def axis_rules(self) -> tuple[tuple[int, int, int, int, int, bool], ...]:
        """Per axis, what :func:`formulas.sliding_out` takes after the size: (kernel, stride,
        pad_left, pad_right, dilation, ceil), worked out once per layer."""
        return tuple((k, s, pl, pr, d, self.ceil) for k, s, d, (pl, pr) in zip(self.kernel_size, self.stride, self.dilation, self.pads()))

    def geometry(self, shape: Sequence[int]) -> tuple[formulas.SlidingAxis, ...]:
        """One :class:`formulas.SlidingAxis` per spatial axis of ``shape`` (not yet validated)."""
        return tuple(
            formulas.sliding_axis(axis, size, *rule) for axis, size, rule in zip(self.axes, tuple(shape)[-self.dims :], self.axis_rules)
        )

    def shortcut(self) -> bool:
        """Whether every window that fits gives the output without a word to say (conv's
        reflect/circular padding has limits of its own: then :meth:`spatial_sizes` is None)."""
        return True

    @cached_property
    def _axis_columns(self) -> tuple[Callable[..., int], tuple[tuple[Any, ...], ...]] | None:
        """:meth:`spatial_sizes`'s formula and its per-axis arguments as columns (kernels,
        strides, …): :func:`formulas.conv_out`, or :func:`formulas.pool_out` with ceil_mode (as
        :func:`formulas.sliding_out` chooses); None without a :meth:`shortcut`."""
        if not self.shortcut():
            return None
        if self.ceil:  # what sliding_out does with ceil_mode (the padding is the same on both sides)
            return formulas.pool_out, tuple(zip(*((k, s, pl, d, True) for k, s, pl, _, d, _ in self.axis_rules)))
        return formulas.conv_out, tuple(zip(*(rule[:5] for rule in self.axis_rules)))

    @cached_property
    def _square(self) -> Callable[[int], int] | None:
        """One axis's output size as a function of its input size, where every axis has the same
        rule (``k=3``, not ``k=3x5``): a square input is worked out once. None otherwise."""
        if len(set(self.axis_rules)) != 1 or self._axis_columns is None:
            return None
        formula, columns = self._axis_columns
        arguments = tuple(column[0] for column in columns)
        return lambda size: formula(size, *arguments)

    def spatial_sizes(self, spatial: Shape) -> Shape | None:
        """The output size of every axis when a window fits on each, else None (then
        :meth:`geometry` says why). The hot path of ``output_shape``: the same per-axis formula,
        without building the geometry (once for a square input, else one ``map`` over the axes)."""
        square = self._square
        if square is not None and spatial.count(spatial[0]) == self.dims:
            out = square(spatial[0])
            return (out,) * self.dims if out >= 1 else None
        if self._axis_columns is None:
            return None
        formula, columns = self._axis_columns
        sizes = tuple(map(formula, spatial, *columns))
        return sizes if min(sizes) >= 1 else None

    def window(self, shape: Shape) -> list[Window]:
        return [Window(formulas.effective_kernel(k, d), s, pl) for k, s, pl, _, d, _ in self.axis_rules]

    def explain_head(self) -> list[str]:
        """Lines before the per-axis arithmetic (conv's note on padding='same')."""
        return []

    @property
    def pad_mode(self) -> str:
        """How the padding is filled (conv's padding_mode; pooling pads with what never counts)."""
        return "zeros"

    def explain(self, shape: Sequence[int]) -> list[str]:
        """The symbolic formula (and the lecture's form), the numbers per axis, a picture per axis."""
        shape = self.check_input(shape)
        axes = self.geometry(shape)
        head = formulas.formula_lines("sliding", dilated=any(d != 1 for d in self.dilation), ceil_mode=self.ceil)
        return self.explain_head() + head + [axis.explain() for axis in axes] + axis_pictures(axes, lambda a: a.picture(self.pad_mode))

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        shape = self.check_input(shape)
        if self.ceil:
            return []  # ceil_mode's last window reaches the end
        self.output_shape(shape)
        return self.uncovered_warnings(shape, [axis.uncovered for axis in self.geometry(shape)])


def pooling_window(type_name: str, kw: dict[str, Any]) -> tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(dims, kernel_size, stride, padding) of a pooling layer's arguments (and its inverse,
    MaxUnpool's): per-axis tuples, the stride defaulting to the kernel as in torch."""
    dims = spatial_dims(type_name)
    kernel = as_tuple(type_name, "kernel_size", kw["kernel_size"], dims)
    stride = kernel if kw["stride"] is None else as_tuple(type_name, "stride", kw["stride"], dims)
    return dims, kernel, stride, as_tuple(type_name, "padding", kw["padding"], dims, minimum=0)


def axis_pictures(axes: Sequence[Any], draw: Callable[[Any], list[str]]) -> list[str]:
    """Every axis's picture; an axis like the one before it says so instead of repeating it."""
    lines: list[str] = []
    for index, axis in enumerate(axes):
        same = next((other for other in axes[:index] if other[1:] == axis[1:]), None)
        lines.extend([f"{axis.name}: the same as {same.name}"] if same is not None else draw(axis))
    return lines


def compact(values: tuple[int, ...] | str) -> str:
    """``(3, 3)`` → ``"3"``, ``(3, 5)`` → ``"3x5"``, strings as they are."""
    if isinstance(values, str):
        return values
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))
