"""Blocks and their expansion: entries (a layer, a block use, their wiring) → nodes.

An :class:`Entry` is one item of a layer list as either front end writes it — a YAML entry
(``spec.py`` reads ``- Conv2d: {out: $planes, k: 3}`` into one) or a call of
:meth:`Block.add` / :meth:`convcalc.SpecBuilder.add`. A :class:`Block` is a named list of entries
with ``params``; inside it ``$planes`` substitutes a param and ``from: input`` names the block's
input. :class:`Expander` turns entries into the nodes of a graph (``builder.Graph``): names
(block paths, as torch names modules: ``layer2.0.conv1``), ``from:``, ``repeat:``,
``trainable:``, block uses and their ``$params``; the layer budget is ``budget.py``'s, and each
layer's arguments are resolved by its family's own rules (``layers.base.argument_name``).

    basic = Block("basic", ["planes"])
    basic.add("Conv2d", name="conv", out="$planes", k=3, p=1)
    basic.add("BatchNorm2d", name="bn")
    basic.add("Add", inputs=["bn", "input"])
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from .budget import MAX_BLOCK_DEPTH, MAX_REPEAT, Budget
from .errors import ConvcalcError, ErrorKind, SpecError
from .layers import Layer, lookup
from .layers.base import argument_name, suggest
from .layers.catalog import module_of
from .numbers import show
from .yamlio import YDict, YList, line_of

INPUT = "input"
#: The keys an entry carries beside its layer (its wiring).
ENTRY_KEYS = ("name", "from", "repeat", "trainable", "tie")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
PARAM = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass(frozen=True)
class Ref:
    """An input as the spec wrote it: ``Add: [bn2, downsample]`` → Ref("downsample", "block downsample", 31)."""

    name: str
    what: str  # "ConvTranspose2d", "block double_conv", "the model input" …
    line: int | None


class Entry(NamedTuple):
    """One item of a layer list: ``kind`` (a torch class name, a :class:`Block` or a built
    :class:`~convcalc.layers.Layer`) with its arguments (a layer's keywords, a block's params; a
    merge's list of inputs), and the wiring keys as written (``$params`` not yet substituted).
    ``repeat`` and ``tie`` are None where they are not written; ``lines`` holds the line of each
    wiring key written.
    (A NamedTuple: one is made per entry of a 100,000-layer spec.)"""

    kind: Any
    args: Any = None
    name: Any = None
    inputs: Any = None  # from:
    repeat: Any = None
    trainable: Any = True
    line: int | None = None
    lines: Mapping[str, int | None] = MappingProxyType({})
    tie: Any = None  # tie: the earlier layer whose parameters this one shares


class Block:
    """A named, reusable list of entries with ``params`` (``$planes`` inside its entries).

    Used like a layer: ``builder.add(block, planes=64, name="layer1", repeat=2)`` (Python) or
    ``- basic: {planes: 64}`` (YAML). Checked where it is first used (YAML: where it is defined):
    its name is a word and no layer type, every ``$name`` is a declared param and every param used.
    """

    def __init__(
        self,
        name: str,
        params: Sequence[str] = (),
        entries: Sequence[Any] | None = None,
        *,
        line: int | None = None,
        params_line: int | None = None,
        entries_line: int | None = None,
    ) -> None:
        self.name = name
        self.params: Any = list(params) if isinstance(params, (list, tuple)) else params  # checked in check_block
        self.entries: list[Any] = entries if isinstance(entries, list) else list(entries or [])
        self.line = line
        self.params_line = params_line
        self.entries_line = entries_line

    def add(
        self,
        layer: Layer | Block | str,
        *,
        name: str | None = None,
        inputs: Sequence[str] | str | None = None,
        repeat: int | str | None = None,
        trainable: bool | str = True,
        tie: str | None = None,
        **args: Any,
    ) -> Block:
        """Add an entry (a layer by type name and keywords, a built layer, or a nested block with
        its params); ``inputs`` and ``tie`` name entries of this block or ``"input"``. Returns the block."""
        self.entries.append(Entry(layer, args, name, inputs, repeat, trainable, tie=tie))
        return self

    def __repr__(self) -> str:
        return f"Block({self.name!r}, params={self.params!r}, {len(self.entries)} entries)"


class Scope(dict):  # type: ignore[type-arg]
    """Local names → full node names, plus what each entry is and its line (``info``)."""

    def __init__(self, names: dict[str, str], info: dict[str, tuple[str, int | None]]) -> None:
        super().__init__(names)
        self.info = info


def key_line(mapping: Any, key: Any) -> int | None:
    """The line of ``key`` in a mapping read from YAML (its own line otherwise)."""
    lines = getattr(mapping, "key_lines", None)
    return lines.get(key) if lines else line_of(mapping)


def is_merge(kind: Any) -> bool:
    """Whether ``kind`` (a checked torch class name) joins several inputs, as its family declares."""
    return isinstance(kind, str) and lookup(kind)[1].MANY_INPUTS


class Expander:
    """Expands entries, blocks and repeats into the nodes of ``graph``; resolves names and ``from:``.

    ``read`` turns an item of a list into an :class:`Entry` (the YAML front end overrides it,
    ``contents`` and ``ahead_names`` to read its entries where they are expanded, so errors come
    in the order of the file).
    """

    def __init__(self, graph: Any) -> None:
        self.graph = graph  # nodes, wiring, the shared layers, fail()
        self.ahead: list[dict[str, int]] = []  # names defined further down, per open list
        self.budget = Budget(self.contents, lambda kind: isinstance(kind, Block))
        self.checked: set[int] = set()

    @property
    def nodes(self) -> list[Any]:
        return self.graph.nodes

    def fail(self, message: str, line: int | None, layer: str | None = None, cause: ConvcalcError | None = None,
             kind: ErrorKind | None = None) -> SpecError:
        """A SpecError of ``kind`` at ``line`` of this spec; ``cause``'s kind, axis, numbers and fix carry over."""
        return self.graph.fail(message, line, layer, cause, kind)  # type: ignore[no-any-return]

    # -- what a front end provides --------------------------------------------------------
    def read(self, item: Any, line: int | None) -> Entry:
        """``item`` as an Entry (Python entries are Entries already)."""
        if not isinstance(item, Entry):
            raise self.fail(f"a block's entries are made with Block.add, got {item!r}", line, kind=ErrorKind.SYNTAX)
        if isinstance(item.kind, str):
            return _replace_kind(item, self.layer_type(item.kind, item.line or line))
        return item

    def contents(self, block: Block) -> Iterator[tuple[Any, Any]]:
        """``(kind, repeat)`` of each entry of ``block``, for the budget."""
        for entry in block.entries:
            if isinstance(entry, Entry):
                yield entry.kind, entry.repeat

    def ahead_names(self, entries: Sequence[Any]) -> dict[str, int]:
        """The names the entries of a list define, with their lines (to tell a forward reference)."""
        return {e.name: e.line for e in entries if isinstance(e, Entry) and isinstance(e.name, str) and e.line}

    def layer_type(self, name: str, line: int | None) -> str:
        """The torch class name of ``name`` (any case), or the one-line error of an unknown layer."""
        try:
            return lookup(name)[0]
        except SpecError as error:
            raise self.fail(error.message, line, cause=error, kind=ErrorKind.UNKNOWN_LAYER) from None

    # -- blocks ---------------------------------------------------------------------------
    def check_name(self, block: Block) -> None:
        """A block's name is a word and no layer type."""
        name, line = block.name, block.line
        if not isinstance(name, str) or not NAME.match(name):
            raise self.fail(f"block name {name!r} must be a word (letters, digits, _)", line, kind=ErrorKind.BLOCK)
        if module_of(name) is not None:
            raise self.fail(f"block name {name!r} is already a layer type; pick another name", line, kind=ErrorKind.BLOCK)

    def check_block(self, block: Block) -> None:
        """A block's definition: its name, params, and every ``$name`` declared and used."""
        if id(block) in self.checked:
            return
        self.check_name(block)
        name, line = block.name, block.line
        if not block.entries:
            raise self.fail(needs_layers(name), line, kind=ErrorKind.BLOCK)
        declared = block.params
        if not isinstance(declared, list) or not all(isinstance(p, str) and NAME.match(p) for p in declared):
            raise self.fail(f"block {name!r}: params: must be a list of names, like [planes, stride]", block.params_line,
                            kind=ErrorKind.BLOCK)
        refs: list[tuple[str, int | None]] = []
        param_refs(block.entries, block.entries_line or line, refs)
        listed = ", ".join(declared) or "none"
        for ref, ref_line in refs:
            if ref not in declared:
                raise self.fail(
                    f"${ref} is not a param of block {name!r}{suggest(ref, declared)} (its params: {listed};"
                    f" add {ref} to params: to pass it in)",
                    ref_line,
                    name,
                    kind=ErrorKind.BLOCK,
                )
        used = {ref for ref, _ in refs}
        unused = [p for p in declared if p not in used]
        if unused:
            raise self.fail(
                f"block {name!r} declares params it never uses: {', '.join(unused)}"
                f" (write ${unused[0]} where it belongs, or drop it from params:)",
                block.params_line or line,
                name,
                kind=ErrorKind.BLOCK,
            )
        self.checked.add(id(block))

    # -- entries --------------------------------------------------------------------------
    def expand(
        self,
        entries: Sequence[Any],
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
        self.ahead.append(self.ahead_names(entries))
        position = 0  # like nn.Sequential: an unnamed entry is named by its position, copies count
        for index, item in enumerate(entries):
            line = item_lines[index] if index < len(item_lines) else line_of(item)
            previous, copies = self.entry(
                self.read(item, line), position, prefix=prefix, scope=scope, previous=previous, params=params, depth=depth,
                stack=stack,
            )
            position += copies
        self.ahead.pop()
        return previous

    def entry(
        self,
        entry: Entry,
        position: int,
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
        kind, value, line = entry.kind, entry.args, entry.line
        is_block = isinstance(kind, Block)
        label = kind.name if is_block else kind.type_name if isinstance(kind, Layer) else kind
        local = self.sub(entry.name, params, "name", entry)
        if local is not None:
            if not isinstance(local, str) or not NAME.match(local):
                raise self.fail(f"name {local!r} must be a word starting with a letter (letters, digits, _ or -)", line,
                                kind=ErrorKind.WIRING)
            if local == INPUT:
                raise self.fail("'input' is reserved for the model's (or block's) input; pick another name", line, kind=ErrorKind.WIRING)
            if local in scope:
                raise self.fail(f"the name {local!r} is used twice in this scope", line, kind=ErrorKind.WIRING)
        block = stack[-1] if stack else None
        merge = is_merge(kind)
        from_value = self.sub(entry.inputs, params, "from", entry)
        sources, refs = self.sources(from_value, value if merge else None, label, merge, is_block, scope, previous, line, params,
                                     local, block)
        repeat = 1 if entry.repeat is None else self.sub(entry.repeat, params, "repeat", entry)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            written = entry.repeat
            via = f" (from repeat: {written})" if isinstance(written, str) and "$" in written else ""
            raise self.fail(f"repeat: must be a whole number from 1 to {MAX_REPEAT:,}, got {repeat!r}{via}",
                            entry.lines.get("repeat") or line, kind=ErrorKind.TOO_LARGE if isinstance(repeat, int) and
                            not isinstance(repeat, bool) and repeat > MAX_REPEAT else ErrorKind.ARGUMENT)
        if repeat > 1 and merge:
            raise self.fail(f"{label} cannot repeat (each copy would have one input); write one {label} per join", line, label,
                            kind=ErrorKind.WIRING)
        trainable = self.sub(entry.trainable, params, "trainable", entry)
        if not isinstance(trainable, bool):
            raise self.fail(f"trainable: must be true or false, got {trainable!r}", line, kind=ErrorKind.ARGUMENT)
        tie = None
        if entry.tie is not None or "tie" in entry.lines:
            tie = self.tie_target(self.sub(entry.tie, params, "tie", entry), label, is_block, merge, scope, line)
        if is_block:
            self.check_block(kind)
        before = len(self.nodes)
        self.check_budget(self.budget.estimate(kind) if is_block else 1, repeat, label, is_block, line, before)
        indexed = entry.repeat is not None
        what = f"block {label}" if is_block else label
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
                last = self.add_layer(kind, value, base, inputs, line, params, depth, trainable, refs if copy == 0 else (), merge, tie)
            if copy == 0 and repeat > 1:
                self.check_budget(len(self.nodes) - before, repeat, label, is_block, line, before)
            if local is None:
                scope[number] = last
                scope.info[number] = (what, line)
        if local is not None:
            scope[local] = last
            scope.info[local] = (what, line)
        return last, repeat

    def sub(self, value: Any, params: Mapping[str, Any], key: str, entry: Entry) -> Any:
        """A wiring key's value with its ``$params`` substituted (at the key's line)."""
        if value is None or isinstance(value, (bool, int)):
            return value
        return substitute(value, params, self, entry.lines.get(key) or entry.line)

    def tie_target(self, value: Any, kind: str, is_block: bool, merge: bool, scope: Scope, line: int | None) -> str:
        """The full name of the layer ``tie:`` names: a name in this scope, or an earlier node's full name."""
        wiring = ErrorKind.WIRING
        if is_block or merge:
            what = f"block {kind!r}" if is_block else kind
            raise self.fail(f"tie: applies to one layer; {what} has no parameters of its own to share", line, kind, kind=wiring)
        if not isinstance(value, str) or not value or value == INPUT:
            raise self.fail(f"tie: takes the name of an earlier layer whose parameters this one shares, got {value!r}", line, kind,
                            kind=wiring)
        if value in scope:
            return str(scope[value])
        if value in self.graph.taken:
            return value
        hint = suggest(value, [n for n in scope if not n.isdigit()])
        raise self.fail(f"tie: {value!r} names no layer above it{hint}", line, kind, kind=wiring)

    def check_budget(self, per_copy: int, copies: int, kind: str, is_block: bool, line: int | None, before: int) -> None:
        """Fail before building when ``copies`` copies of ``per_copy`` nodes after ``before`` pass MAX_NODES."""
        error = self.budget.check(per_copy, copies, kind, is_block, before)
        if error is not None:
            raise self.fail(error.text, line, kind, cause=error)

    def sources(
        self,
        from_value: Any,
        merge_value: Any,
        kind: str,
        merge: bool,
        is_block: bool,
        scope: Scope,
        previous: str,
        line: int | None,
        params: Mapping[str, Any],
        own: str | None,
        block: str | None = None,
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The full names this entry reads from, and the names as written (empty without from:)."""
        wiring = ErrorKind.WIRING
        if merge and isinstance(merge_value, list):
            if from_value is not None:
                raise self.fail(f"{kind} names its inputs twice (in the list and in from:); keep one", line, kind=wiring)
            from_value = merge_value
        if merge and isinstance(merge_value, dict) and "from" in merge_value:
            if from_value is not None:
                raise self.fail(f"{kind} names its inputs twice (in {kind}: {{from: ...}} and in from:); keep one", line, kind=wiring)
            from_value = substitute(merge_value["from"], params, self, line)
        if from_value is None:
            if merge:
                raise self.fail(
                    f"{kind} joins two or more branches: name them, like {kind}: [a, b] (names of entries above;"
                    " 'input' is the model's or block's input)",
                    line,
                    kind,
                    kind=wiring,
                )
            return (previous,), ()
        names = from_value if isinstance(from_value, (list, tuple)) else [from_value]
        if not names:
            raise self.fail("from: is empty; name an entry above (or 'input')", line, kind, kind=wiring)
        out, refs = [], []
        for name in names:
            if isinstance(name, (list, dict)) or name is None or isinstance(name, bool):
                raise self.fail(f"from: takes names of entries above, got {name!r}", line, kind, kind=wiring)
            name = str(name)
            if own is not None and name == own:
                raise self.fail(f"{kind} '{own}' takes its input from itself; from: must name an entry above it", line, kind, kind=wiring)
            if name not in scope:
                ahead = self.ahead[-1].get(name) if self.ahead else None
                if ahead is not None:
                    raise self.fail(
                        f"from: {name!r} points forward to line {ahead}; from: may only name entries above it"
                        " (no cycles, no forward references)",
                        line,
                        kind,
                        kind=wiring,
                    )
                hint = suggest(name, [n for n in scope if not n.isdigit()])
                if block is not None:
                    raise self.fail(
                        f"from: {name!r} names no entry above it in block {block!r}{hint} (inside a block, from: sees"
                        " only the block's own entries and 'input', the block's input)",
                        line,
                        kind,
                        kind=wiring,
                    )
                raise self.fail(f"from: {name!r} names no entry above it{hint}", line, kind, kind=wiring)
            out.append(scope[name])
            what, where = scope.info.get(name, (name, None))
            refs.append(Ref(name, what, where))
        if merge and len(out) < 2:
            raise self.fail(f"{kind} joins two or more branches, but names only {refs[0].name!r}; write {kind}: [a, b]", line, kind,
                            kind=wiring)
        if not merge and len(out) != 1:
            what = f"block {kind!r}" if is_block else kind
            raise self.fail(f"{what} takes one input; from: names {len(out)}. Join branches with Add or Concat first", line, kind,
                            kind=wiring)
        return tuple(out), tuple(refs)

    def add_layer(
        self,
        kind: str | Layer,
        value: Any,
        name: str,
        inputs: tuple[str, ...],
        line: int | None,
        params: Mapping[str, Any],
        depth: int,
        trainable: bool,
        refs: tuple[Any, ...] = (),
        merge: bool = False,
        tie: str | None = None,
    ) -> str:
        if isinstance(kind, Layer):
            if value:
                raise self.fail(f"{kind.type_name}: keyword arguments go with a type name, not a built layer", line,
                                kind=ErrorKind.ARGUMENT)
            layer = kind
        else:
            layer = self.graph.layer(kind, self.layer_kwargs(kind, value, line, params, merge), line)
        return self.graph.append(layer, name, inputs, line, depth, trainable, refs, tie)

    def layer_kwargs(self, kind: str, value: Any, line: int | None, params: Mapping[str, Any], merge: bool = False) -> dict[str, Any]:
        """The entry's arguments, each key checked by the layer family's own rule (its keywords and
        the aliases it takes) at its own line, each value with its ``$params`` substituted."""
        if value is None or (merge and isinstance(value, list)):
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{kind} takes a mapping of arguments like {{kernel_size: 3}}, got {value!r}", line, kind,
                            kind=ErrorKind.ARGUMENT)
        family = lookup(kind)[1]
        kwargs = {}
        for key, raw in value.items():
            where = key_line(value, key) or line
            if merge and key == "from":
                continue
            try:
                argument_name(kind, family.PARAMS, str(key))
            except SpecError as error:
                raise self.fail(error.message, where, kind, cause=error) from None
            kwargs[str(key)] = substitute(raw, params, self, where)
        return kwargs

    def use_block(
        self,
        block: Block,
        value: Any,
        name: str,
        inputs: tuple[str, ...],
        line: int | None,
        outer: Mapping[str, Any],
        depth: int,
        stack: tuple[str, ...],
        trainable: bool,
    ) -> str:
        label = block.name
        if label in stack:
            raise self.fail(f"block {label!r} uses itself ({' → '.join([*stack, label])}); blocks cannot be recursive", line, label,
                            kind=ErrorKind.BLOCK)
        if depth >= MAX_BLOCK_DEPTH:
            chain = " → ".join([*stack[:3], "…", *stack[-2:], label])
            raise self.fail(
                f"blocks are nested more than {MAX_BLOCK_DEPTH} deep ({chain}); convcalc expands at most {MAX_BLOCK_DEPTH} levels",
                line, label, kind=ErrorKind.TOO_LARGE,
            )
        declared = block.params
        given = {} if value is None else value
        if not isinstance(given, dict):
            raise self.fail(f"block {label!r} takes a mapping of its params ({', '.join(declared) or 'none'}), got {given!r}", line,
                            label, kind=ErrorKind.BLOCK)
        for key in given:
            if key not in declared:
                raise self.fail(
                    f"block {label!r} has no param {key!r}{suggest(str(key), declared)} (its params: {', '.join(declared) or 'none'})",
                    key_line(given, key) or line,
                    label,
                    kind=ErrorKind.BLOCK,
                )
        missing = [p for p in declared if p not in given]
        if missing:
            raise self.fail(f"block {label!r} needs {', '.join(missing)}", line, label, kind=ErrorKind.BLOCK)
        values = {key: substitute(val, outer, self, key_line(given, key) or line) for key, val in given.items()}
        if len(inputs) != 1:
            raise self.fail(f"block {label!r} takes one input; from: names {len(inputs)}", line, label, kind=ErrorKind.WIRING)
        scope = Scope({INPUT: inputs[0]}, {INPUT: (f"the input of block {label} '{name}'", line)})
        try:
            last = self.expand(block.entries, prefix=f"{name}.", scope=scope, params=values, depth=depth + 1, stack=(*stack, label))
        except SpecError as error:
            raise _used_at(error, label, line, given, values) from None
        if not trainable:
            self.graph.freeze(f"{name}.")
        return last


def _used_at(error: SpecError, block: str, line: int | None, given: Mapping[str, Any], values: Mapping[str, Any]) -> SpecError:
    """An error at a line inside block ``block``'s definition, with the use it came from (the line of
    ``- basic: {planes: -3}`` and the values it gave): the bad value is often written there. A use
    whose params are themselves ``$params`` of an outer block lets that outer use be named too; an
    error at the use's own line needs no note."""
    if line is None or error.line in (None, line) or error.block_use is not None:
        return error
    params = ", ".join(f"{key}: {show(value)}" for key, value in list(values.items())[:4]) + (", …" if len(values) > 4 else "")
    error.noting(f"in block {block!r} used at line {line}" + (f" with {params}" if params else ""))
    if not any(isinstance(value, str) and "$" in value for value in given.values()):
        error.block_use = line  # the values were written here: outer uses have nothing to add
    return error


def needs_layers(block: str) -> str:
    return f"block {block!r} needs layers: (a non-empty list), and optionally params: [...]"


def _replace_kind(entry: Entry, kind: str) -> Entry:
    return entry if kind == entry.kind else entry._replace(kind=kind)


def param_refs(value: Any, line: int | None, out: list[tuple[str, int | None]]) -> None:
    """Collect ``($name, line)`` for every ``$name`` inside ``value`` (iteratively: specs nest deep)."""
    todo = [(value, line)]
    while todo:
        item, where = todo.pop()
        if isinstance(item, str):
            if "$" in item:
                out.extend((match.group(1), where) for match in PARAM.finditer(item))
        elif isinstance(item, dict):
            for key, sub in item.items():
                todo.append((sub, key_line(item, key) or where))
        elif isinstance(item, list):
            lines = getattr(item, "item_lines", [])
            todo.extend((sub, lines[i] if i < len(lines) else where) for i, sub in enumerate(item))
        elif isinstance(item, Entry):
            at = item.line or where
            todo.extend((sub, at) for sub in (item.args, item.name, item.inputs, item.repeat, item.trainable, item.tie))
        elif isinstance(item, tuple):
            todo.extend((sub, where) for sub in item)
    out.sort(key=lambda ref: ref[1] or 0)


def substitute(value: Any, params: Mapping[str, Any], expander: Expander, line: int | None) -> Any:
    """Replace ``$name`` (a whole value keeps the param's type) inside any value."""
    if isinstance(value, str) and "$" in value:
        whole = PARAM.fullmatch(value)
        if whole:
            return _param(whole.group(1), params, expander, line)
        return PARAM.sub(lambda m: str(_param(m.group(1), params, expander, line)), value)
    if isinstance(value, list):
        out = YList(substitute(v, params, expander, line) for v in value)
        out.line, out.item_lines = getattr(value, "line", line or 0), getattr(value, "item_lines", [])
        return out
    if isinstance(value, tuple):
        return tuple(substitute(v, params, expander, line) for v in value)
    if isinstance(value, dict):
        mapping = YDict((k, substitute(v, params, expander, key_line(value, k) or line)) for k, v in value.items())
        mapping.line, mapping.key_lines = getattr(value, "line", line or 0), getattr(value, "key_lines", {})
        return mapping
    return value


def _param(name: str, params: Mapping[str, Any], expander: Expander, line: int | None) -> Any:
    if name not in params:
        known = list(params)
        where = f"(this block's params: {', '.join(known)})" if known else "(only block params can be substituted)"
        raise expander.fail(f"${name} is not a param here{suggest(name, known)} {where}", line, kind=ErrorKind.BLOCK)
    return params[name]
