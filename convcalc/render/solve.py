"""``convcalc solve``'s answers: the settings that turn one size into another, and TensorFlow's
``padding='same'`` in PyTorch. Text through :class:`~convcalc.render.output.Output` (ASCII
spellings where the stream cannot encode ``→``, ``–``, ``×``, ``…``), JSON through its one dumper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .output import Output


def solutions(out: Output, *, heading: str, lines: Sequence[str], more: str | None) -> None:
    """The heading, the numbered torch calls, the "… and N more" line, and what checked them."""
    out.line(heading)
    width = len(str(len(lines)))
    out.lines(f"{number:>{width}}. {line}" for number, line in enumerate(lines, start=1))
    if more:
        out.line(more)
    out.line("each checked with convcalc's engine (torch's rules)")


def tf_same(out: Output, *, axes: Sequence[str], heading: str, lines: Sequence[str], notes: Sequence[str]) -> None:
    """One line per axis (how TensorFlow pads it), then the PyTorch layers that do the same."""
    out.lines(axes)
    out.line(heading)
    out.lines(f"  {line}" for line in lines)
    out.lines(f"  note: {note}" for note in notes)


def as_json(out: Output, data: dict[str, Any]) -> None:
    out.json(data)
