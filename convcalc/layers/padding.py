"""Padding layers: Zero/Constant/Reflection/Replication/CircularPad{1,2,3}d.

``padding`` is an int or 2·dims values in torch's order — (left, right, top, bottom, front,
back), the last axis first. Negative values crop. Per axis, with out = in + left + right:
- constant (Zero, Constant): the crop may not exceed the input (in + min(left, 0) + min(right, 0) ≥ 0);
- reflection: left < in and right < in (the mirror needs that many other pixels);
- replication: no limit;
- circular: left ≤ in and right ≤ in (it wraps around at most once), and a crop on one side
  combined with a wrap on the other must fit torch's copy of the wrapped strip (see
  ``_circular_copies_fit``);
and convcalc wants out ≥ 1 (torch returns an empty tensor for 0 in some modes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import formulas
from ..errors import ErrorKind, SpecError
from .base import (
    AXES,
    REQUIRED,
    Layer,
    Shape,
    Window,
    as_float,
    as_int,
    register,
    spatial_dims,
    table,
)
from .dims import number, shape_text

#: Class-name prefix → F.pad mode.
KINDS = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect", "Replication": "replicate", "Circular": "circular"}
SIDES = ("left", "right", "top", "bottom", "front", "back")


def _names(*kinds: str) -> list[str]:
    return [f"{kind}Pad{d}d" for kind in kinds for d in (1, 2, 3)]


@register(*_names("Zero", "Reflection", "Replication", "Circular"))
@dataclass(frozen=True)
class Pad(Layer):
    """A padding layer; ``padding`` holds 2·dims values in torch's order (last axis first)."""

    dims: int = 2
    mode: str = "constant"
    padding: tuple[int, ...] = (0, 0, 0, 0)

    PARAMS: ClassVar[dict[str, Any]] = {"padding": REQUIRED}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Pad:
        return cls(**cls._values(type_name, kw))

    @classmethod
    def _values(cls, type_name: str, kw: dict[str, Any]) -> dict[str, Any]:
        dims = spatial_dims(type_name)
        mode = KINDS[type_name[: -len("Pad1d")]]
        value = kw["padding"]
        count = 2 * dims
        if isinstance(value, (list, tuple)):
            if len(value) != count:
                raise SpecError(
                    f"{type_name}: padding needs {count} values ({', '.join(SIDES[:count])}) or one number,"
                    f" got {list(value)}",
                    layer=type_name,
                )
            padding = tuple(as_int(type_name, "padding", v, minimum=None) for v in value)
        else:
            padding = (as_int(type_name, "padding", value, minimum=None),) * count
        return {"type_name": type_name, "dims": dims, "mode": mode, "padding": padding}

    def torch_kwargs(self) -> dict[str, Any]:
        return {"padding": self.padding}

    # -- geometry -------------------------------------------------------------------------
    @property
    def axes(self) -> tuple[str, ...]:
        return AXES[self.dims]

    def pads(self) -> list[tuple[int, int]]:
        """(before, after) per spatial axis, first axis first (D, H, W order)."""
        pairs = [(self.padding[2 * i], self.padding[2 * i + 1]) for i in range(self.dims)]
        return pairs[::-1]

    def ranks(self) -> tuple[int, ...] | None:
        return None if self.mode == "constant" else (self.dims + 1, self.dims + 2)

    def check_input(self, shape: Sequence[int]) -> Shape:
        shape = super().check_input(shape)
        if self.mode == "constant" and len(shape) < self.dims:
            raise self.error(
                f"pads the last {self.dims} dimensions, but the input {shape_text(shape)} has {len(shape)}"
            )
        return shape

    def _rank_message(self, shape: Shape) -> str:
        axes = ", ".join(self.axes)
        return (
            f"expects a {self.dims + 1}-D (C, {axes}) or {self.dims + 2}-D (N, C, {axes}) input,"
            f" got {len(shape)}-D {shape_text(shape)}"
        )

    def _output(self, shape: Shape) -> Shape:
        sizes = []
        for axis, size, (before, after) in zip(self.axes, shape[-self.dims :], self.pads()):
            where = f"{axis}: " if self.dims > 1 else ""
            out = size + before + after
            self._check_axis(where, size, before, after)
            if out < 1:
                raise self.error(
                    f"{where}{size} + ({before}) + ({after}) = {out}: the crop leaves nothing of the input;"
                    f" the output must be at least 1 — crop at most {size - 1} in total"
                )
            sizes.append(out)
        if self.mode == "circular":
            self._check_circular(shape, sizes)
        return (*shape[: -self.dims], *sizes)

    def _check_axis(self, where: str, size: int, before: int, after: int) -> None:
        if self.mode == "constant" and size + min(before, 0) + min(after, 0) < 0:
            raise self.error(
                f"{where}cropping {-min(before, 0) - min(after, 0)} from an input of {size} removes more than it has;"
                f" crop at most {size}"
            )
        limit = formulas.pad_limit(self.mode, size, before, after)
        if limit is not None:
            rule, smallest = formulas.pad_limit_rule(self.mode, max(before, after), size)
            raise self.error(
                f"{where}{'reflection' if self.mode == 'reflect' else self.mode} {rule};"
                f" use padding ≤ {limit} or an input of at least {smallest}",
                ErrorKind.PADDING,
            )

    def _check_circular(self, shape: Shape, sizes: list[int]) -> None:
        out_shape = [*shape[: -self.dims], *sizes]
        first = len(shape) - self.dims
        for i, (axis, size, (before, after)) in enumerate(zip(self.axes, shape[-self.dims :], self.pads())):
            if not _circular_copies_fit(out_shape, first + i, size, before, after):
                where = f"{axis}: " if self.dims > 1 else ""
                raise self.error(
                    f"{where}circular padding ({before}, {after}) on an input of {size} crops one side more than"
                    " torch's circular pad can wrap onto the other; pad and crop in separate layers"
                )

    def window(self, shape: Shape) -> list[Window]:
        return [Window(1, 1, before) for before, _ in self.pads()]

    def describe(self) -> str:
        if len(set(self.padding)) == 1:
            return f"p={self.padding[0]}"
        return "p=(" + ", ".join(map(str, self.padding)) + ")"

    def explain(self, shape: Sequence[int]) -> list[str]:
        shape = self.check_input(shape)
        return [
            f"{axis}: {size} + {before} + {after} = {size + before + after}"
            for axis, size, (before, after) in zip(self.axes, shape[-self.dims :], self.pads())
        ]


