"""YAML model spec → a validated list of named nodes in execution order (errors carry file:line).

Syntax (see the README's "The spec format"): ``input``, ``layers``, optional ``name`` and ``blocks``.
An entry is a layer name (``- ReLU``), a layer with arguments (``- Conv2d: {out: 16, k: 3}``),
a merge (``- Add: [a, b]``), or a block use (``- basic: {planes: 64}``), optionally with the
sibling keys ``name``, ``from``, ``repeat``, ``trainable`` and ``tie`` (the earlier layer whose
parameters this one shares: counted once).

This module reads the YAML: the top-level keys, ``input:``, ``blocks:`` (into
:class:`~convcalc.blocks.Block`, checked where they are defined: $params declared and used) and
each entry (into a :class:`~convcalc.blocks.Entry`, read where it is expanded, so errors come in
the file's order). What the entries mean — names as block paths (``layer2.0.conv1``), ``from:``,
``repeat:``, cycles and nesting deeper than MAX_BLOCK_DEPTH, expansions past MAX_NODES before
they are built — is the one expansion every builder uses (``blocks.py``, ``budget.py``), through
a :class:`~convcalc.builder.SpecBuilder`. Every error is a one-line SpecError with ``file:line``
and a kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .blocks import ENTRY_KEYS, INPUT, Block, Entry, Expander, key_line, needs_layers
from .budget import MAX_BLOCK_DEPTH, MAX_NODES, MAX_REPEAT
from .builder import ModelSpec, Node, Ref, SpecBuilder
from .errors import ErrorKind, SpecError, located
from .layers import lookup
from .layers.base import suggest
from .layers.catalog import module_of
from .sizes import check_size, too_many_elements
from .yamlio import line_of, load_yaml, parse_yaml

__all__ = ["INPUT", "MAX_BLOCK_DEPTH", "MAX_NODES", "MAX_REPEAT", "ModelSpec", "Node", "Ref", "load_spec", "parse_spec"]

TOP_KEYS = ("name", "input", "layers", "blocks", "description")
BLOCK_KEYS = ("params", "layers", "description")


def load_spec(path: str) -> ModelSpec:
    """Read and validate the spec at ``path``."""
    return build_spec(load_yaml(path), path)


def parse_spec(text: str, path: str = "<spec>") -> ModelSpec:
    """Validate a spec given as YAML text."""
    return build_spec(parse_yaml(text, path), path)


def build_spec(data: Any, path: str) -> ModelSpec:
    """The spec of YAML ``data`` (read from ``path``), built with a :class:`SpecBuilder`."""
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise _error(path, line_of(data, 1), f"the spec must be a mapping with input: and layers:, but the file holds {what}", ErrorKind.SYNTAX)
    for key in data:
        if key not in TOP_KEYS:
            raise _error(path, _key_line(data, key), f"unknown top-level key {key!r}{suggest(str(key), TOP_KEYS)}"
                         f" (a spec has {', '.join(TOP_KEYS)})", ErrorKind.UNKNOWN_KEY)
    if "input" not in data:
        raise _error(path, 1, "missing input: (the C, H, W of one sample, e.g. input: [3, 224, 224])", ErrorKind.SYNTAX)
    if "layers" not in data:
        raise _error(path, 1, "missing layers: (the list of layers)", ErrorKind.SYNTAX)
    builder = SpecBuilder(path, (), path=path)
    builder.expander = _YamlEntries(builder, data.get("blocks"), _key_line(data, "blocks"))
    input_shape = parse_input(data["input"], path, _key_line(data, "input"))
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise _error(path, _key_line(data, "layers"), "layers: must be a non-empty list", ErrorKind.SYNTAX)
    builder.add_list(layers)
    builder.name, builder.input_shape = str(data.get("name", path)), input_shape
    return builder.build()


def _error(path: str, line: int | None, text: str, kind: ErrorKind) -> SpecError:
    return SpecError(located(path, line, text), kind=kind, file=path, line=line, detail=text)


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
            raise SpecError(f"input: is a {huge}", kind=ErrorKind.TOO_LARGE)
        if shape:
            return shape
    except SpecError as error:
        kind = error.kind if error.kind is ErrorKind.TOO_LARGE else ErrorKind.INPUT_SHAPE
        raise _error(path, line, f"{error.message}; write input: [C, H, W], e.g. [3, 224, 224]", kind) from None
    raise _error(path, line, f"input: must be a list like [3, 224, 224], got {value!r}", ErrorKind.INPUT_SHAPE)


def _key_line(mapping: Any, key: Any) -> int | None:
    return key_line(mapping, key)


class _YamlEntries(Expander):
    """The expansion of YAML entries: each list item is read into an :class:`Entry` where it is
    expanded (errors come in the order of the file); ``blocks:`` are read and checked up front."""

    def __init__(self, graph: Any, blocks: Any, blocks_line: int | None) -> None:
        super().__init__(graph)
        self.blocks = self._read_blocks(blocks, blocks_line)

    def _read_blocks(self, blocks: Any, line: int | None) -> dict[str, Block]:
        if blocks is None:
            return {}
        if not isinstance(blocks, dict):
            raise self.fail("blocks: must map block names to {params: [...], layers: [...]}", line, kind=ErrorKind.BLOCK)
        out = {}
        for name, body in blocks.items():
            where = _key_line(blocks, name)
            block = Block(name, (), line=where)
            self.check_name(block)
            if isinstance(body, list):
                body = {"layers": body}
            if not isinstance(body, dict) or not isinstance(body.get("layers"), list) or not body["layers"]:
                raise self.fail(needs_layers(name), where, kind=ErrorKind.BLOCK)
            for key in body:
                if key not in BLOCK_KEYS:
                    raise self.fail(f"block {name!r} has an unknown key {key!r}{suggest(str(key), BLOCK_KEYS)}", _key_line(body, key),
                                    kind=ErrorKind.UNKNOWN_KEY)
            block = Block(name, body.get("params") or [], body["layers"], line=where, params_line=_key_line(body, "params"),
                          entries_line=_key_line(body, "layers"))
            self.check_block(block)
            out[name] = block
        return out

    def read(self, item: Any, line: int | None) -> Entry:
        """One list item — ``- ReLU``, ``- Conv2d(1, 16, 3)``, ``- Conv2d: {...}`` with its sibling
        keys, ``- basic: {planes: 64}`` — as an Entry (its layer type checked, its block found)."""
        if isinstance(item, str):
            if "(" in item:  # torch's call syntax: - Conv2d(1, 16, kernel_size=3)
                from .torchcall import parse_call

                try:
                    kind, kwargs = parse_call(item)
                except SpecError as error:
                    raise self.fail(error.message, line, cause=error) from None
                return Entry(kind, kwargs, line=line)
            return Entry(self.check_kind(item, line), line=line)
        if not isinstance(item, dict) or not item:
            raise self.fail(f"a layer entry must be a name like ReLU or a mapping like Conv2d: {{...}}, got {item!r}", line,
                            kind=ErrorKind.SYNTAX)
        kinds = [key for key in item if key not in ENTRY_KEYS]
        if not kinds:
            raise self.fail(f"this entry has {', '.join(map(str, item))} but no layer; add a layer like Conv2d: {{...}}", line,
                            kind=ErrorKind.SYNTAX)
        if len(kinds) > 1:
            raise self.fail(
                f"one entry holds one layer, found {', '.join(map(str, kinds))}; start each layer with its own '- '"
                f"{suggest(str(kinds[1]), ENTRY_KEYS) and ' (or a misspelt sibling key' + suggest(str(kinds[1]), ENTRY_KEYS)[1:] + ')'}",
                _key_line(item, kinds[1]),
                kind=ErrorKind.SYNTAX,
            )
        found = self.check_kind(kinds[0], _key_line(item, kinds[0]))
        lines = {key: _key_line(item, key) for key in ENTRY_KEYS if key in item}
        return Entry(found, item[kinds[0]], item.get("name"), item.get("from"), item.get("repeat"), item.get("trainable", True),
                     _key_line(item, kinds[0]), lines, item.get("tie"))

    def check_kind(self, name: Any, line: int | None) -> str | Block:
        if not isinstance(name, str):
            raise self.fail(f"{name!r} is not a layer name", line, kind=ErrorKind.UNKNOWN_LAYER)
        if name in self.blocks:
            return self.blocks[name]
        if module_of(name) is None:
            from .layers import layer_names

            what = "layer or block" if self.blocks else "layer"
            raise self.fail(f"unknown {what} {name!r}{suggest(name, [*layer_names(), *self.blocks])}", line, kind=ErrorKind.UNKNOWN_LAYER)
        return lookup(name)[0]

    def contents(self, block: Block) -> Iterator[tuple[Any, Any]]:
        for item in block.entries:
            kind = next((k for k in item if k not in ENTRY_KEYS), None) if isinstance(item, dict) else item
            yield self.blocks.get(kind) if isinstance(kind, str) else None, item.get("repeat", 1) if isinstance(item, dict) else 1

    def ahead_names(self, entries: Sequence[Any]) -> dict[str, int]:
        return {e["name"]: _key_line(e, "name") or 0 for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
