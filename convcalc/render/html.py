"""A result as one HTML fragment for notebooks (``_repr_html_``): a title, the table, key/value lines.

Reads the same column registries as the plain and terminal tables; every cell is escaped, so a
module or spec name is shown as text, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .table import Column, cells_of

_CELL = "padding:0 .6em;white-space:nowrap;"


def table_html(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Any],
    pairs: Sequence[tuple[str, str]],
    notes: Sequence[str] = (),
) -> str:
    """``<div>`` with the title, the rows under the columns' titles, then ``pairs`` and ``notes``."""

    def cell(tag: str, text: str, right: bool) -> str:
        align = "text-align:right;" if right else "text-align:left;"
        return f'<{tag} style="{_CELL}{align}">{escape(text)}</{tag}>'

    head = "".join(cell("th", c.title, c.right) for c in columns)
    body = "".join("<tr>" + "".join(cell("td", text, c.right) for c, text in zip(columns, row)) + "</tr>" for row in cells_of(columns, rows))
    totals = "".join(f"<tr>{cell('td', key, False)}{cell('td', value, True)}</tr>" for key, value in pairs)
    parts = [
        '<div class="convcalc-summary">',
        f"<p><b>{escape(title)}</b></p>",
        f'<table style="border-collapse:collapse;font-family:monospace;"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
        f'<table style="border-collapse:collapse;font-family:monospace;margin-top:.5em;"><tbody>{totals}</tbody></table>',
    ]
    parts.extend(f"<p>{escape(note)}</p>" for note in notes)
    parts.append("</div>")
    return "".join(parts)
