"""Build a model spec from Python: nodes, their wiring, blocks and their layers, checked as they come.

    import convcalc
    b = convcalc.SpecBuilder("tiny", (1, 28, 28))
    b.add("Conv2d", out_channels=8, kernel_size=3)      # named "0", fed by the model input
    b.add("ReLU")                                        # "1", fed by "0"
    basic = convcalc.Block("basic", ["planes"])          # a reusable block with a param
    basic.add("Conv2d", name="conv", out="$planes", k=3, p=1)
    basic.add("Add", inputs=["conv", "input"])           # "input": the block's input
    b.add(basic, planes=8, name="layer1", repeat=2)      # layer1.0.conv … layer1.1.1
    b.add("Flatten")
    b.add("Linear", out=10)
    b.model().summary()

Every front end builds its spec through this module: the YAML loader (``spec.py`` reads entries
and blocks and adds ``file:line``), verify's one-layer targets and ``convcalc.summary`` (which
takes a builder). :class:`Graph` holds the nodes, their names and the shared layers;
``blocks.Expander`` expands entries, blocks and repeats into it; ``budget.py`` bounds the
expansion; each layer's arguments and aliases are resolved by its family's own rules
(``layers.base.argument_name``, ``make_layer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .blocks import INPUT, Block, Entry, Expander, Ref, Scope
from .budget import MAX_NODES
from .errors import ConvcalcError, ErrorKind, SpecError, located
from .layers import Layer, make_layer

__all__ = ["INPUT", "MAX_NODES", "Block", "Graph", "ModelSpec", "Node", "Ref", "SpecBuilder"]


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


@dataclass
class ModelSpec:
    """A parsed spec: ``nodes`` in execution order; the last node is the output."""

    name: str
    input_shape: tuple[int, ...]  # without batch
    nodes: list[Node]
    path: str = "<spec>"
    lines: dict[str, int] = field(default_factory=dict)


class Graph:
    """Nodes in execution order, their unique names, and layers shared between equal arguments."""

    def __init__(self, name: str, input_shape: Sequence[int], *, path: str = "<python>") -> None:
        self.name = name
        self.input_shape = tuple(input_shape)
        self.path = path
        self.nodes: list[Node] = []
        self.taken: set[str] = {INPUT}
        self._layers: dict[Any, Layer] = {}

    def fail(self, message: str, line: int | None = None, layer: str | None = None, cause: ConvcalcError | None = None,
             kind: ErrorKind | None = None) -> SpecError:
        """A SpecError of ``kind`` at ``line`` of this spec (``path:line: message``); ``cause``'s
        kind, axis, numbers and fix carry over."""
        error = SpecError(located(self.path, line, message), kind=kind, file=self.path, line=line, layer=layer, detail=message)
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

    def append(self, layer: Layer, name: str, inputs: tuple[str, ...], line: int | None = None, depth: int = 0,
               trainable: bool = True, refs: tuple[Ref, ...] = (), tie: str | None = None) -> str:
        """Add a node whose inputs (and ``tie``) are names already taken; returns its name."""
        if tie is not None:
            self.check_tie(layer, name, tie, line)
        if name in self.taken:
            raise self.fail(f"the name {name!r} is used twice", line, kind=ErrorKind.WIRING)
        if len(self.nodes) >= MAX_NODES:
            raise self.fail(f"the model expands to more than {MAX_NODES:,} layers", line, kind=ErrorKind.TOO_LARGE)
        self.taken.add(name)
        self.nodes.append(Node(name, layer, inputs, line, depth, trainable, refs, tie))
        return name

    def check_tie(self, layer: Layer, name: str | None, tie: str, line: int | None) -> None:
        """``tie`` names an earlier layer (not a merge) of the same type as ``layer``."""
        label = f"{layer.type_name} {name!r}" if name is not None else layer.type_name
        wiring = ErrorKind.WIRING
        if layer.MANY_INPUTS:
            raise self.fail(f"{label}: a merge has no parameters to tie", line, layer.type_name, kind=wiring)
        target = next((node for node in reversed(self.nodes) if node.name == tie), None)
        if target is None:
            raise self.fail(f"{label}: tie: {tie!r} names no earlier layer (tie: names the layer whose parameters this one shares)",
                            line, layer.type_name, kind=wiring)
        if target.layer.type_name != layer.type_name:
            raise self.fail(
                f"{label}: tie: {tie!r} is a {target.layer.type_name}; a layer shares parameters only with a layer of its own type",
                line,
                layer.type_name,
                kind=wiring,
            )

    def freeze(self, prefix: str) -> None:
        """Mark the nodes at the end whose names start with ``prefix`` (a block's) not trainable."""
        for index in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[index]
            if not node.name.startswith(prefix):
                break
            self.nodes[index] = replace(node, trainable=False)

    def build(self) -> ModelSpec:
        """The :class:`ModelSpec` (at least one node)."""
        if not self.nodes:
            raise self.fail("a model needs at least one layer")
        return ModelSpec(name=self.name, input_shape=self.input_shape, nodes=list(self.nodes), path=self.path)


class _Earlier(Scope):
    """The scope of :meth:`SpecBuilder.add`: its entries by name or position, as in a YAML list
    (a block's name is its last node), and every node added so far by its full name."""

    def __init__(self, graph: Graph) -> None:
        super().__init__({INPUT: INPUT}, {INPUT: ("the model input", None)})
        self.graph = graph

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.graph.taken

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name) if dict.__contains__(self, name) else name


