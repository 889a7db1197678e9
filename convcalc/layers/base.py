"""The Layer base class, the registry of layer families, and argument validation.

A layer family is one dataclass (``Conv``, ``Pool``, ``Linear`` …) registered under the torch
class names it covers. ``make_layer("Conv2d", out_channels=8, kernel_size=3)`` finds the family,
checks every keyword the way torch's constructor would, and returns a frozen instance.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple, TypeVar

from ..errors import ErrorKind, MissingArgument, ShapeError, SpecError
from ..numbers import show
from ..sizes import MAX_SIZE, too_many_elements

Shape = tuple[int, ...]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marks a constructor argument without a default.
REQUIRED: Any = _Required()

#: ``Layer.window`` result of a layer that leaves the receptive field as it is (ReLU, BatchNorm).
IDENTITY = "identity"

#: What the model walk knows of one axis of a tensor (``Layer.axis_roles``): the batch, the channels
#: (features), a spatial axis, or nothing. A spec's input is read as the contract says, (N, C, *spatial).
BATCH, CHANNELS, SPATIAL, UNKNOWN = "N", "C", "S", "?"
Roles = tuple[str, ...]


def declared_roles(rank: int) -> Roles:
    """The roles of a batched input as the spec contract reads it: N, C, then the spatial axes."""
    return (BATCH, CHANNELS, *(SPATIAL,) * max(rank - 2, 0))[:rank]

#: Short aliases of the spec; an alias applies only where the layer has no parameter of that name.
ALIASES = {
    "k": "kernel_size",
    "s": "stride",
    "p": "padding",
    "d": "dilation",
    "op": "output_padding",
    "g": "groups",
    "out": "out_channels",
    "heads": "num_heads",
}
#: Where ``out`` means something else than out_channels.
OUT_ALIASES = ("out_channels", "out_features", "output_size")

AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
AXIS_WORDS = {"L": "positions", "D": "slices", "H": "rows", "W": "columns"}


class Window(NamedTuple):
    """One spatial axis of a sliding window, as the receptive-field recurrence needs it.

    (A NamedTuple rather than a dataclass: it is created at start-up, where each dataclass costs
    about 0.4 ms and `convcalc conv` has a start-up budget.)
    """

    kernel: int  # effective (dilated) kernel
    stride: int
    pad_left: int


@dataclass(frozen=True)
class Layer:
    """A layer with its torch constructor arguments, able to compute shapes and costs.

    Subclasses set ``PARAMS`` (torch's keyword names, in torch's order, with defaults) and
    override ``_output`` plus whichever of the cost methods apply.
    """

    type_name: str

    PARAMS: ClassVar[dict[str, Any]] = {}
    #: True for layers that join several inputs (Add, Concat); they offer ``merge_shapes``.
    MANY_INPUTS: ClassVar[bool] = False
    #: Ranks of input accepted, relative to nothing: None means any rank ≥ 1.
    RANKS: ClassVar[tuple[int, ...] | None] = None
    # What the family can do, declared by the family (never guessed from its type name):
    #: ``geometry(shape)`` gives one per-axis window geometry (conv, pooling, transposed conv).
    SLIDING_WINDOW: ClassVar[bool] = False
    #: The torch class names this family covers (set by ``@register``).
    TYPE_NAMES: ClassVar[tuple[str, ...]] = ()
    #: The output shape is the input shape (activations, norms, Identity).
    PRESERVES_SHAPE: ClassVar[bool] = False
    #: ``in_channels`` (or the like) is read from the input's channel axis.
    TAKES_CHANNELS: ClassVar[bool] = False
    #: torch.nn has no class of this name (Permute, Scale), or its class is called otherwise than a spec calls a
    #: layer (MultiheadAttention takes query, key, value): verify builds the family with its own module.
    OWN_MODULE: ClassVar[bool] = False
    #: Where torch's module keeps an argument under another attribute name (``MultiheadAttention``'s ``bias``
    #: is whether ``in_proj_bias`` is set): read by verify's ``layer_as``; any other is the argument's own name.
    ATTRIBUTES: ClassVar[dict[str, str]] = {}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls: type[L], type_name: str, kwargs: dict[str, Any]) -> L:
        raise NotImplementedError

    # -- the public API -----------------------------------------------------------------
    def output_shape(self, shape: Sequence[int]) -> Shape:
        """The output shape for ``shape`` (batch first where batched), or ShapeError."""
        shape = self.check_input(shape)
        return self.check_output(self._output(shape))

    def check_output(self, out: Shape) -> Shape:
        """``out`` where every size is within convcalc's limit: a layer that grows a size beyond it (a
        PatchMerge's channels, a Concat, a transposed convolution) is refused here, not the layer after it."""
        for axis, size in enumerate(out):
            if size > MAX_SIZE:
                raise self.error(f"its output {list(out)} is beyond convcalc's limit of {MAX_SIZE:.0e} in dimension {axis};"
                                 " use a smaller input")
        return out

    @property
    def num_params(self) -> int:
        """Learnable parameters (weights and biases) as torch's ``parameters()`` holds them."""
        return 0

    def macs(self, shape: Sequence[int]) -> int:
        """Multiply-accumulates of the weights for one forward pass on ``shape``."""
        return 0

    def bind(self, shape: Sequence[int]) -> Layer:
        """This layer with the arguments torch would infer from ``shape`` filled in
        (in_channels, in_features …), checked against any that were written."""
        return self

    def window(self, shape: Shape) -> list[Window] | str | None:
        """Receptive-field contribution: per-axis windows, IDENTITY, or None (undefined)."""
        return None

    def axis_sources(self, shape: Shape) -> tuple[int, ...] | None:
        """For each output axis, the input axis it is, where the layer only moves axes (a Permute); else None.
        The receptive field of each spatial axis moves with it."""
        return None

    def touched_axes(self, shape: Shape) -> tuple[int, ...] | None:
        """The receptive field where the spatial axes are not at (N, C, *spatial) (after a Permute, where
        ``window`` does not apply, since it reads its input so): the axes along which an output value is not
        made from the input values at its own position (a Linear: the last axis). A field survives the layer
        when none of these is a spatial axis. () for a layer that works value by value; None (the default):
        the family does not say, and the receptive field is undefined after it there."""
        return None

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """What the walk knows of each axis of the output ``out``, given ``roles`` of the input ``shape``:
        a layer that keeps the rank leaves every axis where it was; one that changes it (and says
        nothing more) leaves them unknown."""
        return roles if len(out) == len(shape) else (UNKNOWN,) * len(out)

    def describe(self) -> str:
        """A short kernel/stride/padding summary for tables."""
        return ""

    def explain(self, shape: Sequence[int]) -> list[str]:
        """The worked arithmetic, one line per spatial axis."""
        return []

    def warnings(self, shape: Sequence[int], roles: Roles | None = None) -> list[str]:
        """Things that are valid but probably not intended (uncovered input rows). ``roles``: what the
        model walk knows of the input's axes (``axis_roles``); None reads ``shape`` as (N, C, *spatial)."""
        return []

    def solve_padding(self, shape: Shape, want: Sequence[int]) -> dict[str, tuple[int, ...]] | None:
        """Arguments (``padding``, ``output_padding`` …) that make the layer give the spatial size
        ``want`` on ``shape``, or None where the family cannot be solved for that."""
        return None

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this layer as ``getattr(torch.nn, type_name)``."""
        return {name: getattr(self, name) for name in self.PARAMS}

    # -- helpers for subclasses ---------------------------------------------------------
    def _output(self, shape: Shape) -> Shape:
        return shape

    def error(
        self,
        detail: str,
        kind: ErrorKind = ErrorKind.GEOMETRY,
        *,
        axis: str | None = None,
        numbers: dict[str, int] | None = None,
        fix: str | None = None,
    ) -> ShapeError:
        """This layer's ShapeError: ``Type: [axis: ]detail[; fix]`` with the fields kept apart."""
        where = f"{axis}: " if axis is not None and len(AXES.get(getattr(self, "dims", 0), ())) > 1 else ""
        text = f"{where}{detail}" + (f"; {fix}" if fix else "")
        return ShapeError(
            f"{self.type_name}: {text}", kind=kind, layer=self.type_name, detail=text, axis=axis, numbers=numbers, fix=fix
        )

    def check_input(self, shape: Sequence[int]) -> Shape:
        try:
            shape = shape if type(shape) is tuple else tuple(shape)
        except TypeError:
            raise self.error(f"the input shape must be a sequence of sizes, got {shape!r}") from None
        for size in shape:
            common = type(size) is int and 1 <= size <= MAX_SIZE  # the cheap test first; then bool, LongInt, floats
            if not common and (isinstance(size, bool) or not isinstance(size, int) or size < 1 or size > MAX_SIZE):
                raise self.error(f"input shape {list(shape)} must hold whole numbers from 1 to {MAX_SIZE:.0e}")
        ranks = self.ranks()
        if ranks is not None and len(shape) not in ranks:
            raise self.error(self._rank_message(shape), self._rank_kind())
        if not shape:
            raise self.error("the input shape is empty")
        huge = too_many_elements(shape) if len(shape) > 6 else None  # 6 sizes ≤ MAX_SIZE always fit
        if huge:
            raise self.error(f"the input is a {huge}")
        return shape

    def ranks(self) -> tuple[int, ...] | None:
        """Input ranks accepted (None: any rank ≥ 1)."""
        return self.RANKS

    def _rank_kind(self) -> ErrorKind:
        """The kind of a wrong-rank input: RANK ("expects a 4-D input"), unless an argument fixes the rank."""
        return ErrorKind.RANK

    def _rank_message(self, shape: Shape) -> str:
        wanted = " or ".join(f"{r}-D" for r in self.ranks() or ())
        return f"expects a {wanted} input, got {len(shape)}-D {list(shape)}"

    def with_values(self: L, **values: Any) -> L:
        return replace(self, **values)


