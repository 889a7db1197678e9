"""``convcalc examples``: each exercise with ✓/✗, its answer, and what was expected when they differ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .output import JSON, Output
from .text import one_line


def outcomes(results: Sequence[Any], out: Output) -> None:
    if out.format == JSON:
        out.json({"examples": [o.as_dict() for o in results], "ok": all(o.ok for o in results)})
        return
    for number, outcome in enumerate(results, start=1):
        mark = "✓" if outcome.ok else "✗"
        out.line(f"{mark} {number}. {one_line(str(outcome.question))}")
        out.line(f"    answer:   {one_line(str(outcome.answer))}")
        if not outcome.ok:
            out.line(f"    expected: {one_line(str(outcome.expected))}")
    passed = sum(o.ok for o in results)
    out.line(f"{passed} of {len(results)} agree")
