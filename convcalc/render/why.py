"""``convcalc why``: a torch error explained — two to five plain lines, or the JSON object.

Plain text is also what a terminal shows (a few sentences; nothing here imports rich).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .output import JSON, Output, stderr_line
from .text import one_line

if TYPE_CHECKING:
    from ..why import Explanation


def explanation(result: Explanation, out: Output, *, explain: bool = False, model: str | None = None) -> None:
    """What happened, why (``explain``: the rule with the numbers), the fix; where in ``model`` it fails."""
    if out.format == JSON:
        data = result.as_dict()
        if model is not None:
            data["model"] = model
        out.json(data)
        return
    out.lines(result.lines(explain=explain))
    if model is not None:
        out.line(f"in the model: {one_line(model)}")


def note(text: str) -> None:
    """A side remark on stderr (a cut input)."""
    stderr_line(f"note: {one_line(text)}")
