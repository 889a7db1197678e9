"""``--values`` of conv, tconv and pool: the output numbers as a grid (with ``--explain``, each
sum written out first), or JSON with ``"values"``."""

from __future__ import annotations

from typing import Any

from ..sizes import show_size
from .output import JSON, Output


def trace(step: Any, result: Any, out: Output, *, square: bool, explain: bool = False) -> None:
    from .. import values

    if out.format == JSON:
        out.json({**step.as_dict(), "values": values.json_values(result.output), "values_shape": list(result.output.shape)})
        return
    if explain:
        out.line(f"{step.layer.type_name} {step.layer.describe()}")
        out.lines(f"  {line}" for line in [*step.explain, *result.explain])
        out.line(f"output {show_size(step.output, square)}:")
    out.lines(values.grid_lines(result.output))
