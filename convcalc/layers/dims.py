"""Small helpers shared by the shape-only layer families: dimension indices, broadcasting and shape text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import SpecError
from ..numbers import show
from ..sizes import MAX_SIZE
from .base import Layer, Shape

#: What a dimension index is, with one that works (the rank is not known where the value is read).
USE_DIM = "use a dimension from -rank to rank - 1 of the input, such as 1 (the channels of N×C×H×W)"


def as_dim(type_name: str, name: str, value: Any) -> int:
    """A dimension index as torch takes it: any whole number (negative counts from the end)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{type_name}: {name} must be a whole number (a dimension index), got {show(value)}; {USE_DIM}", layer=type_name)
    if abs(value) > MAX_SIZE:
        raise SpecError(f"{type_name}: {name} {show(value)} is not a dimension index; {USE_DIM}", layer=type_name)
    return value


def normalize_dim(layer: Layer, name: str, dim: int, shape: Shape) -> int:
    """``dim`` resolved against ``shape`` like torch's ``maybe_wrap_dim``, or the layer's ShapeError."""
    rank = len(shape)
    if not -rank <= dim < rank:
        raise layer.error(
            f"{name}={dim} is out of range for the {rank}-D input {list(shape)};"
            f" use a dimension from {-rank} to {rank - 1}"
        )
    return dim % rank


class Mismatch(NamedTuple):
    """Where shapes do not broadcast: the dimension (from the right: -1 is the last) and each shape's size there."""

    dim: int
    sizes: tuple[int, ...]


def broadcast(shapes: Sequence[Shape]) -> Shape | Mismatch:
    """torch's broadcasting: sizes align from the right, each equal or 1. The result, or the first
    dimension where two sizes other than 1 differ."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis, sizes in enumerate(zip(*padded)):
        if len(set(sizes) - {1}) > 1:
            return Mismatch(axis - rank, sizes)
        out.append(max(sizes))
    return tuple(out)


def near_divisor(size: int, wanted: int, reach: int = 4096) -> int:
    """The divisor of ``size`` closest to ``wanted`` (the smaller one on a tie), among those up to ``reach``:
    a number of heads (or a head size) to suggest. Bounded: a size of 10¹² is not searched to its end."""
    divisors = [d for d in range(1, min(size, reach) + 1) if size % d == 0]
    return min(divisors, key=lambda d: (abs(d - wanted), d))


def shape_text(shape: Shape | list[int]) -> str:
    """``[1, 32, 7, 7]`` for messages."""
    return str(list(shape))


def times(values: Shape | list[int]) -> str:
    """``(32, 7, 7)`` → ``"32×7×7"``."""
    return "×".join(str(v) for v in values)


def number(value: float) -> str:
    """``2.0`` → ``"2"``, ``0.25`` → ``"0.25"`` for short descriptions."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
