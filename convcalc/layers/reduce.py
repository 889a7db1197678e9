"""Sum, Mean, Norm and Amax over dimensions: ``x.sum(dim, keepdim)``, ``x.mean(dim, keepdim)``, ``x.norm(p, dim, keepdim)``,
``torch.amax(x, dim, keepdim)`` (also ``x.max(dim)[0]``: VOLO's ``x_aux.max(1)[0]``).

ResNeSt's split attention adds its radix groups (``x.reshape(B, radix, C // radix, H, W).sum(dim=1)``);
token models average their tokens (``x.mean(dim=1)``). ``dim`` is one index or a list, negative
ones counted from the end, each once, as torch checks them; the reduced dimensions go (or stay as
size 1 with ``keepdim: true``). No parameters; MACs 0, as FlopCounterMode counts a reduction (it
multiplies nothing by a weight). A mean over every spatial axis of N×C×H×W is also an
``AdaptiveAvgPool2d`` to 1 (then a Flatten without keepdim). torch.nn has no such class: verify
builds its own module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import SpecError
from ..numbers import show
from .base import (
    IDENTITY,
    REQUIRED,
    UNKNOWN,
    Layer,
    Roles,
    Shape,
    as_bool,
    as_float,
    register,
    table,
)
from .dims import USE_DIM, as_dim, shape_text


def _dims(type_name: str, value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and not value:
        raise SpecError(f"{type_name}: dim must name at least one dimension, got []; {USE_DIM}", layer=type_name)
    if len(values) > 64:
        raise SpecError(f"{type_name}: dim names {len(values)} dimensions, got {show(list(values))}; a tensor has at most 64", layer=type_name)
    return tuple(as_dim(type_name, "dim", v) for v in values)


@dataclass(frozen=True)
class Reduce(Layer):
    """A reduction over ``dim`` (one index or several), keeping them as size 1 with ``keepdim``."""

    dim: tuple[int, ...] = (1,)
    keepdim: bool = False

    PARAMS: ClassVar[dict[str, Any]] = {"dim": REQUIRED, "keepdim": False}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Reduce:
        return cls(type_name=type_name, dim=_dims(type_name, kw["dim"]), keepdim=as_bool(type_name, "keepdim", kw["keepdim"]))

    def torch_kwargs(self) -> dict[str, Any]:
        return {"dim": list(self.dim), "keepdim": self.keepdim}

    def resolved(self, shape: Shape) -> tuple[int, ...]:
        """``dim`` against ``shape`` in torch's order: each in range, then none twice."""
        rank = len(shape)
        for dim in self.dim:
            if not -rank <= dim < rank:
                fix = sorted({d % rank for d in self.dim if -rank <= d < rank}) or [rank - 1]
                scalar = " with keepdim: true" if not self.keepdim and len(fix) == rank else ""  # else it is a single number
                raise self.error(
                    f"dim {dim} is out of range for the {rank}-D input {shape_text(shape)} (torch: expected to be in range of"
                    f" [{-rank}, {rank - 1}]); use dim: {fix[0] if len(fix) == 1 else fix}{scalar}"
                )
        wrapped = tuple(d % rank for d in self.dim)
        twice = next((d for d in wrapped if wrapped.count(d) > 1), None)
        if twice is not None:
            fix = sorted(set(wrapped))
            scalar = " with keepdim: true" if not self.keepdim and len(fix) == rank else ""
            raise self.error(
                f"dim {list(self.dim)} names dimension {twice} twice (torch: dim {twice} appears multiple times in the list of dims);"
                f" use dim: {fix[0] if len(fix) == 1 else fix}{scalar}"
            )
        if not self.keepdim and len(wrapped) == rank:
            raise self.error(
                f"dim {list(self.dim)} reduces every dimension of {shape_text(shape)}, the batch included, to a single number, which"
                " convcalc does not calculate with; use keepdim: true, or leave the batch (0) out"
            )
        return wrapped

    def _output(self, shape: Shape) -> Shape:
        dims = self.resolved(shape)
        if self.keepdim:
            return tuple(1 if axis in dims else size for axis, size in enumerate(shape))
        return tuple(size for axis, size in enumerate(shape) if axis not in dims)

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """The axes left keep their roles; one reduced to size 1 (keepdim) is no longer what it was."""
        dims = self.resolved(shape)
        if self.keepdim:
            return tuple(UNKNOWN if axis in dims else role for axis, role in enumerate(roles))
        return tuple(role for axis, role in enumerate(roles) if axis not in dims)

    def window(self, shape: Shape) -> str | None:
        """Reducing the batch or the channels with keepdim leaves each position's receptive field; else undefined."""
        dims = self.resolved(tuple(shape))
        return IDENTITY if self.keepdim and all(d <= 1 for d in dims) else None

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return self.resolved(tuple(shape)) if self.keepdim else None

    def describe(self) -> str:
        dims = self.dim[0] if len(self.dim) == 1 else list(self.dim)
        return f"dim={dims}" + (" keepdim" if self.keepdim else "")


@register("Sum")
@dataclass(frozen=True)
class Sum(Reduce):
    """``torch.sum(x, dim, keepdim)``."""


@register("Mean")
@dataclass(frozen=True)
class Mean(Reduce):
    """``torch.mean(x, dim, keepdim)``."""


@register("Amax")
@dataclass(frozen=True)
class Amax(Reduce):
    """``torch.amax(x, dim, keepdim)``: the largest value along ``dim`` (``x.max(dim)[0]`` for one dimension)."""


@register("Norm")
@dataclass(frozen=True)
class Norm(Reduce):
    """``torch.linalg.vector_norm(x, p, dim, keepdim)`` (``x.norm(p=2, dim=…)``, ConvNeXt V2's global response norm)."""

    p: float = 2.0

    PARAMS: ClassVar[dict[str, Any]] = {"dim": REQUIRED, "keepdim": False, "p": 2.0}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Norm:
        p = kw["p"]
        infinite = p in ("inf", "-inf") if isinstance(p, str) else isinstance(p, float) and math.isinf(p)
        if not infinite:
            try:
                p = as_float(type_name, "p", p)
            except SpecError:
                fro = "; 'fro' (torch.norm's) is the 2-norm: use p: 2" if p == "fro" else ""
                raise SpecError(f"{type_name}: p must be a number, inf or -inf (torch's ord), got {show(p)}{fro}", layer=type_name) from None
        return cls(type_name=type_name, dim=_dims(type_name, kw["dim"]), keepdim=as_bool(type_name, "keepdim", kw["keepdim"]),
                   p=float(p))

    def torch_kwargs(self) -> dict[str, Any]:
        return {**super().torch_kwargs(), "p": self.p}

    def describe(self) -> str:
        return f"p={self.p:g} " + super().describe()


LAYERS = table(Sum, Mean, Amax, Norm)