@register(*_names("Constant"))
@dataclass(frozen=True)
class ConstantPad(Pad):
    """``nn.ConstantPad{1,2,3}d``: padding filled with ``value``."""

    value: float = 0.0

    PARAMS: ClassVar[dict[str, Any]] = {"padding": REQUIRED, "value": REQUIRED}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> ConstantPad:
        return cls(value=as_float(type_name, "value", kw["value"]), **cls._values(type_name, kw))

    def torch_kwargs(self) -> dict[str, Any]:
        return {"padding": self.padding, "value": self.value}

    def describe(self) -> str:
        return f"{super().describe()} value={number(self.value)}"


def _slice(size: int, start: int, end: int) -> tuple[int, int]:
    """ATen's ``slice(start, end)`` bounds on a dimension of ``size`` (negatives wrap once, then clamp)."""
    if start < 0:
        start += size
    if end < 0:
        end += size
    start = min(max(start, 0), size)
    end = min(max(end, start), size)
    return start, end


def _circular_copies_fit(out_shape: list[int], dim: int, size: int, before: int, after: int) -> bool:
    """Whether torch's circular pad (ATen ``_pad_circular_symint``) can make its copies on ``dim``.

    It copies the (cropped) input into the output, then the wrapped strips from inside the
    output to its borders. A copy fails when the source does not broadcast to the destination,
    or when both are dense views of the same memory that partially overlap.
    """
    out = out_shape[dim]
    lo, hi = max(before, 0), max(after, 0)
    dst = _slice(out, lo, out - hi)
    src = _slice(size, max(-before, 0), size - max(-after, 0))
    if not _broadcasts(src, dst):
        return False
    lead = math.prod(out_shape[:dim])

    def copy_fits(dst: tuple[int, int], src: tuple[int, int]) -> bool:
        if not _broadcasts(src, dst):
            return False
        if dst[0] == dst[1] or src[0] == src[1] or dst == src:
            return True
        dense = lead == 1  # a slice of one dimension is dense only if the dimensions before it are 1
        return not (dense and dst[0] < src[1] and src[0] < dst[1])

    wrapped_left = before <= 0 or copy_fits(_slice(out, 0, before), _slice(out, out - before - hi, out - hi))
    wrapped_right = after <= 0 or copy_fits(_slice(out, out - after, out), _slice(out, lo, lo + after))
    return wrapped_left and wrapped_right


def _broadcasts(src: tuple[int, int], dst: tuple[int, int]) -> bool:
    length = src[1] - src[0]
    return length == dst[1] - dst[0] or length == 1


LAYERS = table(Pad, ConstantPad)
