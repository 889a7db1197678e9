"""Tables: one column registry per result, drawn as aligned plain text or as a rich table.

On a terminal the table fits the width by leaving out low-priority columns (never by cutting
a number) and says which it left out; it is laid out in one pass, so that it costs about what
the plain text costs however long it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .output import Output
from .text import one_line

#: Characters the terminal table puts between two columns, and around the whole table.
GAP, EDGES = 3, 2


@dataclass(frozen=True)
class Column:
    """A table column: its title, how to draw one row's cell, its alignment, and its priority
    when the terminal is too narrow for every column (0 is always shown; higher goes first)."""

    title: str
    cell: Callable[[Any], str]
    right: bool = False
    priority: int = 0
    user_text: bool = False  # the cell holds text from the user (names): shown escaped


def cells_of(columns: Sequence[Column], rows: Sequence[Any]) -> list[list[str]]:
    return [[one_line(c.cell(r)) if c.user_text else c.cell(r) for c in columns] for r in rows]


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Aligned columns separated by two spaces; no colour, no box drawing."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return "  ".join(parts).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def choose_columns(columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int) -> list[int]:
    """Indices of the columns to show in ``width`` characters: all if they fit, else the
    highest-priority ones (priority 0 always), in their table order."""
    widths = [max([cell_width(c.title), *(cell_width(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    def total(chosen: Sequence[int]) -> int:
        return sum(widths[i] for i in chosen) + GAP * (len(chosen) - 1) + EDGES

    everything = list(range(len(columns)))
    if total(everything) <= width:
        return everything
    chosen = [i for i, c in enumerate(columns) if c.priority == 0]
    by_priority = sorted((i for i, c in enumerate(columns) if c.priority > 0), key=lambda i: columns[i].priority)
    for i in by_priority:
        if total(sorted([*chosen, i])) <= width:
            chosen.append(i)
    return sorted(chosen)


def cell_width(text: str) -> int:
    """Columns a string takes on a terminal (East Asian wide characters take two)."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - cell_width(text))
    return fill + text if right else text + fill


def terminal_table(
    out: Output,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Any],
    *,
    styles: Sequence[str | None] | None = None,
) -> None:
    """``rows`` as the terminal table: a title, a bold header over a rule, aligned rows.

    It looks like rich's SIMPLE_HEAD table but is laid out here, in one pass like the plain
    text, so that a table of 100,000 rows costs what the plain text costs. It fits ``out``'s
    width by leaving out low-priority columns (``--wide``: every column; ``--columns``: these),
    never by cutting a cell, and says which columns it left out.
    """
    cells = cells_of(columns, rows)
    width = out.terminal_width()
    chosen = out.settings.columns
    if chosen:
        wanted = {name.lower() for name in chosen}
        shown = [i for i, c in enumerate(columns) if c.title.lower() in wanted or c.priority == 0]
    elif out.settings.wide:
        shown = list(range(len(columns)))
    else:
        shown = choose_columns(columns, cells, width)
    widths = {i: max([cell_width(columns[i].title), *(cell_width(r[i]) for r in cells)]) for i in shown}
    gap = " " * GAP

    def line(values: Sequence[str], right: Sequence[bool]) -> str:
        return (" " + gap.join(_pad(v, widths[i], r) for i, v, r in zip(shown, values, right))).rstrip()

    aligned = [columns[i].right for i in shown]
    total = sum(widths.values()) + GAP * (len(shown) - 1) + EDGES
    styles = styles if styles is not None else [None] * len(rows)
    import textwrap

    text = [out.styled(part, "italic") for part in (textwrap.wrap(title, width) or [""])] + [""]
    text.append(out.styled(line([columns[i].title for i in shown], aligned), "bold"))
    text.append(" " + "─" * (total - 2))
    text.extend(out.styled(line([row[i] for i in shown], aligned), style) for row, style in zip(cells, styles))
    text.append("")
    left_out = [columns[i].title for i in range(len(columns)) if i not in shown]
    if left_out:
        note = f"Not shown at {width} columns: {', '.join(left_out)}. --wide shows every column; --columns A,B picks them."
        text.extend(out.styled(part, "dim") for part in textwrap.wrap(note, width))
    out.lines(text)


def terminal_pairs(out: Output, pairs: Sequence[tuple[str, str]]) -> None:
    """Key/value lines (totals) as two columns, values right-aligned."""
    key_width = max(cell_width(k) for k, _ in pairs)
    value_width = max(cell_width(v) for _, v in pairs)
    out.lines(f"{_pad(key, key_width, False)}  {_pad(value, value_width, True)}" for key, value in pairs)


def plain_pairs(out: Output, pairs: Sequence[tuple[str, str]]) -> None:
    """Key/value lines (totals) as ``key: value`` aligned after the longest key."""
    width = max(len(k) for k, _ in pairs)
    out.lines(f"{(key + ':').ljust(width + 1)} {value}" for key, value in pairs)
