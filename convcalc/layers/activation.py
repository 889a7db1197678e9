"""Activations, softmax and dropout: elementwise layers that keep the shape.

One family, driven by tables of torch class name → torch's keyword arguments with their
defaults; a class per name is generated so that every name has its own ``PARAMS``. A few
members have a rule of their own (the rank Dropout1d accepts, the dimension of Softmax, the
even size GLU halves), PReLU has parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConvcalcError, SpecError
from .base import (
    IDENTITY,
    REQUIRED,
    Layer,
    Roles,
    Shape,
    as_bool,
    as_choice,
    as_float,
    as_int,
    register,
    table,
)
from .dims import as_dim, normalize_dim, number, shape_text

INPLACE = {"inplace": False}

#: Elementwise activations: torch class name → torch's keyword arguments and defaults.
ACTIVATIONS: dict[str, dict[str, Any]] = {
    "ReLU": INPLACE,
    "ReLU6": INPLACE,
    "LeakyReLU": {"negative_slope": 0.01, "inplace": False},
    "ELU": {"alpha": 1.0, "inplace": False},
    "SELU": INPLACE,
    "CELU": {"alpha": 1.0, "inplace": False},
    "GELU": {"approximate": "none"},
    "SiLU": INPLACE,
    "Mish": INPLACE,
    "Hardswish": INPLACE,
    "Hardsigmoid": INPLACE,
    "Hardtanh": {"min_val": -1.0, "max_val": 1.0, "inplace": False},
    "RReLU": {"lower": 1.0 / 8, "upper": 1.0 / 3, "inplace": False},
    "Sigmoid": {},
    "Tanh": {},
    "LogSigmoid": {},
    "Softplus": {"beta": 1.0, "threshold": 20.0},
    "Softsign": {},
    "Tanhshrink": {},
    "Hardshrink": {"lambd": 0.5},
    "Softshrink": {"lambd": 0.5},
    "Threshold": {"threshold": REQUIRED, "value": REQUIRED, "inplace": False},
}

#: Dropout layers: name → input ranks torch accepts (None: any). All take ``p`` and ``inplace``.
DROPOUTS: dict[str, tuple[int, ...] | None] = {
    "Dropout": None,
    "Dropout1d": (2, 3),
    "Dropout2d": None,  # other ranks than 3-D/4-D only warn
    "Dropout3d": None,  # other ranks than 4-D/5-D only warn
    "AlphaDropout": None,
    "FeatureAlphaDropout": None,
}

#: Softmax-like layers over one dimension (``dim=None``: torch's legacy implicit choice).
SOFTMAXES = ("Softmax", "LogSoftmax", "Softmin")

GELU_APPROXIMATIONS = ("none", "tanh")


def _check_value(type_name: str, name: str, value: Any) -> Any:
    """One keyword argument of an elementwise layer, checked like torch's constructor."""
    if name == "inplace":
        return as_bool(type_name, name, value)
    if name == "approximate":
        return as_choice(type_name, name, value, GELU_APPROXIMATIONS)
    if name == "p":
        return as_float(type_name, "p (the dropout probability)", value, low=0.0, high=1.0)
    if name == "dim":
        return None if value is None else as_dim(type_name, name, value)
    return as_float(type_name, name, value)


def _check_rules(type_name: str, values: dict[str, Any]) -> None:
    """Rules between arguments that make torch's constructor or every forward call fail."""

    def fail(text: str) -> None:
        raise SpecError(f"{type_name}: {text}", layer=type_name)

    if type_name == "Hardtanh" and not values["max_val"] > values["min_val"]:
        fail(
            f"max_val ({number(values['max_val'])}) must be greater than min_val ({number(values['min_val'])});"
            f" e.g. max_val: {number(values['min_val'] + 2)}"
        )
    if type_name == "CELU" and values["alpha"] == 0:
        fail("alpha cannot be 0 (CELU divides by it); use e.g. alpha: 1.0")
    if type_name == "Softshrink" and values["lambd"] < 0:
        fail(f"lambd must not be negative, got {number(values['lambd'])}; use e.g. lambd: 0.5")
    if type_name == "RReLU" and values["lower"] > values["upper"]:
        fail(
            f"lower ({number(values['lower'])}) must not exceed upper ({number(values['upper'])});"
            f" e.g. upper: {number(values['lower'])}"
        )


