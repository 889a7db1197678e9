"""``convcalc model``: a Summary as a rich table (terminal), aligned plain text (pipes) or JSON.

One column registry feeds every format; nothing here computes shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..graph import Row, Summary, Totals, describe_shape
from .numbers import human_bytes, human_count
from .output import JSON, PLAIN, Output, warn
from .table import (
    Column,
    cells_of,
    plain_pairs,
    plain_table,
    terminal_pairs,
    terminal_table,
)
from .text import one_line


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


#: The model table. On a narrow terminal columns go by priority (0: always; then 1, 2, …):
#: shapes, params and MACs first, the receptive field and memory when there is room.
COLUMNS: list[Column] = [
    Column("#", lambda r: str(r.index), right=True, priority=6),
    Column("name", _name, user_text=True),
    Column("type", lambda r: r.type, priority=4),
    Column("input", lambda r: describe_shape(r.input_shape), priority=3),
    Column("output", lambda r: describe_shape(r.output_shape)),
    Column("kernel", lambda r: r.summary, priority=5),
    Column("params", lambda r: f"{r.params:,}" + ("" if r.trainable_params == r.params else " (frozen)"), right=True, priority=1),
    Column("MACs", lambda r: human_count(r.macs) if r.macs else "0", right=True, priority=2),
    Column("RF", _field("size"), right=True, priority=8),
    Column("jump", _field("jump"), right=True, priority=9),
    Column("start", _field("start"), right=True, priority=10),
    Column("memory", lambda r: human_bytes(r.output_bytes), right=True, priority=7),
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
    return f"{one_line(summary.name)}: input {describe_shape(summary.input_shape)} ({summary.dtype})"


def render_plain(summary: Summary, out: Any, *, totals: bool = True) -> None:
    """The table as aligned text (``out``: an Output, or any text stream)."""
    out = out if isinstance(out, Output) else Output(format=PLAIN, stream=out)
    out.line(header_line(summary))
    cells = cells_of(COLUMNS, summary.rows)
    out.lines(plain_table([c.title for c in COLUMNS], cells, [c.right for c in COLUMNS]))
    if totals:
        out.line()
        plain_pairs(out, total_lines(summary.totals))


def render_rich(summary: Summary, *, totals: bool = True, file: Any = None, out: Output | None = None) -> None:
    from .output import RICH

    out = out or Output(format=RICH, stream=file)
    styles = ["dim" if row.is_merge else None for row in summary.rows]
    terminal_table(out, header_line(summary), COLUMNS, summary.rows, styles=styles)
    if totals:
        terminal_pairs(out, total_lines(summary.totals))


def summary(summary: Summary, out: Output, *, totals: bool = True) -> None:
    """A model's summary in ``out``'s format; layer warnings on stderr."""
    if out.format == JSON:
        out.json(summary.as_dict())
        return
    render_plain(summary, out, totals=totals) if out.format == PLAIN else render_rich(summary, totals=totals, out=out)
    warn(layer_warnings(summary.rows, summary.path))


def partial(summary: Summary, error: dict[str, Any], out: Output) -> None:
    """A model that failed part-way: the rows before the failing layer (JSON: with the error)."""
    if out.format == JSON:
        out.json({"error": error, **summary.as_dict()})
    elif summary.rows:
        render_plain(summary, out, totals=False) if out.format == PLAIN else render_rich(summary, totals=False, out=out)


def layer_warnings(rows: Sequence[Any], path: str = "") -> list[str]:
    """Each distinct warning once, prefixed with ``file:line`` of the rows it concerns, as errors
    name them, and the row's name where it says more than a position (``layer2.0.downsample.0``)."""
    where: dict[str, list[str]] = {}
    for row in rows:
        for text in row.warnings:
            where.setdefault(text, []).append(_where(row, path))
    lines = []
    for text, places in where.items():
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        lines.append(f"{shown}: {text}")
    return lines


def _where(row: Any, path: str) -> str:
    """``net.yaml:9`` (a positional row), ``net.yaml:12 (layer1.0.conv1)``, or the name alone without a line."""
    name = one_line(row.name)
    located = f"{path}:{row.line}" if path and row.line else ""
    if not located:
        return name
    return located if name.isdigit() else f"{located} ({name})"


def size_pattern(sizes: Sequence[int]) -> str:
    """``" (the multiples of 16)"`` when the sizes are exactly that, else nothing."""
    steps = {b - a for a, b in zip(sizes, sizes[1:])}
    if len(steps) == 1 and (step := steps.pop()) > 1 and sizes[0] % step == 0:
        return f" (the multiples of {step})"
    return ""


def found_sizes(sizes: Sequence[int], low: int, high: int, out: Output) -> None:
    """``--find-sizes``: JSON, one size per line for scripts, or a sentence and a wrapped list."""
    from .output import stderr_line

    if out.format == JSON:
        out.json({"sizes": list(sizes)})
    elif not sizes:
        stderr_line(f"no size in {low}..{high} fits")
    elif out.format == PLAIN:
        out.lines(map(str, sizes))
    else:
        import textwrap

        out.line(f"{len(sizes)} of {high - low + 1} sizes in {low}..{high} fit{size_pattern(sizes)}:")
        out.lines(textwrap.wrap(" ".join(map(str, sizes)), width=100))


def model_list(listed: Sequence[tuple[str, str]], out: Output) -> None:
    """``model --list``: the packaged example models, one line each."""
    if out.format == JSON:
        out.json({"models": [{"name": stem, "description": text} for stem, text in listed]})
        return
    width = max(len(stem) for stem, _ in listed)
    out.lines(f"{stem:<{width}}  {text}" for stem, text in listed)
