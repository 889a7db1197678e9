"""Safe YAML reading that keeps line numbers, with bounds on size, nesting and alias expansion.

Only YAML's safe schema is understood (``!!python/...`` tags are errors). Mappings and lists
come back as :class:`YDict` / :class:`YList`, which remember the line of every key and item.
"""

from __future__ import annotations

import gc
import re
from typing import Any

from .errors import ErrorKind, InputError, SpecError

SYNTAX, TOO_LARGE = ErrorKind.SYNTAX, ErrorKind.TOO_LARGE
from .numbers import DECIMAL_HINT, WHOLE_HINT, decimal, is_decimal, shorten

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_VALUES = 2_000_000  # scalars, lists and mappings after alias expansion
MAX_DEPTH = 100
MAX_LIST_ITEMS = 100_000  # checked before parsing, on lines that start a list item
#: Checked before parsing: the marks that start a YAML value (',' '[' '{' ':' '- ' and line
#: breaks), an upper bound of the values a file holds without aliases. 100,000 layers written
#: like benchmarks/model.py's have about 550,000.
MAX_MARKS = 1_000_000
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_STR = "tag:yaml.org,2002:str"


class YDict(dict):  # type: ignore[type-arg]
    """A mapping from YAML, with ``line`` (1-based) and ``key_lines`` {key: line}."""

    line: int = 0
    key_lines: dict[Any, int]


class YList(list):  # type: ignore[type-arg]
    """A list from YAML, with ``line`` and ``item_lines`` (one per item)."""

    line: int = 0
    item_lines: list[int]


def line_of(value: Any, default: int | None = None) -> int | None:
    return getattr(value, "line", None) or default


def read_text(path: str, *, what: str = "YAML file") -> str:
    """The text of ``path`` (``-``: stdin), at most MAX_FILE_BYTES; an InputError (exit 2) if unreadable."""
    from .reader import read_bounded

    data = read_bounded(path, MAX_FILE_BYTES, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})", file=path) from None


def load_yaml(path: str) -> Any:
    """Parse the YAML file at ``path`` safely; errors carry ``file:line``."""
    return parse_yaml(read_text(path), path)


def check_counts(text: str, path: str) -> None:
    """Refuse, before parsing, a text with too many list items or values (linear, C-speed counts)."""
    items = len(re.findall(r"(?m)^[ \t]*- ", text))
    if items > MAX_LIST_ITEMS:
        raise SpecError(f"{path} has {items:,} list items; convcalc reads at most {MAX_LIST_ITEMS:,}", file=path, kind=TOO_LARGE)
    marks = sum(text.count(mark) for mark in (",", "[", "{", ":", "- ", "\n"))
    if marks > MAX_MARKS:
        raise SpecError(
            f"{path} has {marks:,} YAML values or separators (commas, brackets, colons, '- ' and lines, counted"
            f" before parsing); convcalc reads at most {MAX_MARKS:,}",
            file=path,
            kind=TOO_LARGE,
        )


