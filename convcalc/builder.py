"""Build a model spec from Python: nodes, their wiring and their layers, checked as they come.

    from convcalc.builder import SpecBuilder
    b = SpecBuilder("tiny", (1, 28, 28))
    b.add("Conv2d", out_channels=8, kernel_size=3)      # named "0", fed by the model input
    b.add("ReLU")                                        # "1", fed by "0"
    b.add("Flatten")
    b.add("Linear", out=10)
    model = convcalc.graph.Model(b.build())

The YAML loader (``spec.py``) builds every spec through this class (it adds block expansion,
``$param`` substitution, budgets and ``file:line``); verify's one-layer targets use it too.
Arguments and aliases are resolved by the layer families' own rules (``make_layer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConvcalcError, SpecError, located
from .layers import Layer, make_layer

INPUT = "input"
MAX_NODES = 100_000


@dataclass(frozen=True)
class Node:
    """One layer of the model: its unique dotted name, the layer, and where its input comes from."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]  # names of earlier nodes, or "input"
    line: int | None
    depth: int = 0  # block nesting, for indentation in tables
    trainable: bool = True
    #: For merges: each input as the spec names it, what that entry is, and its line.
    refs: tuple[Ref, ...] = ()
    #: ``tie:``: the earlier node whose parameters this layer shares (the same module called
    #: again, or tied weights): its parameters count once, at that node.
    tie: str | None = None


@dataclass(frozen=True)
class Ref:
    """An input as the spec wrote it: ``Add: [bn2, downsample]`` → Ref("downsample", "block downsample", 31)."""

    name: str
    what: str  # "ConvTranspose2d", "block double_conv", "the model input" …
    line: int | None


@dataclass
class ModelSpec:
    """A parsed spec: ``nodes`` in execution order; the last node is the output."""

    name: str
    input_shape: tuple[int, ...]  # without batch
    nodes: list[Node]
    path: str = "<spec>"
    lines: dict[str, int] = field(default_factory=dict)


class SpecBuilder:
    """Nodes in execution order; each one's inputs must name earlier nodes (or ``"input"``)."""

    def __init__(self, name: str, input_shape: Sequence[int], *, path: str = "<python>") -> None:
        self.name = name
        self.input_shape = tuple(input_shape)
        self.path = path
        self.nodes: list[Node] = []
        self.taken: set[str] = {INPUT}
        self._layers: dict[Any, Layer] = {}

    def fail(self, message: str, line: int | None = None, layer: str | None = None, cause: ConvcalcError | None = None) -> SpecError:
        """A SpecError at ``line`` of this spec (``path:line: message``); ``cause``'s fields carry over."""
        error = SpecError(located(self.path, line, message), file=self.path, line=line, layer=layer, detail=message)
        if cause is not None:
            error.kind, error.axis, error.numbers, error.fix = cause.kind, cause.axis, cause.numbers, cause.fix
        return error

    def layer(self, type_name: str, kwargs: dict[str, Any], line: int | None = None) -> Layer:
        """``make_layer(type_name, **kwargs)``, shared between equal arguments (layers are frozen)."""
        key = _frozen((type_name, kwargs))
        made = self._layers.get(key) if key is not None else None
        if made is None:
            try:
                made = make_layer(type_name, **kwargs)
            except ConvcalcError as error:
                raise self.fail(error.message, line, type_name, cause=error) from None
            if key is not None:
                self._layers[key] = made
        return made

    def add(
        self,
        layer: Layer | str,
        *,
        name: str | None = None,
        inputs: Sequence[str] | None = None,
        line: int | None = None,
        depth: int = 0,
        trainable: bool = True,
        refs: tuple[Ref, ...] = (),
        tie: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Add a layer (an object, or a torch class name with its keyword arguments or aliases);
        ``name`` defaults to its position, ``inputs`` to the node before it. ``tie``: an earlier
        node of the same layer type whose parameters this one shares (counted once). Returns the name."""
        made = self.layer(layer, kwargs, line) if isinstance(layer, str) else layer
        if not isinstance(layer, str) and kwargs:
            raise self.fail(f"{made.type_name}: keyword arguments go with a type name, not a built layer", line)
        wired = tuple(inputs) if inputs is not None else ((self.nodes[-1].name,) if self.nodes else (INPUT,))
        for source in wired:
            if source not in self.taken:
                raise self.fail(f"{name or made.type_name} takes its input from {source!r}, which is not an earlier node", line)
        if tie is not None:
            self.check_tie(made, name, tie, line)
        node = Node(name=str(len(self.nodes)) if name is None else name, layer=made, inputs=wired, line=line,
                    depth=depth, trainable=trainable, refs=refs, tie=tie)
        self.add_node(node)
        return node.name

    def check_tie(self, layer: Layer, name: str | None, tie: str, line: int | None) -> None:
        """``tie`` names an earlier layer (not a merge) of the same type as ``layer``."""
        label = f"{layer.type_name} {name!r}" if name is not None else layer.type_name
        if layer.MANY_INPUTS:
            raise self.fail(f"{label}: a merge has no parameters to tie", line, layer.type_name)
        target = next((node for node in reversed(self.nodes) if node.name == tie), None)
        if target is None:
            raise self.fail(f"{label}: tie: {tie!r} names no earlier layer (tie: names the layer whose parameters this one shares)", line, layer.type_name)
        if target.layer.type_name != layer.type_name:
            raise self.fail(
                f"{label}: tie: {tie!r} is a {target.layer.type_name}; a layer shares parameters only with a layer of its own type",
                line,
                layer.type_name,
            )

    def add_node(self, node: Node) -> None:
        if node.name in self.taken:
            raise self.fail(f"the name {node.name!r} is used twice", node.line)
        if len(self.nodes) >= MAX_NODES:
            raise self.fail(f"the model expands to more than {MAX_NODES:,} layers", node.line)
        self.taken.add(node.name)
        self.nodes.append(node)

    def model(self) -> Any:
        """The :class:`convcalc.graph.Model` of what was built (``.summary()`` gives its rows)."""
        from .graph import Model

        return Model(self.build())

    def build(self) -> ModelSpec:
        """The :class:`ModelSpec` (at least one node)."""
        if not self.nodes:
            raise self.fail("a model needs at least one layer")
        return ModelSpec(name=self.name, input_shape=self.input_shape, nodes=list(self.nodes), path=self.path)


class _Unhashable(Exception):
    pass


def _frozen(value: Any) -> Any:
    """A hashable, type-exact copy of plain YAML data, or None if it holds anything else."""
    try:
        return _freeze(value)
    except _Unhashable:
        return None


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ("list", *map(_freeze, value))
    if isinstance(value, dict):
        return ("dict", *((_freeze(k), _freeze(v)) for k, v in value.items()))
    if value is None or isinstance(value, (str, int, float, bool)):
        return (type(value).__name__, value)
    raise _Unhashable
