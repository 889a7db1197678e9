"""The calculators' answers: ``conv``/``tconv``/``pool`` (one Step) and ``chain`` (several).

Plain text is also what a terminal shows (the answer is one line; nothing here imports rich).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..sizes import format_size, show_size
from .output import JSON, Output, warn

if TYPE_CHECKING:
    from ..calc import Step


def _explained(step: Step, out: Output, square: bool, *, heading: str) -> None:
    out.line(heading)
    out.lines(f"  {line}" for line in step.explain)
    out.lines(f"  note: {line}" for line in step.warnings)


def answer(step: Step, out: Output, *, square: bool, explain: bool = False, channels_first: bool = False, notes: Sequence[str] = ()) -> None:
    """One layer: the output size (warnings on stderr), or the worked formula with ``explain``.

    ``channels_first``: the input was written C×H×W, and the answer is too. ``notes``: warnings
    about the input already said on stderr, repeated in the JSON. Channels and parameters are
    shown (JSON, ``explain``) when ``step.in_channels`` is set.
    """
    if out.format == JSON:
        data = step.as_dict()
        if notes:
            data["warnings"] = [*notes, *data["warnings"]]
        out.json(data)
        return

    def show(sizes: tuple[int, ...], channels: int | None) -> str:
        return f"{channels}x{format_size(sizes)}" if channels_first else show_size(sizes, square)

    if explain:
        _explained(step, out, square, heading=f"{step.layer.type_name} {step.layer.describe()}")
        if step.in_channels is not None and step.params is not None:
            out.line(f"  channels {step.in_channels} → {step.channels}; params {step.params:,}; MACs {step.macs:,}")
        out.line(f"{show(step.input, step.in_channels)} → {show(step.output, step.channels)}")
        return
    warn(step.warnings)
    out.line(show(step.output, step.channels))


def chain(
    steps: Sequence[Step], spatial: Sequence[int], out: Output, *, square: bool, explain: bool = False,
    channels: int | None = None, notes: Sequence[str] = (),
) -> None:
    """Several layers: ``28 → 24 → 12``, or ``1x28x28 → 16x26x26 → …`` once channels are known,
    then a ``params:`` line when some layer's count is known; with ``explain`` each step's formula first."""
    if out.format == JSON:
        data: dict[str, object] = {"input": list(spatial), "output": list(steps[-1].output)}
        if channels is not None:
            data["input_channels"] = channels
        if notes:
            data["warnings"] = list(notes)
        out.json({**data, "steps": [step.as_dict() for step in steps]})
        return
    first = show_size(tuple(spatial), square) if channels is None else f"{channels}x{format_size(tuple(spatial))}"
    sizes = [first] + [step_size(step, square) for step in steps]
    if explain:
        for before, step in zip(sizes, steps):
            heading = f"{step.layer.type_name} {step.layer.describe()}".rstrip() + f": {before} → {step_size(step, square)}"
            _explained(step, out, square, heading=heading)
            if step.params:
                out.line(f"  params {step.params:,}; MACs {step.macs:,}")
    else:
        warn([line for step in steps for line in step.warnings])
    out.line(" → ".join(sizes))
    line = params_line(steps)
    if line:
        out.line(line)


def step_size(step: Step, square: bool) -> str:
    """A chain step's output: ``3136`` (flat), ``16x26x26`` (channels known) or ``26`` (spatial)."""
    if step.flat:
        return str(step.output[0])
    if step.out_channels is not None:
        return f"{step.out_channels}x{format_size(step.output)}"
    return show_size(step.output, square)


def params_line(steps: Sequence[Step]) -> str:
    """``params: 31,530 (Conv2d 160, Linear 31,370)`` when some layer's count is known, else ``""``."""
    from ..calc import takes

    known = [step for step in steps if step.params]
    if not known:
        return ""
    unknown = [
        f"{step.layer.type_name} at step {number}"
        for number, step in enumerate(steps, start=1)
        if step.params is None and takes(step.layer.type_name, "in_channels")
    ]
    text = f"params: {sum(step.params or 0 for step in known):,} ({', '.join(f'{step.layer.type_name} {step.params:,}' for step in known)})"
    if unknown:
        text += f"; not counted: {', '.join(unknown)} (its input channels are unknown: give --in-channels)"
    return text