def parse_yaml(text: str, path: str = "<spec>") -> Any:
    import yaml

    check_counts(text, path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    enabled = gc.isenabled()
    gc.disable()  # composing allocates many small objects; the cycle collector makes it quadratic
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = error.problem or error.context or "invalid YAML"
        raise SpecError(f"{where}: YAML syntax error: {problem}", file=path, line=mark.line + 1 if mark else None, kind=SYNTAX) from None
    except yaml.YAMLError as error:  # e.g. a control character: its message spans lines
        raise SpecError(f"{path}: YAML error: {' '.join(str(error).split())}", file=path, kind=SYNTAX) from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply", file=path, kind=TOO_LARGE) from None
    finally:
        if enabled:
            gc.enable()
    if node is None:
        raise SpecError(f"{path} is empty", file=path, kind=SYNTAX)
    if "*" in text:
        _check_expansion(node, path)
    gc.disable()  # building keeps every object alive: collecting meanwhile only costs time
    try:
        return _TreeBuilder(path, aliases="*" in text).build(node)
    finally:
        if enabled:
            gc.enable()


def _check_expansion(root: Any, path: str) -> None:
    """Refuse an alias bomb before building anything: the number of values the tree expands to,
    counted once per distinct node (an alias shares its node), in time linear in the file."""
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # expanded, not finished: the path from the root
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if isinstance(node, yaml.nodes.ScalarNode):
            sizes[key] = 1
            continue
        children = node.value if isinstance(node, yaml.nodes.SequenceNode) else [part for pair in node.value for part in pair]
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > MAX_VALUES:
                line = node.start_mark.line + 1
                raise SpecError(
                    f"{path}:{line}: the file expands to more than {MAX_VALUES:,} values (its aliases, *name, repeat"
                    " what they name: an alias bomb?)",
                    file=path,
                    line=line,
                    kind=TOO_LARGE,
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            line = node.start_mark.line + 1
            raise SpecError(f"{path}:{line}: a YAML alias refers to itself", file=path, line=line, kind=SYNTAX)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


class _TreeBuilder:
    """Turns a composed node tree into YDict/YList/scalars, counting what aliases expand to."""

    def __init__(self, path: str, *, aliases: bool = True) -> None:
        import yaml

        self.path = path
        self.aliases = aliases
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()
        self.yaml = yaml
        self.scalars: dict[tuple[str, str, Any], Any] = {}  # scalars repeat: each distinct one is read once

    def build(self, node: Any, depth: int = 0, active: frozenset[int] = frozenset()) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_VALUES:
            raise SpecError(
                f"{self.path}:{line}: the file expands to more than {MAX_VALUES:,} values"
                + (" (its aliases, *name, repeat what they name: an alias bomb?)" if self.aliases else ""),
                file=self.path,
                line=line,
                kind=TOO_LARGE,
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"{self.path}:{line}: nested more than {MAX_DEPTH} levels deep", file=self.path, line=line, kind=TOO_LARGE)
        if id(node) in active:
            raise SpecError(f"{self.path}:{line}: a YAML alias refers to itself", file=self.path, line=line, kind=SYNTAX)
        nodes = self.yaml.nodes
        if isinstance(node, nodes.ScalarNode):
            return self._scalar(node, line)
        inner = active | {id(node)}
        if isinstance(node, nodes.SequenceNode):
            self._check_tag(node, "tag:yaml.org,2002:seq", line)
            out = YList(self.build(item, depth + 1, inner) for item in node.value)
            out.line = line
            out.item_lines = [item.start_mark.line + 1 for item in node.value]
            return out
        self._check_tag(node, "tag:yaml.org,2002:map", line)
        mapping = YDict()
        mapping.line = line
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(f"{self.path}:{line}: YAML merge keys (<<) are not supported", file=self.path, line=line, kind=SYNTAX)
            key = self.build(key_node, depth + 1, inner)
            if isinstance(key, (list, dict)):
                raise SpecError(f"{self.path}:{key_node.start_mark.line + 1}: a key must be a plain value", file=self.path, line=line, kind=SYNTAX)
            if key in mapping:
                raise SpecError(
                    f"{self.path}:{key_node.start_mark.line + 1}: key {key!r} appears twice in one mapping",
                    file=self.path,
                    line=key_node.start_mark.line + 1,
                    kind=SYNTAX,
                )
            mapping[key] = self.build(value_node, depth + 1, inner)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    def _check_tag(self, node: Any, wanted: str, line: int) -> None:
        if node.tag != wanted:
            raise SpecError(
                f"{self.path}:{line}: the tag {node.tag!r} is not allowed (convcalc reads plain YAML only)",
                file=self.path,
                line=line,
                kind=SYNTAX,
            )

    def _scalar(self, node: Any, line: int) -> Any:
        key = (node.tag, node.value, node.style)
        if key in self.scalars:
            return self.scalars[key]
        value = self._read_scalar(node, line)
        if value is None or isinstance(value, (str, int, float, bool)):  # immutable: safe to share
            self.scalars[key] = value
        return value

    def _read_scalar(self, node: Any, line: int) -> Any:
        if not node.tag.startswith("tag:yaml.org,2002:") or node.tag.endswith(("binary", "timestamp", "set", "omap", "pairs")):
            raise SpecError(
                f"{self.path}:{line}: the tag {node.tag!r} is not allowed (convcalc reads plain YAML only)",
                file=self.path,
                line=line,
                kind=SYNTAX,
            )
        text = node.value
        if node.tag in _NUMBER_TAGS or (node.tag == _STR and not node.style and is_decimal(text)):
            if not is_decimal(text):  # YAML 1.1 reads 1_1, 0x1F, 017, 1:30 and .inf as numbers; convcalc does not
                hint = WHOLE_HINT if node.tag == _NUMBER_TAGS[0] else DECIMAL_HINT
                raise SpecError(f"{self.path}:{line}: {shorten(text)!r} is not a number convcalc reads: {hint}", file=self.path, line=line)
            return decimal(text)  # the one rule of numbers.py (YAML 1.1 would leave 1e-3 a string)
        try:
            return self.constructor.construct_object(node, deep=True)
        except self.yaml.YAMLError as error:
            raise SpecError(f"{self.path}:{line}: {error}", file=self.path, line=line, kind=SYNTAX) from None
