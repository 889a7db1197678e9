"""Linear, Identity, Flatten, Unflatten and Permute: the layers between feature maps and feature vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from .base import (
    IDENTITY,
    REQUIRED,
    SPATIAL,
    UNKNOWN,
    Layer,
    Roles,
    Shape,
    as_bool,
    as_int,
    product,
    register,
    table,
)
from .dims import as_dim, normalize_dim, shape_text, times


@register("Linear")
@dataclass(frozen=True)
class Linear(Layer):
    """``nn.Linear``: acts on the last dimension, ``(*, in_features)`` → ``(*, out_features)``."""

    in_features: int | None = None
    out_features: int = 1
    bias: bool = True

    PARAMS: ClassVar[dict[str, Any]] = {"in_features": None, "out_features": REQUIRED, "bias": True}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Linear:
        in_features = kw["in_features"]
        return cls(
            type_name=type_name,
            in_features=None if in_features is None else as_int(type_name, "in_features", in_features),
            out_features=as_int(type_name, "out_features", kw["out_features"]),
            bias=as_bool(type_name, "bias", kw["bias"]),
        )

    def bind(self, shape: Sequence[int]) -> Linear:
        shape = self.check_input(shape)
        features = shape[-1]
        if self.in_features is None:
            return self.with_values(in_features=features)
        if features != self.in_features:
            raise self.error(self._mismatch(shape), ErrorKind.FEATURES)
        return self

    def _mismatch(self, shape: Shape) -> str:
        features = shape[-1]
        text = (
            f"expects in_features = {features} (the last dimension of the input {shape_text(shape)}),"
            f" but the spec says {self.in_features}"
        )
        if len(shape) >= 3:
            flat = product(shape[1:])
            if flat == self.in_features:
                return (
                    f"{text}; nn.Linear acts on the last dimension only — put a Flatten before it to get"
                    f" {flat} ({times(shape[1:])}) features"
                )
            return (
                f"{text}; use in_features: {features}, or put a Flatten before it to get"
                f" {flat} ({times(shape[1:])}) features"
            )
        return f"{text}; use in_features: {features} (or make the previous layer produce {self.in_features})"

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        return (*shape[:-1], self.out_features)

    @property
    def num_params(self) -> int:
        if self.in_features is None:
            raise self.error("in_features is not known yet: give in_features or an input shape")
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

    def macs(self, shape: Sequence[int]) -> int:
        shape = self.check_input(shape)
        self.output_shape(shape)
        return product(shape[:-1]) * shape[-1] * self.out_features

    def window(self, shape: Shape) -> None:
        return None

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return (len(shape) - 1,)  # the features of one position: the other axes are kept

    def describe(self) -> str:
        left = "?" if self.in_features is None else str(self.in_features)
        return f"{left}→{self.out_features}" + ("" if self.bias else " no bias")

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        shape = self.check_input(shape)
        # The mistake: a Linear straight on feature maps, where the last axis is W (or L), not the features.
        # Where the walk knows that axis is no spatial one (a Permute put the channels last, as in
        # ConvNeXt's or a Mixer's MLP), acting on it is the point: no warning.
        if len(shape) >= 3 and (roles is None or roles[-1] == SPATIAL):
            return [
                (
                    f"{self.type_name}: the input {shape_text(shape)} is {len(shape)}-D; nn.Linear acts on its last"
                    f" dimension ({shape[-1]}) only — add a Flatten first if you meant all {product(shape[1:])} features"
                )
            ]
        return []


@register("Identity")
@dataclass(frozen=True)
class Identity(Layer):
    """``nn.Identity``: the input, unchanged."""

    PRESERVES_SHAPE: ClassVar[bool] = True

    PARAMS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Identity:
        return cls(type_name=type_name)

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return ()


@register("Flatten")
@dataclass(frozen=True)
class Flatten(Layer):
    """``nn.Flatten``: dimensions start_dim..end_dim (inclusive) become one."""

    start_dim: int = 1
    end_dim: int = -1

    PARAMS: ClassVar[dict[str, Any]] = {"start_dim": 1, "end_dim": -1}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Flatten:
        start = as_dim(type_name, "start_dim", kw["start_dim"])
        end = as_dim(type_name, "end_dim", kw["end_dim"])
        if start > end and (start >= 0) == (end >= 0):
            raise SpecError(
                f"{type_name}: start_dim {start} comes after end_dim {end}; use start_dim ≤ end_dim"
                f" (e.g. start_dim: {end})",
                layer=type_name,
            )
        return cls(type_name=type_name, start_dim=start, end_dim=end)

    def _output(self, shape: Shape) -> Shape:
        start = normalize_dim(self, "start_dim", self.start_dim, shape)
        end = normalize_dim(self, "end_dim", self.end_dim, shape)
        if start > end:
            raise self.error(
                f"start_dim {self.start_dim} (dimension {start}) comes after end_dim {self.end_dim}"
                f" (dimension {end}) for the {len(shape)}-D input {shape_text(shape)}; use start_dim ≤ {end}"
            )
        return (*shape[:start], product(shape[start : end + 1]), *shape[end + 1 :])

    def window(self, shape: Shape) -> None:
        return None

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """The joined axis keeps the role its parts share (H and W make a spatial L); mixed parts: unknown."""
        start = normalize_dim(self, "start_dim", self.start_dim, shape)
        end = normalize_dim(self, "end_dim", self.end_dim, shape)
        joined = set(roles[start : end + 1])
        return (*roles[:start], joined.pop() if len(joined) == 1 else UNKNOWN, *roles[end + 1 :])

    def describe(self) -> str:
        if (self.start_dim, self.end_dim) == (1, -1):
            return ""
        return f"dims {self.start_dim}..{self.end_dim}"

    def explain(self, shape: Sequence[int]) -> list[str]:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        start = self.start_dim % len(shape)
        end = self.end_dim % len(shape)
        if start == end:
            return [f"dimension {start} alone: nothing to flatten, {shape_text(shape)} stays {shape_text(out)}"]
        return [f"{times(shape[start : end + 1])} = {product(shape[start : end + 1])}: {shape_text(shape)} → {shape_text(out)}"]


@register("Unflatten")
@dataclass(frozen=True)
class Unflatten(Layer):
    """``nn.Unflatten``: one dimension becomes several (one of them may be -1, inferred)."""

    dim: int = 1
    unflattened_size: tuple[int, ...] = (1,)

    PARAMS: ClassVar[dict[str, Any]] = {"dim": REQUIRED, "unflattened_size": REQUIRED}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Unflatten:
        dim = as_dim(type_name, "dim", kw["dim"])
        sizes = kw["unflattened_size"]
        if not isinstance(sizes, (list, tuple)):
            raise SpecError(
                f"{type_name}: unflattened_size must be a list of sizes such as [32, 7, 7], got {sizes!r}",
                layer=type_name,
            )
        if not sizes:
            raise SpecError(f"{type_name}: unflattened_size must not be empty; e.g. [32, 7, 7]", layer=type_name)
        values = []
        for size in sizes:
            if isinstance(size, int) and not isinstance(size, bool) and size == -1:
                values.append(-1)
            else:
                values.append(as_int(type_name, "unflattened_size", size))
        if values.count(-1) > 1:
            raise SpecError(
                f"{type_name}: only one size in unflattened_size can be -1 (inferred), got {values}",
                layer=type_name,
            )
        return cls(type_name=type_name, dim=dim, unflattened_size=tuple(values))

    def torch_kwargs(self) -> dict[str, Any]:
        return {"dim": self.dim, "unflattened_size": self.unflattened_size}

    def _output(self, shape: Shape) -> Shape:
        dim = normalize_dim(self, "dim", self.dim, shape)
        size = shape[dim]
        known = product(s for s in self.unflattened_size if s != -1)
        wanted = list(self.unflattened_size)
        if -1 in wanted:
            if size % known:
                raise self.error(
                    f"cannot split dimension {dim} of size {size} into {self._sizes_text()}: {size} is not a"
                    f" multiple of {known}"
                )
            wanted[wanted.index(-1)] = size // known
        elif known != size:
            raise self.error(
                f"unflattened_size {self._sizes_text()} multiplies to {known}, but dimension {dim} of the input"
                f" {shape_text(shape)} has {size}; the sizes must multiply to {size}"
                + (" (or write -1 for one of them)" if len(wanted) > 1 else "")
            )
        return (*shape[:dim], *wanted, *shape[dim + 1 :])

    def _sizes_text(self) -> str:
        return str(list(self.unflattened_size))

    def window(self, shape: Shape) -> None:
        return None

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """A spatial axis splits into spatial axes (L into H, W); the parts of any other are unknown."""
        dim = normalize_dim(self, "dim", self.dim, shape)
        role = SPATIAL if roles[dim] == SPATIAL else UNKNOWN
        return (*roles[:dim], *(role,) * len(self.unflattened_size), *roles[dim + 1 :])

    def describe(self) -> str:
        return f"dim {self.dim} → {'x'.join('-1' if s == -1 else str(s) for s in self.unflattened_size)}"


def _dims_list(type_name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(
            f"{type_name}: dims must be a list of dimension indices, one per input dimension, such as [0, 2, 3, 1],"
            f" got {value!r}",
            layer=type_name,
        )
    return tuple(as_dim(type_name, "dims", v) for v in value)


@register("Permute")
@dataclass(frozen=True)
class Permute(Layer):
    """``x.permute(dims)`` / ``torch.permute`` (torchvision's ``ops.misc.Permute``): output dimension i is
    input dimension ``dims[i]``. ``dims`` names every dimension once, the batch (0) included, as torch's
    do; negative ones count from the end. torch has no ``nn.Permute``: verify builds its own module."""

    dims: tuple[int, ...] = (0,)

    PARAMS: ClassVar[dict[str, Any]] = {"dims": REQUIRED}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Permute:
        return cls(type_name=type_name, dims=_dims_list(type_name, kw["dims"]))

    def torch_kwargs(self) -> dict[str, Any]:
        return {"dims": list(self.dims)}

    def resolved(self, shape: Shape) -> tuple[int, ...]:
        """``dims`` against ``shape``, checked in torch's order: one per dimension, each in range, none twice."""
        rank = len(shape)
        if len(self.dims) != rank:
            raise self.error(
                f"dims {list(self.dims)} name {len(self.dims)} dimension{'s' if len(self.dims) != 1 else ''}, but the input"
                f" {shape_text(shape)} has {rank} (torch: input.dim() = {rank} is not equal to len(dims) = {len(self.dims)});"
                f" give one index per dimension, e.g. dims: {self._repaired(rank)}"
            )
        for position, dim in enumerate(self.dims):
            if not -rank <= dim < rank:
                raise self.error(
                    f"dims[{position}] = {dim} is out of range for the {rank}-D input {shape_text(shape)}"
                    f" (torch: expected to be in range of [{-rank}, {rank - 1}]); e.g. dims: {self._repaired(rank)}"
                )
        wrapped = tuple(d % rank for d in self.dims)
        if len(set(wrapped)) != rank:
            twice = next(d for d in wrapped if wrapped.count(d) > 1)
            written = [str(d) for d, w in zip(self.dims, wrapped) if w == twice]
            raise self.error(
                f"dims {list(self.dims)} name dimension {twice} twice ({' and '.join(written)}; torch: duplicate dims are"
                f" not allowed); use each of 0 … {rank - 1} once, e.g. dims: {self._repaired(rank)}"
            )
        return wrapped

    def _repaired(self, rank: int) -> list[int]:
        """``dims`` made a permutation of ``rank`` dimensions: the valid distinct ones in order, then the missing."""
        kept: list[int] = []
        for dim in self.dims:
            if -rank <= dim < rank and dim % rank not in kept and len(kept) < rank:
                kept.append(dim % rank)
        return kept + [d for d in range(rank) if d not in kept]

    def _output(self, shape: Shape) -> Shape:
        return tuple(shape[d] for d in self.resolved(shape))

    def window(self, shape: Shape) -> None:
        return None  # not a window: the walk moves each axis's receptive field with the axis (axis_sources)

    def axis_sources(self, shape: Shape) -> tuple[int, ...]:
        return self.resolved(shape)

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """Each axis's role moves with it: [0, 2, 3, 1] puts the channels last."""
        return tuple(roles[d] for d in self.axis_sources(shape))

    def describe(self) -> str:
        return "dims " + ",".join(map(str, self.dims))

    def explain(self, shape: Sequence[int]) -> list[str]:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        return [f"output dimension i is input dimension dims[i] = {list(self.resolved(shape))}: {shape_text(shape)} → {shape_text(out)}"]


LAYERS = table(Linear, Identity, Flatten, Unflatten, Permute)
