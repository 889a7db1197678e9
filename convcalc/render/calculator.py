"""The calculators' answers: ``conv``/``tconv``/``pool`` (one Step) and ``chain`` (several).

Plain text is also what a terminal shows (the answer is one line; nothing here imports rich).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..sizes import show_size
from .output import JSON, Output, warn

if TYPE_CHECKING:
    from ..calc import Step


def _explained(step: Step, out: Output, square: bool, *, heading: str) -> None:
    out.line(heading)
    out.lines(f"  {line}" for line in step.explain)
    out.lines(f"  note: {line}" for line in step.warnings)


def answer(step: Step, out: Output, *, square: bool, explain: bool = False) -> None:
    """One layer: the output size (warnings on stderr), or the worked formula with ``explain``."""
    if out.format == JSON:
        out.json(step.as_dict())
        return
    if explain:
        _explained(step, out, square, heading=f"{step.layer.type_name} {step.layer.describe()}")
        out.line(f"{show_size(step.input, square)} → {show_size(step.output, square)}")
        return
    warn(step.warnings)
    out.line(show_size(step.output, square))


def chain(steps: Sequence[Step], spatial: Sequence[int], out: Output, *, square: bool, explain: bool = False) -> None:
    """Several layers: ``28 → 24 → 12``; with ``explain`` each step's formula first."""
    if out.format == JSON:
        out.json({"input": list(spatial), "output": list(steps[-1].output), "steps": [step.as_dict() for step in steps]})
        return
    if explain:
        for step in steps:
            heading = f"{step.layer.type_name} {step.layer.describe()}: {show_size(step.input, square)} → {show_size(step.output, square)}"
            _explained(step, out, square, heading=heading)
    else:
        warn([line for step in steps for line in step.warnings])
    out.line(" → ".join([show_size(tuple(spatial), square)] + [show_size(step.output, square) for step in steps]))