L = TypeVar("L", bound=Layer)

# -- registry -------------------------------------------------------------------------------
# Filled explicitly: each family module lists its classes in ``LAYERS = table(...)``, the
# catalog says which module holds a name, and ``lookup`` reads that module's table (and keeps
# what it found in ``_FOUND``). Nothing is registered as a side effect of importing a module.

_FOUND: dict[str, tuple[str, type[Layer]]] = {}


def register(*names: str) -> Callable[[type[L]], type[L]]:
    """Name the torch classes a layer family covers (read by :func:`table`)."""

    def decorate(cls: type[L]) -> type[L]:
        cls.TYPE_NAMES = names
        return cls

    return decorate


def table(*classes: type[Layer]) -> dict[str, type[Layer]]:
    """A family module's ``LAYERS``: torch class name → family, from each class's own names."""
    return {name: cls for cls in classes for name in cls.__dict__.get("TYPE_NAMES", ())}


def layer_names() -> list[str]:
    """Every layer type name convcalc knows, as torch spells it."""
    from .catalog import CATALOG

    return sorted(CATALOG)


def lookup(type_name: str) -> tuple[str, type[Layer]]:
    """``"conv2d"`` → ``("Conv2d", Conv)``; an unknown name suggests the closest one.

    Family modules are imported on first use (see ``catalog.py``), which keeps start-up short.
    """
    key = str(type_name).lower()
    found = _FOUND.get(key)
    if found is None:
        from .catalog import module_of

        module = module_of(key)
        if module is None:
            raise SpecError(f"unknown layer type {show(str(type_name))}{suggest(str(type_name), layer_names())}", kind=ErrorKind.UNKNOWN_LAYER)
        layers: dict[str, type[Layer]] = importlib.import_module(f"{__package__}.{module}").LAYERS
        name = next((n for n in layers if n.lower() == key), None)
        if name is None:  # the catalog is out of date (tests/test_structure.py catches this)
            raise SpecError(f"layer type {type_name!r} is listed in convcalc's catalog but not defined")
        found = _FOUND[key] = (name, layers[name])
    return found


