"""``--values`` of conv, tconv and pool: read the matrices, let ``convcalc.values`` (over the
engine's layer) compute the numbers, print them as text or JSON."""

from __future__ import annotations

from typing import Any

import click

from .. import values
from ..cli import remember_json
from ..render import values as render
from ..render.output import Output
from ..sizes import format_size
from .calculator import command_line_values, spatial_size


def run_trace(ctx: click.Context, kind: str, size: tuple[int, ...] | None, dims: int | None, explain: bool, as_json: bool, kwargs: dict[str, Any], text: str, weight_text: str | None, bias_text: str | None) -> None:
    remember_json(ctx, as_json)
    if kind in ("conv", "tconv") and weight_text is None:
        raise click.UsageError("--values needs --weight (the kernel) for a convolution", ctx)
    with command_line_values():  # a malformed matrix, options that contradict it: exit 2; geometry (ShapeError): 1
        x = values.parse_tensor(text, "--values")
        weight = values.parse_tensor(weight_text, "--weight") if weight_text is not None else None
        bias = values.parse_tensor(bias_text, "--bias", scalar=True) if bias_text is not None else None
        kwargs = {key: value for key, value in kwargs.items() if key != "bias"}  # --bias gives the values
        axes = values.spatial_dims(x, dims, size)
        spatial = spatial_size(size, axes)[0] if size is not None else None
        step, trace = values.run(kind, x, weight=weight, bias=bias, dims=axes, size=spatial, written=size and format_size(size), explain=explain, **kwargs)
    square = size is not None and len(size) == 1 or size is None and axes > 1 and len(set(step.input)) == 1
    render.trace(step, trace, Output.for_stdout(as_json=as_json), square=square, explain=explain)
