"""YAML model spec → a validated list of named nodes in execution order (errors carry file:line).

Syntax (see DESIGN.md and the README): ``input``, ``layers``, optional ``name`` and ``blocks``.
An entry is a layer name (``- ReLU``), a layer with arguments (``- Conv2d: {out: 16, k: 3}``),
a merge (``- Add: [a, b]``), or a block use (``- basic: {planes: 64}``), optionally with the
sibling keys ``name``, ``from``, ``repeat`` and ``trainable``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConvcalcError, SpecError
from .layers import Layer, lookup, make_layer
from .layers.base import canonical_key, suggest
from .layers.catalog import module_of
from .sizes import check_size
from .yamlio import YDict, YList, line_of, load_yaml, parse_yaml

TOP_KEYS = ("name", "input", "layers", "blocks", "description")
ENTRY_KEYS = ("name", "from", "repeat", "trainable")
BLOCK_KEYS = ("params", "layers", "description")
INPUT = "input"
MAX_NODES = 100_000
MAX_REPEAT = 10_000
MAX_BLOCK_DEPTH = 32
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PARAM = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass(frozen=True)
class Node:
    """One layer of the model: its unique dotted name, the layer, and where its input comes from."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]  # names of earlier nodes, or "input"
    line: int | None
    depth: int = 0  # block nesting, for indentation in tables
    trainable: bool = True


@dataclass
class ModelSpec:
    """A parsed spec: ``nodes`` in execution order; the last node is the output."""

    name: str
    input_shape: tuple[int, ...]  # without batch
    nodes: list[Node]
    path: str = "<spec>"
    lines: dict[str, int] = field(default_factory=dict)


def load_spec(path: str) -> ModelSpec:
    """Read and validate the spec at ``path``."""
    return build_spec(load_yaml(path), path)


def parse_spec(text: str, path: str = "<spec>") -> ModelSpec:
    """Validate a spec given as YAML text."""
    return build_spec(parse_yaml(text, path), path)


def build_spec(data: Any, path: str) -> ModelSpec:
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise SpecError(
            f"{path}:{line_of(data, 1)}: the spec must be a mapping with input: and layers:, but the file holds {kind}",
            file=path,
            line=line_of(data, 1),
        )
    for key in data:
        if key not in TOP_KEYS:
            raise SpecError(
                f"{path}:{_key_line(data, key)}: unknown top-level key {key!r}{suggest(str(key), TOP_KEYS)}"
                f" (a spec has {', '.join(TOP_KEYS)})",
                file=path,
                line=_key_line(data, key),
            )
    if "input" not in data:
        raise SpecError(f"{path}:1: missing input: (the C, H, W of one sample, e.g. input: [3, 224, 224])", file=path, line=1)
    if "layers" not in data:
        raise SpecError(f"{path}:1: missing layers: (the list of layers)", file=path, line=1)
    builder = _Builder(path, data.get("blocks"), _key_line(data, "blocks"))
    input_shape = parse_input(data["input"], path, _key_line(data, "input"))
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{path}:{_key_line(data, 'layers')}: layers: must be a non-empty list", file=path, line=_key_line(data, "layers"))
    builder.expand(layers, prefix="", scope={INPUT: INPUT}, params={}, depth=0, stack=())
    name = data.get("name", path)
    return ModelSpec(name=str(name), input_shape=input_shape, nodes=builder.nodes, path=path)


def parse_input(value: Any, path: str, line: int | None) -> tuple[int, ...]:
    """``[3, 224, 224]`` or ``3x224x224`` → (3, 224, 224)."""
    from .sizes import parse_size

    where = f"{path}:{line}" if line else path
    try:
        if isinstance(value, list):
            if not value:
                raise SpecError("input: is empty")
            return tuple(check_size(v, what="input size") for v in value)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return parse_size(str(value), what="input")
    except SpecError as error:
        raise SpecError(f"{where}: {error.message}; write input: [C, H, W], e.g. [3, 224, 224]", file=path, line=line) from None
    raise SpecError(f"{where}: input: must be a list like [3, 224, 224], got {value!r}", file=path, line=line)


def _key_line(mapping: Any, key: Any) -> int | None:
    lines = getattr(mapping, "key_lines", None)
    return lines.get(key) if lines else line_of(mapping)