def suggest(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean kernel_size?"`` or ``""``, via difflib (case-insensitive)."""
    import difflib  # only on the error path: it costs start-up time

    if len(word) > 64:  # no name is that long; difflib's cost grows with the word
        return ""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]}?" if close else ""


def make_layer(type_name: str, /, **kwargs: Any) -> Layer:
    """Build a layer from its torch class name and torch keyword arguments (or spec aliases)."""
    name, cls = lookup(type_name)
    return cls.create(name, resolve_kwargs(name, cls.PARAMS, kwargs))


def resolve_kwargs(type_name: str, params: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Map aliases to torch names, reject unknown keys, fill defaults, demand required ones."""
    values: dict[str, Any] = {}
    written: dict[str, str] = {}  # the key each argument was given as
    for key, value in kwargs.items():
        target = argument_name(type_name, params, key)
        if target in values:
            raise SpecError(f"{type_name}: {target} is given twice (as {written[target]!r} and as {key!r}); keep one", layer=type_name)
        values[target], written[target] = value, key
    for key, default in params.items():
        if key not in values:
            if default is REQUIRED:
                raise MissingArgument(type_name, key)
            values[key] = default
    return values


def argument_name(type_name: str, params: Mapping[str, Any], key: str) -> str:
    """The torch keyword that ``key`` (a keyword or a spec alias) names, or the one error of an
    argument the family does not take (with the closest name it does take)."""
    target = canonical_key(key, params)
    if target is None:
        raise SpecError(
            f"{type_name} has no argument {key!r}{suggest(str(key), list(params) + _alias_names(params))}"
            + (f" ({type_name} takes {', '.join(params)})" if params else f" ({type_name} takes no arguments)"),
            layer=type_name,
        )
    return target


def canonical_key(key: str, params: Mapping[str, Any]) -> str | None:
    """The torch keyword a spec key stands for, or None if the layer has no such argument."""
    if key in params:
        return key
    if key == "out":
        return next((name for name in OUT_ALIASES if name in params), None)
    target = ALIASES.get(key)
    return target if target in params else None


def _alias_names(params: Mapping[str, Any]) -> list[str]:
    return [alias for alias in ALIASES if canonical_key(alias, params) not in (None, alias)]


# -- argument checks (the layer name prefixes the message) ----------------------------------


def as_int(type_name: str, name: str, value: Any, *, minimum: int | None = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{type_name}: {name} must be a whole number, got {show(value)}", layer=type_name)
    if minimum is not None and value < minimum:
        raise SpecError(f"{type_name}: {name} must be at least {minimum}, got {show(value)}", layer=type_name)
    if abs(value) > MAX_SIZE:
        low = f"from {minimum} " if minimum is not None else ""
        raise SpecError(f"{type_name}: {name} {show(value)} is beyond convcalc's limit; use a whole number {low}up to {MAX_SIZE:.0e}", layer=type_name)
    return value


def as_tuple(type_name: str, name: str, value: Any, dims: int, *, minimum: int | None = 1) -> tuple[int, ...]:
    """An int or a list of ``dims`` ints (torch's ``_pair``/``_triple``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise SpecError(
                f"{type_name}: {name} needs {dims} value{'s' if dims > 1 else ''} (one per spatial axis), got {show(list(value))}",
                layer=type_name,
            )
        return tuple(as_int(type_name, name, v, minimum=minimum) for v in value)
    return (as_int(type_name, name, value, minimum=minimum),) * dims


def as_bool(type_name: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{type_name}: {name} must be true or false, got {show(value)}", layer=type_name)
    return value


def as_float(type_name: str, name: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    """A finite number (within ``low..high`` when given): 10**400 or 1e400 is refused, naming the range."""
    wanted = f"a number from {low} to {high}" if low is not None and high is not None else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{type_name}: {name} must be {wanted}, got {show(value)}", layer=type_name)
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        number = math.inf
    if not math.isfinite(number):
        bound = "" if low is not None and high is not None else " (at most ±1.8e308)"
        raise SpecError(f"{type_name}: {name} must be {wanted}{bound}, got {show(value)}", layer=type_name)
    if (low is not None and number < low) or (high is not None and number > high):
        raise SpecError(f"{type_name}: {name} must be between {low} and {high}, got {show(value)}", layer=type_name)
    return number


def as_choice(type_name: str, name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise SpecError(
            f"{type_name}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            + suggest(str(value), choices),
            layer=type_name,
        )
    return str(value)


def spatial_dims(type_name: str) -> int:
    """The number of spatial axes of a ``…1d``/``…2d``/``…3d`` torch class name."""
    return int(type_name[-2])


def channels_of(shape: Shape, dims: int) -> tuple[int | None, int]:
    """(batch or None when unbatched, channels) of a ``(N, C, *spatial)`` or ``(C, *spatial)`` shape."""
    if len(shape) == dims + 2:
        return shape[0], shape[1]
    return None, shape[0]


def batch_of(shape: Shape, dims: int) -> int:
    """The batch size, 1 for an unbatched input (torch adds the batch axis internally)."""
    return shape[0] if len(shape) == dims + 2 else 1


def product(values: Iterable[int]) -> int:
    return math.prod(values)