@dataclass(frozen=True)
class Elementwise(Layer):
    """A shape-preserving layer without parameters; its torch arguments live in ``args``."""

    PRESERVES_SHAPE: ClassVar[bool] = True

    args: tuple[tuple[str, Any], ...] = ()

    #: Arguments shown by ``describe()`` even at their default.
    SHOWN: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Elementwise:
        values = {name: _check_value(type_name, name, kw[name]) for name in cls.PARAMS}
        _check_rules(type_name, values)
        return cls(type_name=type_name, args=tuple(values.items()))

    def __getattr__(self, name: str) -> Any:
        # ``layer.p``, ``layer.negative_slope`` … read the torch arguments.
        if name != "args" and not name.startswith("__"):
            for key, value in self.args:
                if key == name:
                    return value
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def torch_kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def window(self, shape: Shape) -> str | None:
        return IDENTITY

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return ()  # value by value (a dropout's channel mask keeps each position too)

    def describe(self) -> str:
        parts = []
        for name, value in self.args:
            if name == "inplace" or (value == self.PARAMS.get(name) and name not in self.SHOWN):
                continue
            parts.append(f"{name}={number(value) if isinstance(value, float) else value}")
        return " ".join(parts)


@dataclass(frozen=True)
class DropoutLayer(Elementwise):
    """Dropout: ``p`` in [0, 1]; the channel-wise kinds care about the rank."""

    SHOWN: ClassVar[tuple[str, ...]] = ("p",)

    def _rank_message(self, shape: Shape) -> str:
        return (
            f"expects a 2-D (C, L) or 3-D (N, C, L) input, got {len(shape)}-D {shape_text(shape)}"
            " (channel-wise dropout of 1-D feature maps)"
        )

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        shape = self.check_input(shape)
        rank = len(shape)
        lines = []
        expected = {"Dropout2d": (3, 4), "Dropout3d": (4, 5)}.get(self.type_name)
        if expected and rank not in expected:
            lines.append(
                f"{self.type_name}: torch deprecates a {rank}-D input here (it expects"
                f" {expected[0]}-D or {expected[1]}-D) and may refuse it in a future release"
            )
        if self.type_name == "Dropout2d" and rank == 3:
            lines.append(
                f"{self.type_name}: torch reads the 3-D input {shape_text(shape)} as (N, C, L) and drops whole"
                " 1-D channels; use Dropout1d for that, or a 4-D input"
            )
        if self.type_name in ("Dropout2d", "FeatureAlphaDropout") and rank == 1:
            lines.append(f"{self.type_name}: torch raises on a 1-D input in training mode")
        return lines


@dataclass(frozen=True)
class SoftmaxLayer(Elementwise):
    """Softmax, LogSoftmax and Softmin over ``dim``."""

    def resolved_dim(self, shape: Shape) -> int:
        dim = self.dim
        if dim is None:  # torch's _get_softmax_dim
            return 0 if len(shape) in (0, 1, 3) else 1
        return normalize_dim(self, "dim", dim, shape)

    def _output(self, shape: Shape) -> Shape:
        self.resolved_dim(shape)
        return shape

    def window(self, shape: Shape) -> str | None:
        return _channel_window(self, "dim", self.dim, shape)

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return _dim_axes(self, self.resolved_dim, shape)

    def describe(self) -> str:
        return "" if self.dim is None else f"dim={self.dim}"

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        shape = self.check_input(shape)
        if self.dim is None:
            return [
                (
                    f"{self.type_name}: no dim given; torch's deprecated implicit choice takes dim"
                    f" {self.resolved_dim(shape)} for a {len(shape)}-D input — write dim explicitly"
                )
            ]
        return []


@dataclass(frozen=True)
class Softmax2dLayer(Elementwise):
    """``nn.Softmax2d``: softmax over the channels of a (C, H, W) or (N, C, H, W) input."""

    RANKS: ClassVar[tuple[int, ...] | None] = (3, 4)

    def _rank_message(self, shape: Shape) -> str:
        return f"expects a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {len(shape)}-D {shape_text(shape)}"

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return (len(shape) - 3,) if len(shape) >= 3 else None  # torch's softmax over dim -3


