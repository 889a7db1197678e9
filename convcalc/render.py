"""Render a Summary as a rich table (terminal), aligned plain text (pipes) or JSON.

One column registry feeds every renderer; nothing here computes shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .graph import Row, Summary, Totals, describe_shape


@dataclass(frozen=True)
class Column:
    """A table column: its title, how to draw one row's cell, and its alignment."""

    title: str
    cell: Callable[[Any], str]  # a summary Row here; verify's table passes its LayerCheck rows
    right: bool = False


def _name(row: Row) -> str:
    """Indented by the block path: ``layer2.0.conv1`` sits two levels in."""
    return "  " * row.name.count(".") + row.name


def _field(part: str) -> Callable[[Row], str]:
    """A receptive-field cell (size, jump or start), one value per axis when they differ."""

    def cell(row: Row) -> str:
        rf = row.receptive_field
        if rf is None:
            return "n/a"
        values = [getattr(axis, part) for axis in rf]
        text = [f"{v:g}" for v in values]
        return text[0] if len(set(text)) == 1 else "x".join(text)

    return cell


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"  # pragma: no cover


def human_count(count: int) -> str:
    """``123456789`` → ``"123.46M"``."""
    for value, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= value:
            return f"{count / value:.2f}{unit}"
    return str(count)


COLUMNS: list[Column] = [
    Column("#", lambda r: str(r.index), right=True),
    Column("name", _name),
    Column("type", lambda r: r.type),
    Column("input", lambda r: describe_shape(r.input_shape)),
    Column("output", lambda r: describe_shape(r.output_shape)),
    Column("kernel", lambda r: r.summary),
    Column("params", lambda r: f"{r.params:,}" + ("" if r.trainable_params == r.params else " (frozen)"), right=True),
    Column("MACs", lambda r: human_count(r.macs) if r.macs else "0", right=True),
    Column("RF", _field("size"), right=True),
    Column("jump", _field("jump"), right=True),
    Column("start", _field("start"), right=True),
    Column("memory", lambda r: human_bytes(r.output_bytes), right=True),
]


def total_lines(totals: Totals) -> list[tuple[str, str]]:
    """The totals block: parameters, compute, and torchsummary's four memory lines."""
    return [
        ("Total params", f"{totals.params:,}"),
        ("Trainable params", f"{totals.trainable_params:,}"),
        ("Non-trainable params", f"{totals.non_trainable_params:,}"),
        ("MACs", f"{totals.macs:,} ({human_count(totals.macs)})"),
        ("FLOPs", f"{totals.flops:,} ({human_count(totals.flops)})"),
        ("Input size (MB)", f"{totals.input_mb:.2f}"),
        ("Forward/backward pass size (MB)", f"{totals.forward_backward_mb:.2f}"),
        ("Params size (MB)", f"{totals.params_mb:.2f}"),
        ("Estimated Total Size (MB)", f"{totals.total_mb:.2f}"),
    ]


def header_line(summary: Summary) -> str:
    return f"{summary.name}: input {describe_shape(summary.input_shape)} ({summary.dtype})"


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Aligned columns separated by two spaces; no colour, no box drawing."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return "  ".join(parts).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def render_plain(summary: Summary, out: TextIO, *, totals: bool = True) -> None:
    out.write(header_line(summary) + "\n")
    cells = [[c.cell(row) for c in COLUMNS] for row in summary.rows]
    for line in plain_table([c.title for c in COLUMNS], cells, [c.right for c in COLUMNS]):
        out.write(line + "\n")
    if totals:
        out.write("\n")
        width = max(len(k) for k, _ in total_lines(summary.totals))
        for key, value in total_lines(summary.totals):
            out.write(f"{(key + ':').ljust(width + 1)} {value}\n")


def render_rich(summary: Summary, *, totals: bool = True, file: TextIO | None = None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file)
    table = Table(title=header_line(summary), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in COLUMNS:
        table.add_column(column.title, justify="right" if column.right else "left", no_wrap=True)
    for row in summary.rows:
        table.add_row(*(c.cell(row) for c in COLUMNS), style="dim" if row.is_merge else None)
    console.print(table)
    if totals:
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column(justify="right")
        for key, value in total_lines(summary.totals):
            grid.add_row(key, value)
        console.print(grid)


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
