"""Add, Subtract, Multiply, Divide and Concat: the layers that join two or more branches of a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, ShapeError, SpecError
from .base import IDENTITY, UNKNOWN, Layer, Roles, Shape, as_int, register, table
from .dims import Mismatch, broadcast


@dataclass(frozen=True)
class Merge(Layer):
    """A layer of several inputs. ``merge_shapes`` replaces ``output_shape``."""

    MANY_INPUTS: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, Any]] = {}
    #: The inputs line up dimension by dimension (each equal, or 1 where it broadcasts; Concat's every one but
    #: ``dim``), so a model's diagnosis names the dimensions that differ and fixes for them; False where the
    #: rule is another (a matrix product, attention): the diagnosis is then the layer's own rule.
    ALIGNED: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Merge:
        return cls(type_name=type_name)

    def output_shape(self, shape: Sequence[int]) -> Shape:
        return self.merge_shapes([shape])

    def merge_shapes(self, shapes: Sequence[Sequence[int]]) -> Shape:
        checked = [self.check_input(shape) for shape in shapes]
        if len(checked) < 2:
            raise self.error(f"needs at least two inputs (from: [a, b]), got {len(checked)}")
        return self.check_output(self._merge(checked))

    def _merge(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def merge_macs(self, shapes: Sequence[Sequence[int]]) -> int:
        """Multiply-accumulates of joining ``shapes``: 0 for elementwise joins and concatenation."""
        return 0

    def window(self, shape: Shape) -> str | None:
        return IDENTITY

    def merge_roles(self, shapes: Sequence[Shape], out: Shape, roles: Sequence[Roles]) -> Roles:
        """What the walk knows of the output's axes: what every input agrees on (inputs of the rank of
        the output, aligned); the rest is unknown."""
        if any(len(r) != len(out) for r in roles):
            return (UNKNOWN,) * len(out)
        return tuple(axis[0] if len(set(axis)) == 1 else UNKNOWN for axis in zip(*roles))

    def error(self, detail: str, kind: ErrorKind = ErrorKind.MERGE, **fields: Any) -> ShapeError:
        return super().error(detail, kind, **fields)


@register("Add", "Subtract", "Multiply", "Divide")
@dataclass(frozen=True)
class ElementwiseMerge(Merge):
    """``a + b`` / ``a - b`` / ``a * b`` / ``a / b`` with torch's broadcasting: sizes align from the right, each
    equal or 1. Subtract and Divide take their inputs in order: ``from: [a, b]`` is ``a - b`` (more inputs: ``a - b - c``)."""

    def _merge(self, shapes: list[Shape]) -> Shape:
        out = broadcast(shapes)
        if isinstance(out, Mismatch):
            raise self.error(
                f"the inputs {_listed(shapes)} differ in dimension {out.dim}"
                f" ({' vs '.join(map(str, sorted(set(out.sizes) - {1})))}) and neither is 1, so they cannot be broadcast"
            )
        return out

    def torch_kwargs(self) -> dict[str, Any]:
        return {}


@register("Concat")
@dataclass(frozen=True)
class Concat(Merge):
    """``torch.cat(inputs, dim)``: same rank, equal sizes except along ``dim`` (default 1: channels)."""

    dim: int = 1
    PARAMS: ClassVar[dict[str, Any]] = {"dim": 1}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Concat:
        dim = as_int(type_name, "dim", kw["dim"], minimum=None)
        if abs(dim) > 64:
            raise SpecError(f"{type_name}: dim {dim} is out of range", layer=type_name)
        return cls(type_name=type_name, dim=dim)

    def resolved_dim(self, rank: int) -> int:
        if not -rank <= self.dim < rank:
            raise self.error(f"dim {self.dim} is out of range for {rank}-D inputs (use −{rank} … {rank - 1})")
        return self.dim % rank

    def _merge(self, shapes: list[Shape]) -> Shape:
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            raise self.error(f"the inputs have different ranks: {_listed(shapes)}")
        dim = self.resolved_dim(len(shapes[0]))
        first = shapes[0]
        for other in shapes[1:]:
            for axis, (a, b) in enumerate(zip(first, other)):
                if axis != dim and a != b:
                    raise self.error(
                        f"the inputs {list(first)} and {list(other)} must match in every dimension but {dim};"
                        f" dimension {axis} differs: {a} vs {b} (by {abs(a - b)})"
                    )
        return (*first[:dim], sum(s[dim] for s in shapes), *first[dim + 1 :])

    def describe(self) -> str:
        return f"dim={self.dim}"

    def torch_kwargs(self) -> dict[str, Any]:
        return {"dim": self.dim}


def _listed(shapes: list[Shape], shown: int = 3) -> str:
    """``[1, 2] and [1, 3]``; past ``shown`` inputs, the first ones and a count (messages stay one short line)."""
    text = " and ".join(str(list(s)) for s in shapes[:shown])
    return text if len(shapes) <= shown else f"{text} … ({len(shapes):,} inputs)"


LAYERS = table(ElementwiseMerge, Concat)
