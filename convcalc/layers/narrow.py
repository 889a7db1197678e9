"""Narrow: a slice of one dimension, ``torch.narrow(x, dim, start, length)`` (ShuffleNet's
``x.chunk(2, dim=1)`` is two of them, channels [0, C/2) and [C/2, C)); Slice: every ``step``-th entry of one
dimension, ``x[..., start:end:step]`` (LeViT's ``x[:, ::2, ::2]``), torch's ``aten::slice(dim, start, end, step)``.

torch has no ``nn`` class for either (``OWN_MODULE``): ``verify`` builds its own module, which calls
``torch.narrow`` or indexes with the slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import IDENTITY, REQUIRED, Layer, Shape, Window, as_int, register, table
from .dims import as_dim, normalize_dim, shape_text


@register("Narrow")
@dataclass(frozen=True)
class Narrow(Layer):
    """``torch.narrow``: dimension ``dim`` keeps ``length`` entries from ``start`` (negative counts
    from the end, as in torch); every other dimension stays."""

    dim: int = 1
    start: int = 0
    length: int = 1

    PARAMS: ClassVar[dict[str, Any]] = {"dim": REQUIRED, "start": REQUIRED, "length": REQUIRED}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Narrow:
        # length 0 is torch's empty tensor, which convcalc does not calculate with
        return cls(type_name=type_name, dim=as_dim(type_name, "dim", kw["dim"]), start=as_int(type_name, "start", kw["start"], minimum=None),
                   length=as_int(type_name, "length", kw["length"]))

    def _bounds(self, shape: Shape) -> tuple[int, int]:
        """(dimension, start) resolved against ``shape``, as torch resolves them, or the ShapeError."""
        dim = normalize_dim(self, "dim", self.dim, shape)
        size = shape[dim]
        if not -size <= self.start <= size:
            raise self.error(f"start {self.start} is out of range for dimension {dim} of {shape_text(shape)} (size {size});"
                             f" {self._start_fix(size)}")
        start = self.start + size if self.start < 0 else self.start
        if start + self.length > size:
            fix = f"use a length up to {size - start}" if start < size else self._start_fix(size)
            raise self.error(f"start {start} + length {self.length} exceeds dimension {dim} of {shape_text(shape)} (size {size}); {fix}")
        return dim, start

    def _start_fix(self, size: int) -> str:
        """Starts that work with this length on a dimension of ``size`` (every one in the range does)."""
        if self.length > size:
            return f"use start 0 and a length up to {size}"
        if self.length == 1:
            return f"use a start from {-size} to {size - 1}"
        return f"use a start from {-size} to {-self.length}" if self.start < 0 else f"use a start from 0 to {size - self.length}"

    def _output(self, shape: Shape) -> Shape:
        dim, _ = self._bounds(shape)
        return (*shape[:dim], self.length, *shape[dim + 1 :])

    def window(self, shape: Shape) -> list[Window] | str:
        """A slice of the batch or the channels leaves the receptive field as it is; a slice of a
        spatial axis crops it: its first position is ``start`` input positions in."""
        dim, start = self._bounds(tuple(shape))
        if dim < 2:
            return IDENTITY
        return [Window(1, 1, -start if axis == dim else 0) for axis in range(2, len(shape))]

    def describe(self) -> str:
        return f"dim={self.dim} start={self.start} length={self.length}"


@register("Slice")
@dataclass(frozen=True)
class Slice(Layer):
    """``x[..., start:end:step]`` on dimension ``dim``: Python's slice rules (``None`` an end of the dimension, negative
    counts from the end, beyond the size clamped to it), ``step`` ≥ 1 as torch requires; every other dimension stays."""

    dim: int = 1
    start: int | None = None
    end: int | None = None
    step: int = 1

    PARAMS: ClassVar[dict[str, Any]] = {"dim": REQUIRED, "start": None, "end": None, "step": 1}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Slice:
        ends = {name: None if kw[name] is None else as_int(type_name, name, kw[name], minimum=None) for name in ("start", "end")}
        return cls(type_name=type_name, dim=as_dim(type_name, "dim", kw["dim"]), step=as_int(type_name, "step", kw["step"]), **ends)

    def _kept(self, shape: Shape) -> tuple[int, range]:
        """(dimension, the indices it keeps) against ``shape``, or the ShapeError of a slice that keeps none."""
        dim = normalize_dim(self, "dim", self.dim, shape)
        kept = range(*slice(self.start, self.end, self.step).indices(shape[dim]))
        if not kept:
            raise self.error(f"[{self._text()}] keeps no entry of dimension {dim} of {shape_text(shape)} (size {shape[dim]});"
                             f" use a start from {-shape[dim]} to {shape[dim] - 1} and an end after it, such as start 0 and no end")
        return dim, kept

    def _text(self) -> str:
        return f"{'' if self.start is None else self.start}:{'' if self.end is None else self.end}" + (f":{self.step}" if self.step != 1 else "")

    def _output(self, shape: Shape) -> Shape:
        dim, kept = self._kept(shape)
        return (*shape[:dim], len(kept), *shape[dim + 1 :])

    def window(self, shape: Shape) -> list[Window] | str:
        """A slice of the batch or the channels leaves the receptive field as it is; a stepped slice of a spatial axis
        samples it: a window of 1, the step its stride, its first position ``start`` input positions in."""
        dim, kept = self._kept(tuple(shape))
        if dim < 2:
            return IDENTITY
        return [Window(1, self.step, -kept.start) if axis == dim else Window(1, 1, 0) for axis in range(2, len(shape))]

    def describe(self) -> str:
        return f"dim={self.dim} [{self._text()}]"


LAYERS = table(Narrow, Slice)