@dataclass(frozen=True)
class GLULayer(Elementwise):
    """``nn.GLU``: splits ``dim`` in two halves and gates one with the other; the size halves."""

    PRESERVES_SHAPE: ClassVar[bool] = False

    def _output(self, shape: Shape) -> Shape:
        dim = normalize_dim(self, "dim", self.dim, shape)
        if shape[dim] % 2:
            raise self.error(
                f"GLU halves dimension {dim}, but it has an odd size {shape[dim]} in {shape_text(shape)};"
                f" make it even (e.g. {shape[dim] + 1})"
            )
        return (*shape[:dim], shape[dim] // 2, *shape[dim + 1 :])

    def window(self, shape: Shape) -> str | None:
        return _channel_window(self, "dim", self.dim, shape)

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        return _dim_axes(self, lambda s: normalize_dim(self, "dim", self.dim, s), shape)

    def describe(self) -> str:
        return f"dim={self.dim}"


def _dim_axes(layer: Layer, resolve: Callable[[Shape], int], shape: Shape) -> tuple[int, ...] | None:
    """``(dim,)`` of a layer that works along one dimension; None where ``dim`` does not fit ``shape``
    (never raises: the walk asks after the shape was checked, but callers may probe)."""
    try:
        return (resolve(tuple(shape)),)
    except ConvcalcError:
        return None


def _channel_window(layer: Layer, name: str, dim: int | None, shape: Shape) -> str | None:
    """IDENTITY when the layer works across channels (dimension 0 or 1), else None (undefined:
    the positions along a spatial axis are mixed). Never raises: callers probe with any shape."""
    if dim is None:
        return IDENTITY  # torch's implicit choice is always dimension 0 or 1
    rank = len(tuple(shape))
    if not -rank <= dim < rank:
        return None
    return IDENTITY if dim % rank <= 1 else None


def _define(base: type[Elementwise], name: str, params: dict[str, Any], ranks: tuple[int, ...] | None = None) -> None:
    """Make and keep the family class of one torch activation/dropout/softmax name."""
    namespace: dict[str, Any] = {
        "PARAMS": dict(params),
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"``nn.{name}``.",
    }
    if ranks is not None:
        namespace["RANKS"] = ranks
    _MADE[name] = register(name)(type(name, (base,), namespace))


#: The classes made by ``_define``, by torch's name (read by ``LAYERS`` and ``__getattr__``).
_MADE: dict[str, type[Elementwise]] = {}


def __getattr__(name: str) -> Any:
    """``convcalc.layers.activation.ReLU`` …: the made classes are module attributes, so that
    their instances pickle like any other layer, without writing into ``globals()``."""
    try:
        return _MADE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


for _name, _params in ACTIVATIONS.items():
    _define(Elementwise, _name, _params)
for _name, _ranks in DROPOUTS.items():
    _define(DropoutLayer, _name, {"p": 0.5, "inplace": False}, _ranks)
for _name in SOFTMAXES:
    _define(SoftmaxLayer, _name, {"dim": None})
_define(Softmax2dLayer, "Softmax2d", {})
_define(GLULayer, "GLU", {"dim": -1})


@register("PReLU")
@dataclass(frozen=True)
class PReLU(Layer):
    """``nn.PReLU``: a learnt negative slope, one shared (num_parameters=1) or one per channel."""

    PRESERVES_SHAPE: ClassVar[bool] = True

    num_parameters: int = 1
    init: float = 0.25

    PARAMS: ClassVar[dict[str, Any]] = {"num_parameters": 1, "init": 0.25}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> PReLU:
        return cls(
            type_name=type_name,
            num_parameters=as_int(type_name, "num_parameters", kw["num_parameters"]),
            init=as_float(type_name, "init", kw["init"]),
        )

    def _output(self, shape: Shape) -> Shape:
        if self.num_parameters != 1:
            channels = shape[1] if len(shape) > 1 else 1
            if channels != self.num_parameters:
                where = f"dimension 1 of {shape_text(shape)}" if len(shape) > 1 else f"a 1-D input {shape_text(shape)} counts as 1"
                raise self.error(
                    f"num_parameters {self.num_parameters} must be 1 or the number of channels ({channels}, {where});"
                    f" use num_parameters: {channels} (one slope per channel) or 1 (one shared slope)"
                )
        return shape

    @property
    def num_params(self) -> int:
        return self.num_parameters

    def window(self, shape: Shape) -> str:
        return IDENTITY

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return ()

    def describe(self) -> str:
        return f"{self.num_parameters} slope{'s' if self.num_parameters != 1 else ''}"


#: Every name of the table-driven family.
ELEMENTWISE_NAMES: tuple[str, ...] = (*ACTIVATIONS, *DROPOUTS, *SOFTMAXES, "Softmax2d", "GLU")


LAYERS = {**table(PReLU), **_MADE}
