"""Safe YAML reading that keeps line numbers, with bounds on size, nesting and alias expansion.

Only YAML's safe schema is understood (``!!python/...`` tags are errors). Mappings and lists
come back as :class:`YDict` / :class:`YList`, which remember the line of every key and item.
"""

from __future__ import annotations

import gc
import os
import re
from typing import Any

from .errors import SpecError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_VALUES = 2_000_000  # scalars, lists and mappings after alias expansion
MAX_DEPTH = 100
MAX_LIST_ITEMS = 100_000  # checked before parsing, on lines that start a list item


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


def read_text(path: str) -> str:
    """The file's text, or a one-line SpecError for a missing file, a folder, a huge file."""
    if os.path.isdir(path):
        raise SpecError(f"{path} is a directory, not a YAML file", file=path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise SpecError(f"{path} is {size / 2**20:.1f} MiB; convcalc reads specs up to {MAX_FILE_BYTES // 2**20} MiB", file=path)
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file", file=path) from None
    except UnicodeDecodeError as error:
        raise SpecError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})", file=path) from None
    except OSError as error:
        raise SpecError(f"{path}: {error.strerror}", file=path) from None


def load_yaml(path: str) -> Any:
    """Parse the YAML file at ``path`` safely; errors carry ``file:line``."""
    return parse_yaml(read_text(path), path)


def parse_yaml(text: str, path: str = "<spec>") -> Any:
    import yaml

    items = len(re.findall(r"(?m)^[ \t]*- ", text))
    if items > MAX_LIST_ITEMS:
        raise SpecError(f"{path} has {items:,} list items; convcalc reads at most {MAX_LIST_ITEMS:,}", file=path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    enabled = gc.isenabled()
    gc.disable()  # composing allocates many small objects; the cycle collector makes it quadratic
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = error.problem or error.context or "invalid YAML"
        raise SpecError(f"{where}: YAML syntax error: {problem}", file=path, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: YAML error: {error}", file=path) from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply", file=path) from None
    finally:
        if enabled:
            gc.enable()
    if node is None:
        raise SpecError(f"{path} is empty", file=path)
    return _TreeBuilder(path).build(node)


class _TreeBuilder:
    """Turns a composed node tree into YDict/YList/scalars, counting what aliases expand to."""

    def __init__(self, path: str) -> None:
        import yaml

        self.path = path
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()
        self.yaml = yaml

    def build(self, node: Any, depth: int = 0, active: frozenset[int] = frozenset()) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_VALUES:
            raise SpecError(
                f"{self.path}:{line}: the file expands to more than {MAX_VALUES:,} values (an alias bomb?)",
                file=self.path,
                line=line,
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"{self.path}:{line}: nested more than {MAX_DEPTH} levels deep", file=self.path, line=line)
        if id(node) in active:
            raise SpecError(f"{self.path}:{line}: a YAML alias refers to itself", file=self.path, line=line)
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
                raise SpecError(f"{self.path}:{line}: YAML merge keys (<<) are not supported", file=self.path, line=line)
            key = self.build(key_node, depth + 1, inner)
            if isinstance(key, (list, dict)):
                raise SpecError(f"{self.path}:{key_node.start_mark.line + 1}: a key must be a plain value", file=self.path, line=line)
            if key in mapping:
                raise SpecError(
                    f"{self.path}:{key_node.start_mark.line + 1}: key {key!r} appears twice in one mapping",
                    file=self.path,
                    line=key_node.start_mark.line + 1,
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
            )

    def _scalar(self, node: Any, line: int) -> Any:
        if not node.tag.startswith("tag:yaml.org,2002:") or node.tag.endswith(("binary", "timestamp", "set", "omap", "pairs")):
            raise SpecError(
                f"{self.path}:{line}: the tag {node.tag!r} is not allowed (convcalc reads plain YAML only)",
                file=self.path,
                line=line,
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except self.yaml.YAMLError as error:
            raise SpecError(f"{self.path}:{line}: {error}", file=self.path, line=line) from None