class SpecBuilder(Graph):
    """A spec built from Python, one entry at a time, with the checks of a YAML spec.

    ``add`` takes a layer (a torch class name with its keywords — or the spec's aliases ``k s p d
    op g out`` where the layer has no argument of that name — or a built layer) or a
    :class:`~convcalc.blocks.Block` with its params. ``name`` defaults to the entry's position
    (copies counted, as in YAML), ``inputs`` to the node before it (an earlier entry by its name —
    a block's is its last node —, any earlier node by its full name, or ``"input"``); ``repeat``
    makes copies (``name.0``, ``name.1`` …), each fed by the one before; ``trainable=False``
    freezes the entry's parameters; ``tie`` shares an earlier layer's.
    """

    def __init__(self, name: str, input_shape: Sequence[int], *, path: str = "<python>") -> None:
        super().__init__(name, input_shape, path=path)
        self.expander = Expander(self)
        self._scope = _Earlier(self)
        self._position = 0

    def add(
        self,
        layer: Layer | Block | str,
        *,
        name: str | None = None,
        inputs: Sequence[str] | str | None = None,
        repeat: int | None = None,
        trainable: bool = True,
        tie: str | None = None,
        line: int | None = None,
        **kwargs: Any,
    ) -> str:
        """Add an entry; returns the full name of its (last) node. ``kwargs`` are the layer's
        arguments or the block's params; ``tie``: an earlier layer of the same type whose
        parameters this one shares (counted once, there)."""
        wired = [inputs] if isinstance(inputs, str) else inputs
        for source in wired or ():
            if not isinstance(source, str) or source not in self._scope:
                what = name or (layer.name if isinstance(layer, Block) else layer if isinstance(layer, str) else layer.type_name)
                raise self.fail(f"{what} takes its input from {source!r}, which is not an earlier node", line, kind=ErrorKind.WIRING)
        entry = Entry(layer, kwargs, name, list(wired) if wired is not None else None, repeat, trainable, line, tie=tie)
        previous = self.nodes[-1].name if self.nodes else INPUT
        last, copies = self.expander.entry(
            self.expander.read(entry, line), self._position, prefix="", scope=self._scope, previous=previous, params={}, depth=0,
            stack=(),
        )
        self._position += copies
        return last

    def add_list(self, entries: Sequence[Any]) -> str:
        """Add a whole list of entries as a spec's ``layers:`` (or a block's): names are positions
        in the list unless given, and ``inputs`` name entries of the list or ``"input"``. Returns
        the full name of the last node."""
        scope = Scope({INPUT: INPUT}, {INPUT: ("the model input", None)})
        return self.expander.expand(entries, prefix="", scope=scope, params={}, depth=0, stack=())

    def model(self) -> Any:
        """The :class:`convcalc.graph.Model` of what was built (``.summary()`` gives its rows)."""
        from .graph import Model

        return Model(self.build())


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
