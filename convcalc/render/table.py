"""Tables: one column registry per result, drawn as aligned plain text or as a rich table.

On a terminal the rich table fits the width by leaving out low-priority columns (never by
cutting a number), says which it left out, and elides the middle of a very long table (a
note and ``--all`` bring it back) so that it costs about what the plain text costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .output import Output
from .text import one_line

#: Rows above which the rich table shows only its head and tail (``--all``: every row).
ELIDE_ABOVE = 300
HEAD_ROWS, TAIL_ROWS = 200, 50
#: Characters the rich table (SIMPLE_HEAD, no edge padding) puts between two columns (a pad on
#: each side and the blank divider), and around the whole table (the blank edges).
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
    widths = [max([len(c.title), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

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


def elided(count: int, out: Output) -> tuple[int, int] | None:
    """``(head, tail)`` rows to keep when a terminal table is too long to draw cheaply, else None."""
    if out.settings.all_rows or count <= ELIDE_ABOVE:
        return None
    return HEAD_ROWS, TAIL_ROWS


def rich_table(
    out: Output,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Any],
    *,
    styles: Sequence[str | None] | None = None,
    what: str = "rows",
) -> None:
    """``rows`` as a rich table on ``out``: fitted to the width, elided in the middle when long."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    console = out.console()
    cells = cells_of(columns, rows)
    styles = list(styles) if styles is not None else [None] * len(rows)
    if out.settings.columns:
        wanted = {name.lower() for name in out.settings.columns}
        shown = [i for i, c in enumerate(columns) if c.title.lower() in wanted or c.priority == 0]
    elif out.settings.wide:
        shown = list(range(len(columns)))
    else:
        shown = choose_columns(columns, cells, console.width)
    cut = elided(len(rows), out)
    table = Table(title=Text(title), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for i in shown:
        table.add_column(columns[i].title, justify="right" if columns[i].right else "left", no_wrap=True)
    keep = range(len(rows)) if cut is None else [*range(cut[0]), -1, *range(len(rows) - cut[1], len(rows))]
    for index in keep:
        if index == -1:  # where the rows were left out: a row of ⋮ (the note below says how many)
            table.add_row(*(Text("⋮") for _ in shown), style="dim")
            continue
        table.add_row(*(Text(cells[index][i]) for i in shown), style=styles[index])
    width = console.width
    needed = sum(max([len(columns[i].title), *(len(r[i]) for r in cells)]) for i in shown) + GAP * (len(shown) - 1) + EDGES
    if needed > width:  # --wide or --columns asked for more than fits: wrap lines, never cut
        console.width = needed
    console.print(table)
    if cut is not None:
        hidden = len(rows) - cut[0] - cut[1]
        console.print(Text(f"⋮ {hidden:,} {what} not shown (--all shows every row; piped output has all)"), style="dim")
    left_out = [columns[i].title for i in range(len(columns)) if i not in shown]
    if left_out:
        console.print(
            Text(f"Not shown at {width} columns: {', '.join(left_out)}. --wide shows every column; --columns A,B picks them."),
            style="dim",
        )


def rich_grid(out: Output, pairs: Sequence[tuple[str, str]]) -> None:
    """Key/value lines (totals) as a two-column grid, values right-aligned."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column(justify="right")
    for key, value in pairs:
        grid.add_row(Text(key), Text(value))
    out.console().print(grid)


def plain_pairs(out: Output, pairs: Sequence[tuple[str, str]]) -> None:
    """Key/value lines (totals) as ``key: value`` aligned after the longest key."""
    width = max(len(k) for k, _ in pairs)
    out.lines(f"{(key + ':').ljust(width + 1)} {value}" for key, value in pairs)
