"""YAML model spec → a validated list of named nodes in execution order (errors carry file:line).

Syntax (see the README's "The spec format"): ``input``, ``layers``, optional ``name`` and ``blocks``.
An entry is a layer name (``- ReLU``), a layer with arguments (``- Conv2d: {out: 16, k: 3}``),
a merge (``- Add: [a, b]``), or a block use (``- basic: {planes: 64}``), optionally with the
sibling keys ``name``, ``from``, ``repeat``, ``trainable`` and ``tie`` (the earlier layer whose
parameters this one shares: counted once).

Node names are block paths, as torch names modules: ``layer2.0.conv1``. A named entry is its
name (``name.0``, ``name.1`` … when it has ``repeat:``); an unnamed one is its position in its
list, copies included, like the children of ``nn.Sequential``. Inside a block, ``from:`` sees
the block's own names and ``input``. Every error is a one-line SpecError with ``file:line``;
blocks are checked where they are defined ($params declared and used), cycles and nesting
deeper than MAX_BLOCK_DEPTH where they are used, and expansions past MAX_NODES before they are
built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .builder import INPUT, MAX_NODES, ModelSpec, Node, Ref, SpecBuilder
from .errors import ConvcalcError, SpecError, located
from .layers import lookup
from .layers.base import canonical_key, suggest
from .layers.catalog import module_of
from .sizes import check_size, too_many_elements
from .yamlio import YDict, YList, line_of, load_yaml, parse_yaml

TOP_KEYS = ("name", "input", "layers", "blocks", "description")
ENTRY_KEYS = ("name", "from", "repeat", "trainable", "tie")
BLOCK_KEYS = ("params", "layers", "description")
MAX_REPEAT = 10_000
MAX_BLOCK_DEPTH = 32
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PARAM = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


class Scope(dict):  # type: ignore[type-arg]
    """Local names → full node names, plus what each entry is and its line (``info``)."""

    def __init__(self, names: dict[str, str], info: dict[str, tuple[str, int | None]]) -> None:
        super().__init__(names)
        self.info = info


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
    builder = _SpecBuilder(path, data.get("blocks"), _key_line(data, "blocks"))
    input_shape = parse_input(data["input"], path, _key_line(data, "input"))
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{path}:{_key_line(data, 'layers')}: layers: must be a non-empty list", file=path, line=_key_line(data, "layers"))
    builder.expand(layers, prefix="", scope=Scope({INPUT: INPUT}, {INPUT: ("the model input", None)}), params={}, depth=0, stack=())
    builder.graph.name, builder.graph.input_shape = str(data.get("name", path)), input_shape
    return builder.graph.build()


def parse_input(value: Any, path: str, line: int | None) -> tuple[int, ...]:
    """``[3, 224, 224]`` or ``3x224x224`` → (3, 224, 224)."""
    from .sizes import parse_size

    try:
        if isinstance(value, list):
            if not value:
                raise SpecError("input: is empty")
            shape = tuple(check_size(v, what="input size") for v in value)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            shape = parse_size(value, what="input")
        else:
            shape = ()
        huge = too_many_elements(shape)
        if huge:
            raise SpecError(f"input: is a {huge}")
        if shape:
            return shape
    except SpecError as error:
        raise SpecError(located(path, line, f"{error.message}; write input: [C, H, W], e.g. [3, 224, 224]"), file=path, line=line) from None
    raise SpecError(located(path, line, f"input: must be a list like [3, 224, 224], got {value!r}"), file=path, line=line)


def _key_line(mapping: Any, key: Any) -> int | None:
    lines = getattr(mapping, "key_lines", None)
    return lines.get(key) if lines else line_of(mapping)


class _SpecBuilder:
    """Expands entries, blocks and repeats into nodes; resolves names and ``from:``."""

    def __init__(self, path: str, blocks: Any, blocks_line: int | None) -> None:
        self.path = path
        self.graph = SpecBuilder(path, (), path=path)  # nodes, wiring, names, the shared layers
        self.ahead: list[dict[str, int]] = []  # names defined further down, per open list
        self.blocks = self._read_blocks(blocks, blocks_line)
        self.sizes: dict[str, int] = {}  # lower bounds of each block's node count
        self.estimating: list[str] = []

    @property
    def nodes(self) -> list[Node]:
        return self.graph.nodes

    def fail(self, message: str, line: int | None, layer: str | None = None, cause: ConvcalcError | None = None) -> SpecError:
        """A SpecError at ``line`` of this spec; ``cause``'s kind, axis, numbers and fix carry over."""
        return self.graph.fail(message, line, layer, cause)

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
            self._check_param_use(name, list(params), body, key_line)
            out[name] = (list(params), body["layers"], key_line)
        return out

    def _check_param_use(self, block: str, declared: list[str], body: Any, line: int | None) -> None:
        """Every ``$name`` in the block's layers is a declared param, and every param is used."""
        refs: list[tuple[str, int | None]] = []
        _param_refs(body["layers"], _key_line(body, "layers") or line, refs)
        listed = ", ".join(declared) or "none"
        for name, ref_line in refs:
            if name not in declared:
                raise self.fail(
                    f"${name} is not a param of block {block!r}{suggest(name, declared)} (its params: {listed};"
                    f" add {name} to params: to pass it in)",
                    ref_line,
                    block,
                )
        used = {name for name, _ in refs}
        unused = [p for p in declared if p not in used]
        if unused:
            raise self.fail(
                f"block {block!r} declares params it never uses: {', '.join(unused)}"
                f" (write ${unused[0]} where it belongs, or drop it from params:)",
                _key_line(body, "params") or line,
                block,
            )

    # -- entries ----------------------------------------------------------------------------
    def expand(
        self,
        entries: list[Any],
        *,
        prefix: str,
        scope: Scope,
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
        position = 0  # like nn.Sequential: an unnamed entry is named by its position, copies count
        for index, entry in enumerate(entries):
            line = item_lines[index] if index < len(item_lines) else line_of(entry)
            previous, copies = self.entry(
                entry, position, line, prefix=prefix, scope=scope, previous=previous, params=params, depth=depth, stack=stack
            )
            position += copies
        self.ahead.pop()
        return previous

    def entry(
        self,
        entry: Any,
        position: int,
        line: int | None,
        *,
        prefix: str,
        scope: Scope,
        previous: str,
        params: Mapping[str, Any],
        depth: int,
        stack: tuple[str, ...],
    ) -> tuple[str, int]:
        """Add one entry (all its copies); returns the full name of its last node and the copy count.

        Names: ``name: layer1`` gives ``layer1`` (``layer1.0``, ``layer1.1`` … with ``repeat:``);
        an unnamed entry is named by its position in the list, copies included, as nn.Sequential
        numbers its children (``features.0``, ``features.1`` …).
        """
        kind, value, siblings = self.split_entry(entry, line, params)
        line = _key_line(entry, kind) if isinstance(entry, dict) else line
        local = siblings.get("name")
        if local is not None:
            if not isinstance(local, str) or not _NAME.match(local):
                raise self.fail(f"name {local!r} must be a word starting with a letter (letters, digits, _ or -)", line)
            if local == INPUT:
                raise self.fail("'input' is reserved for the model's (or block's) input; pick another name", line)
            if local in scope:
                raise self.fail(f"the name {local!r} is used twice in this scope", line)
        block = stack[-1] if stack else None
        sources, refs = self.sources(siblings.get("from"), value if _is_merge(kind) else None, kind, scope, previous, line, params, local, block)
        repeat = siblings.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            written = entry.get("repeat") if isinstance(entry, dict) else None
            via = f" (from repeat: {written})" if isinstance(written, str) and "$" in written else ""
            raise self.fail(f"repeat: must be a whole number from 1 to {MAX_REPEAT:,}, got {repeat!r}{via}", _key_line(entry, "repeat") or line)
        if repeat > 1 and _is_merge(kind):
            raise self.fail(f"{kind} cannot repeat (each copy would have one input); write one {kind} per join", line, kind)
        trainable = siblings.get("trainable", True)
        if not isinstance(trainable, bool):
            raise self.fail(f"trainable: must be true or false, got {trainable!r}", line)
        is_block = kind in self.blocks
        tie = self.tie_target(siblings["tie"], kind, is_block, scope, line) if "tie" in siblings else None
        before = len(self.nodes)
        self.check_budget(self.estimate(kind) if is_block else 1, repeat, kind, line, before)
        indexed = "repeat" in siblings
        what = f"block {kind}" if is_block else kind
        last = previous
        for copy in range(repeat):
            number = str(position + copy)
            if local is None:
                base = prefix + number
            else:
                base = f"{prefix}{local}.{copy}" if indexed else prefix + local
            inputs = sources if copy == 0 else (last,)
            if is_block:
                last = self.use_block(kind, value, base, inputs, line, params, depth, stack, trainable)
            else:
                last = self.add_layer(kind, value, base, inputs, line, params, depth, trainable, refs if copy == 0 else (), tie)
            if copy == 0 and repeat > 1:
                self.check_budget(len(self.nodes) - before, repeat, kind, line, before)
            if local is None:
                scope[number] = last
                scope.info[number] = (what, line)
        if local is not None:
            scope[local] = last
            scope.info[local] = (what, line)
        return last, repeat

    def tie_target(self, value: Any, kind: str, is_block: bool, scope: Scope, line: int | None) -> str:
        """The full name of the layer ``tie:`` names: a name in this scope, or an earlier node's full name."""
        if is_block or _is_merge(kind):
            what = f"block {kind!r}" if is_block else kind
            raise self.fail(f"tie: applies to one layer; {what} has no parameters of its own to share", line, kind)
        if not isinstance(value, str) or not value or value == INPUT:
            raise self.fail(f"tie: takes the name of an earlier layer whose parameters this one shares, got {value!r}", line, kind)
        if value in scope:
            return str(scope[value])
        if value in self.graph.taken:
            return value
        hint = suggest(value, [n for n in scope if not n.isdigit()])
        raise self.fail(f"tie: {value!r} names no layer above it{hint}", line, kind)

    def check_budget(self, per_copy: int, copies: int, kind: str, line: int | None, before: int) -> None:
        """Fail before building when ``copies`` copies of ``per_copy`` nodes after ``before`` pass MAX_NODES."""
        if before + per_copy * copies <= MAX_NODES:
            return
        if kind not in self.blocks:
            what = f"repeat: {copies:,} of {kind}"
        elif per_copy > MAX_NODES:
            what = f"block {kind!r} alone expands to more than {MAX_NODES:,} layers (blocks inside blocks multiply)"
        else:
            what = f"{copies:,} × block {kind!r} ({per_copy:,} layers each) = {per_copy * copies:,} layers"
        above = f", after {before:,} layers above" if before else ""
        raise self.fail(f"the model is too large: {what}{above}; convcalc handles at most {MAX_NODES:,} layers", line, kind)

    def estimate(self, block: str) -> int:
        """A lower bound of the nodes one use of ``block`` adds (``$`` repeats count once)."""
        if block not in self.sizes:
            self.sizes[block] = 1  # a cycle counts once; expansion reports the cycle itself
            self.sizes[block] = self._estimate_entries(self.blocks[block][1], len(self.estimating))
        return self.sizes[block]

    def _estimate_entries(self, entries: list[Any], depth: int) -> int:
        total = 0
        for entry in entries:
            kind = next((k for k in entry if k not in ENTRY_KEYS), None) if isinstance(entry, dict) else entry
            repeat = entry.get("repeat", 1) if isinstance(entry, dict) else 1
            copies = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and 1 <= repeat <= MAX_REPEAT else 1
            inner = 1
            if isinstance(kind, str) and kind in self.blocks and depth < MAX_BLOCK_DEPTH:
                self.estimating.append(kind)
                try:
                    inner = self.estimate(kind)
                finally:
                    self.estimating.pop()
            total = min(total + copies * inner, MAX_NODES + 1)
        return total

    def split_entry(self, entry: Any, line: int | None, params: Mapping[str, Any]) -> tuple[str, Any, dict[str, Any]]:
        """(layer or block name, its value, sibling keys) of one list entry."""
        if isinstance(entry, str):
            if "(" in entry:  # torch's call syntax: - Conv2d(1, 16, kernel_size=3)
                from .torchcall import parse_call

                try:
                    return parse_call(entry) + ({},)
                except SpecError as error:
                    raise self.fail(error.message, line, cause=error) from None
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

            what = "layer or block" if self.blocks else "layer"
            raise self.fail(f"unknown {what} {name!r}{suggest(name, [*layer_names(), *self.blocks])}", line)
        return lookup(name)[0]

    def sources(
        self,
        from_value: Any,
        merge_value: Any,
        kind: str,
        scope: Scope,
        previous: str,
        line: int | None,
        params: Mapping[str, Any],
        own: str | None,
        block: str | None = None,
    ) -> tuple[tuple[str, ...], tuple[Ref, ...]]:
        """The full names this entry reads from, and the names as written (empty without from:)."""
        merge = _is_merge(kind)
        if merge and isinstance(merge_value, list):
            if from_value is not None:
                raise self.fail(f"{kind} names its inputs twice (in the list and in from:); keep one", line)
            from_value = merge_value
        if merge and isinstance(merge_value, dict) and "from" in merge_value:
            if from_value is not None:
                raise self.fail(f"{kind} names its inputs twice (in {kind}: {{from: ...}} and in from:); keep one", line)
            from_value = substitute(merge_value["from"], params, self, line)
        if from_value is None:
            if merge:
                raise self.fail(
                    f"{kind} joins two or more branches: name them, like {kind}: [a, b] (names of entries above;"
                    " 'input' is the model's or block's input)",
                    line,
                    kind,
                )
            return (previous,), ()
        names = from_value if isinstance(from_value, list) else [from_value]
        if not names:
            raise self.fail("from: is empty; name an entry above (or 'input')", line, kind)
        out, refs = [], []
        for name in names:
            if isinstance(name, (list, dict)) or name is None or isinstance(name, bool):
                raise self.fail(f"from: takes names of entries above, got {name!r}", line, kind)
            name = str(name)
            if own is not None and name == own:
                raise self.fail(f"{kind} '{own}' takes its input from itself; from: must name an entry above it", line, kind)
            if name not in scope:
                ahead = self.ahead[-1].get(name) if self.ahead else None
                if ahead is not None:
                    raise self.fail(
                        f"from: {name!r} points forward to line {ahead}; from: may only name entries above it"
                        " (no cycles, no forward references)",
                        line,
                        kind,
                    )
                hint = suggest(name, [n for n in scope if not n.isdigit()])
                if block is not None:
                    raise self.fail(
                        f"from: {name!r} names no entry above it in block {block!r}{hint} (inside a block, from: sees"
                        " only the block's own entries and 'input', the block's input)",
                        line,
                        kind,
                    )
                raise self.fail(f"from: {name!r} names no entry above it{hint}", line, kind)
            out.append(scope[name])
            what, where = scope.info.get(name, (name, None))
            refs.append(Ref(name, what, where))
        if merge and len(out) < 2:
            raise self.fail(f"{kind} joins two or more branches, but names only {refs[0].name!r}; write {kind}: [a, b]", line, kind)
        if not merge and len(out) != 1:
            what = f"block {kind!r}" if kind in self.blocks else kind
            raise self.fail(f"{what} takes one input; from: names {len(out)}. Join branches with Add or Concat first", line, kind)
        return tuple(out), tuple(refs)

    def add_layer(
        self,
        kind: str,
        value: Any,
        name: str,
        inputs: tuple[str, ...],
        line: int | None,
        params: Mapping[str, Any],
        depth: int,
        trainable: bool,
        refs: tuple[Ref, ...] = (),
        tie: str | None = None,
    ) -> str:
        layer = self.graph.layer(kind, self.layer_kwargs(kind, value, line, params), line)
        return self.graph.add(layer, name=name, inputs=inputs, line=line, depth=depth, trainable=trainable, refs=refs, tie=tie)

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
            chain = " → ".join([*stack[:3], "…", *stack[-2:], block])
            raise self.fail(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep ({chain}); convcalc expands at most {MAX_BLOCK_DEPTH} levels", line, block)
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
        scope = Scope({INPUT: inputs[0]}, {INPUT: (f"the input of block {block} '{name}'", line)})
        last = self.expand(body, prefix=f"{name}.", scope=scope, params=values, depth=depth + 1, stack=(*stack, block))
        if not trainable:
            for index in range(len(self.nodes) - 1, -1, -1):
                node = self.nodes[index]
                if not node.name.startswith(f"{name}."):
                    break
                self.nodes[index] = replace(node, trainable=False)
        return last


def _param_refs(value: Any, line: int | None, out: list[tuple[str, int | None]]) -> None:
    """Collect ``($name, line)`` for every ``$name`` inside ``value`` (iteratively: specs nest deep)."""
    todo = [(value, line)]
    while todo:
        item, where = todo.pop()
        if isinstance(item, str):
            if "$" in item:
                out.extend((match.group(1), where) for match in _PARAM.finditer(item))
        elif isinstance(item, dict):
            for key, sub in item.items():
                todo.append((sub, _key_line(item, key) or where))
        elif isinstance(item, list):
            lines = getattr(item, "item_lines", [])
            todo.extend((sub, lines[i] if i < len(lines) else where) for i, sub in enumerate(item))
    out.sort(key=lambda ref: ref[1] or 0)


def substitute(value: Any, params: Mapping[str, Any], builder: _SpecBuilder, line: int | None) -> Any:
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


def _param(name: str, params: Mapping[str, Any], builder: _SpecBuilder, line: int | None) -> Any:
    if name not in params:
        known = list(params)
        where = f"(this block's params: {', '.join(known)})" if known else "(only block params can be substituted)"
        raise builder.fail(f"${name} is not a param here{suggest(name, known)} {where}", line)
    return params[name]


def _is_merge(kind: str) -> bool:
    return module_of(kind) == "merge"