class _Builder:
    """Expands entries, blocks and repeats into nodes; resolves names and ``from:``."""

    def __init__(self, path: str, blocks: Any, blocks_line: int | None) -> None:
        self.path = path
        self.nodes: list[Node] = []
        self.taken: set[str] = {INPUT}
        self.ahead: list[dict[str, int]] = []  # names defined further down, per open list
        self.blocks = self._read_blocks(blocks, blocks_line)
        self.used_params: dict[str, set[str]] = {name: set() for name in self.blocks}

    def fail(self, message: str, line: int | None, layer: str | None = None) -> SpecError:
        where = f"{self.path}:{line}" if line else self.path
        return SpecError(f"{where}: {message}", file=self.path, line=line, layer=layer, detail=message)

    # -- blocks -----------------------------------------------------------------------------
    def _read_blocks(self, blocks: Any, line: int | None) -> dict[str, tuple[list[str], list[Any], int | None]]:
        if blocks is None:
            return {}
        if not isinstance(blocks, dict):
            raise self.fail("blocks: must map block names to {params: [...], layers: [...]}", line)
        out = {}
        for name, body in blocks.items():
            key_line = _key_line(blocks, name)
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.fail(f"block name {name!r} must be a word (letters, digits, _)", key_line)
            if module_of(name) is not None:
                raise self.fail(f"block name {name!r} is already a layer type; pick another name", key_line)
            if isinstance(body, list):
                body = {"layers": body}
            if not isinstance(body, dict) or not isinstance(body.get("layers"), list) or not body["layers"]:
                raise self.fail(f"block {name!r} needs layers: (a non-empty list), and optionally params: [...]", key_line)
            for key in body:
                if key not in BLOCK_KEYS:
                    raise self.fail(f"block {name!r} has an unknown key {key!r}{suggest(str(key), BLOCK_KEYS)}", _key_line(body, key))
            params = body.get("params") or []
            if not isinstance(params, list) or not all(isinstance(p, str) and _NAME.match(p) for p in params):
                raise self.fail(f"block {name!r}: params: must be a list of names, like [planes, stride]", _key_line(body, "params"))
            out[name] = (list(params), body["layers"], key_line)
        return out

    # -- entries ----------------------------------------------------------------------------
    def expand(
        self,
        entries: list[Any],
        *,
        prefix: str,
        scope: dict[str, str],
        params: Mapping[str, Any],
        depth: int,
        stack: tuple[str, ...],
    ) -> str:
        """Add the nodes of ``entries``; returns the full name of the last one."""
        previous = scope[INPUT]
        item_lines = getattr(entries, "item_lines", [None] * len(entries))
        self.ahead.append(
            {e["name"]: _key_line(e, "name") or 0 for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
        )
        for index, entry in enumerate(entries):
            line = item_lines[index] if index < len(item_lines) else line_of(entry)
            previous = self.entry(entry, index, line, prefix=prefix, scope=scope, previous=previous, params=params, depth=depth, stack=stack)
        self.ahead.pop()
        return previous

    def entry(
        self,
        entry: Any,
        index: int,
        line: int | None,
        *,
        prefix: str,
        scope: dict[str, str],
        previous: str,
        params: Mapping[str, Any],
        depth: int,
        stack: tuple[str, ...],
    ) -> str:
        kind, value, siblings = self.split_entry(entry, line, params)
        line = _key_line(entry, kind) if isinstance(entry, dict) else line
        local = siblings.get("name")
        if local is not None:
            if not isinstance(local, str) or not _NAME.match(local):
                raise self.fail(f"name {local!r} must be a word (letters, digits, _ or -)", line)
            if local == INPUT:
                raise self.fail("'input' is reserved for the model's (or block's) input; pick another name", line)
            if local in scope:
                raise self.fail(f"the name {local!r} is used twice in this scope", line)
        local_name = local if local is not None else str(index)
        sources = self.sources(siblings.get("from"), value if _is_merge(kind) else None, kind, scope, previous, line, params, local)
        repeat = siblings.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise self.fail(f"repeat: must be a whole number from 1 to {MAX_REPEAT:,}, got {repeat!r}", line)
        trainable = siblings.get("trainable", True)
        if not isinstance(trainable, bool):
            raise self.fail(f"trainable: must be true or false, got {trainable!r}", line)
        last = previous
        for copy in range(repeat):
            base = f"{prefix}{local_name}" + (f".{copy}" if repeat > 1 else "")
            inputs = sources if copy == 0 else (last,)
            if kind in self.blocks:
                last = self.use_block(kind, value, base, inputs, line, params, depth, stack, trainable)
            else:
                last = self.add_layer(kind, value, base, inputs, line, params, depth, trainable)
        if local is not None:
            scope[local] = last
        scope[str(index)] = last
        return last

    def split_entry(self, entry: Any, line: int | None, params: Mapping[str, Any]) -> tuple[str, Any, dict[str, Any]]:
        """(layer or block name, its value, sibling keys) of one list entry."""
        if isinstance(entry, str):
            return self.check_kind(entry, line), None, {}
        if not isinstance(entry, dict) or not entry:
            raise self.fail(f"a layer entry must be a name like ReLU or a mapping like Conv2d: {{...}}, got {entry!r}", line)
        kinds = [key for key in entry if key not in ENTRY_KEYS]
        siblings = {key: substitute(entry[key], params, self, _key_line(entry, key)) for key in entry if key in ENTRY_KEYS}
        if not kinds:
            raise self.fail(f"this entry has {', '.join(map(str, entry))} but no layer; add a layer like Conv2d: {{...}}", line)
        if len(kinds) > 1:
            raise self.fail(
                f"one entry holds one layer, found {', '.join(map(str, kinds))}; start each layer with its own '- '"
                f"{suggest(str(kinds[1]), ENTRY_KEYS) and ' (or a misspelt sibling key' + suggest(str(kinds[1]), ENTRY_KEYS)[1:] + ')'}",
                _key_line(entry, kinds[1]),
            )
        kind = self.check_kind(kinds[0], _key_line(entry, kinds[0]))
        return kind, entry[kinds[0]], siblings

    def check_kind(self, name: Any, line: int | None) -> str:
        if not isinstance(name, str):
            raise self.fail(f"{name!r} is not a layer name", line)
        if name in self.blocks:
            return name
        if module_of(name) is None:
            from .layers import layer_names

            raise self.fail(f"unknown layer {name!r}{suggest(name, [*layer_names(), *self.blocks])}", line)
        return lookup(name)[0]

    def sources(
        self,
        from_value: Any,
        merge_value: Any,
        kind: str,
        scope: dict[str, str],
        previous: str,
        line: int | None,
        params: Mapping[str, Any],
        own: str | None,
    ) -> tuple[str, ...]:
        """The full names this entry reads from."""
        if _is_merge(kind) and isinstance(merge_value, list):
            if from_value is not None:
                raise self.fail(f"{kind} names its inputs twice (in the list and in from:); keep one", line)
            from_value = merge_value
        if _is_merge(kind) and isinstance(merge_value, dict) and "from" in merge_value:
            from_value = substitute(merge_value["from"], params, self, line)
        if from_value is None:
            return (previous,)
        names = from_value if isinstance(from_value, list) else [from_value]
        out = []
        for name in names:
            name = str(name)
            if own is not None and name == own:
                raise self.fail(f"{kind} '{own}' takes its input from itself; from: must name an earlier entry", line, kind)
            if name not in scope:
                ahead = next((scope_ahead[name] for scope_ahead in reversed(self.ahead) if name in scope_ahead), None)
                if ahead is not None:
                    raise self.fail(
                        f"from: {name!r} points forward to line {ahead}; from: may only name entries above it"
                        " (no cycles, no forward references)",
                        line,
                        kind,
                    )
                hint = suggest(name, [n for n in scope if not n.isdigit()])
                raise self.fail(f"from: {name!r} names no earlier entry{hint}", line, kind)
            out.append(scope[name])
        if not _is_merge(kind) and len(out) != 1:
            raise self.fail(f"{kind} takes one input; from: names {len(out)}. Join branches with Add or Concat first", line, kind)
        return tuple(out)

    def add_layer(
        self, kind: str, value: Any, name: str, inputs: tuple[str, ...], line: int | None, params: Mapping[str, Any], depth: int, trainable: bool
    ) -> str:
        kwargs = self.layer_kwargs(kind, value, line, params)
        try:
            layer = make_layer(kind, **kwargs)
        except ConvcalcError as error:
            raise self.fail(error.message, line, kind) from None
        self.add_node(Node(name=name, layer=layer, inputs=inputs, line=line, depth=depth, trainable=trainable))
        return name

    def layer_kwargs(self, kind: str, value: Any, line: int | None, params: Mapping[str, Any]) -> dict[str, Any]:
        if value is None or (_is_merge(kind) and isinstance(value, list)):
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{kind} takes a mapping of arguments like {{kernel_size: 3}}, got {value!r}", line, kind)
        cls = lookup(kind)[1]
        kwargs = {}
        for key, raw in value.items():
            key_line = _key_line(value, key) or line
            if _is_merge(kind) and key == "from":
                continue
            if canonical_key(str(key), cls.PARAMS) is None:
                options = [*cls.PARAMS, *[a for a in ("k", "s", "p", "d", "op", "g", "out") if canonical_key(a, cls.PARAMS)]]
                raise self.fail(
                    f"{kind} has no argument {key!r}{suggest(str(key), options)}"
                    + (f" ({kind} takes {', '.join(cls.PARAMS)})" if cls.PARAMS else f" ({kind} takes no arguments)"),
                    key_line,
                    kind,
                )
            kwargs[str(key)] = substitute(raw, params, self, key_line)
        return kwargs

    def use_block(
        self,
        block: str,
        value: Any,
        name: str,
        inputs: tuple[str, ...],
        line: int | None,
        outer: Mapping[str, Any],
        depth: int,
        stack: tuple[str, ...],
        trainable: bool,
    ) -> str:
        if block in stack:
            raise self.fail(f"block {block!r} uses itself ({' → '.join([*stack, block])}); blocks cannot be recursive", line, block)
        if depth >= MAX_BLOCK_DEPTH:
            raise self.fail(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep ({' → '.join(stack[:5])} …)", line, block)
        declared, body, _ = self.blocks[block]
        given = {} if value is None else value
        if not isinstance(given, dict):
            raise self.fail(f"block {block!r} takes a mapping of its params ({', '.join(declared) or 'none'}), got {given!r}", line, block)
        for key in given:
            if key not in declared:
                raise self.fail(
                    f"block {block!r} has no param {key!r}{suggest(str(key), declared)} (its params: {', '.join(declared) or 'none'})",
                    _key_line(given, key) or line,
                    block,
                )
        missing = [p for p in declared if p not in given]
        if missing:
            raise self.fail(f"block {block!r} needs {', '.join(missing)}", line, block)
        values = {key: substitute(val, outer, self, _key_line(given, key) or line) for key, val in given.items()}
        if len(inputs) != 1:
            raise self.fail(f"block {block!r} takes one input; from: names {len(inputs)}", line, block)
        tracker = _UseTracker(values)
        last = self.expand(body, prefix=f"{name}.", scope={INPUT: inputs[0]}, params=tracker, depth=depth + 1, stack=(*stack, block))
        unused = [p for p in declared if p not in tracker.used]
        if unused:
            raise self.fail(f"block {block!r} declares params it never uses: {', '.join(unused)} (write ${unused[0]} where it belongs, or drop it)", self.blocks[block][2], block)
        if not trainable:
            for index in range(len(self.nodes) - 1, -1, -1):
                node = self.nodes[index]
                if not node.name.startswith(f"{name}."):
                    break
                self.nodes[index] = Node(node.name, node.layer, node.inputs, node.line, node.depth, False)
        return last

    def add_node(self, node: Node) -> None:
        if node.name in self.taken:
            raise self.fail(f"the name {node.name!r} is used twice", node.line)
        if len(self.nodes) >= MAX_NODES:
            raise self.fail(f"the model expands to more than {MAX_NODES:,} layers", node.line)
        self.taken.add(node.name)
        self.nodes.append(node)


class _UseTracker(dict):  # type: ignore[type-arg]
    """Block params that remember which were read."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.used.add(key)
        return super().__getitem__(key)


def substitute(value: Any, params: Mapping[str, Any], builder: _Builder, line: int | None) -> Any:
    """Replace ``$name`` (a whole value keeps the param's type) inside any value."""
    if isinstance(value, str) and "$" in value:
        whole = _PARAM.fullmatch(value)
        if whole:
            return _param(whole.group(1), params, builder, line)
        return _PARAM.sub(lambda m: str(_param(m.group(1), params, builder, line)), value)
    if isinstance(value, list):
        out = YList(substitute(v, params, builder, line) for v in value)
        out.line, out.item_lines = getattr(value, "line", line or 0), getattr(value, "item_lines", [])
        return out
    if isinstance(value, dict):
        mapping = YDict((k, substitute(v, params, builder, _key_line(value, k) or line)) for k, v in value.items())
        mapping.line, mapping.key_lines = getattr(value, "line", line or 0), getattr(value, "key_lines", {})
        return mapping
    return value


def _param(name: str, params: Mapping[str, Any], builder: _Builder, line: int | None) -> Any:
    if name not in params:
        known = list(params)
        where = f"(this block's params: {', '.join(known)})" if known else "(only block params can be substituted)"
        raise builder.fail(f"${name} is not a param here{suggest(name, known)} {where}", line)
    return params[name]


def _is_merge(kind: str) -> bool:
    return module_of(kind) == "merge"
