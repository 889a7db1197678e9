"""``convcalc verify``: the report as convcalc's table (terminal or plain), torchsummary's
classic layout, or JSON; the differences, the verdict line, and convcalc's own verdict when
torch never ran."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .model import layer_warnings, partial, total_lines
from .numbers import human_count
from .output import JSON, PLAIN, Output, stderr_line, warn
from .table import (
    Column,
    cells_of,
    plain_pairs,
    plain_table,
    terminal_pairs,
    terminal_table,
)
from .text import one_line

#: verify's result types (convcalc.verify.report); named, not imported: render never imports verify
LayerCheck = Any
VerifyReport = Any


def report(result: VerifyReport, out: Output, *, style: str = "table") -> None:
    """The whole report in ``out``'s format; warnings on stderr."""
    if out.format == JSON:
        out.json(result.as_dict())
        return
    if style == "classic":
        out.lines(classic_lines(result))
        out.line(f"Verified on {result.device} with torch {result.torch_version}: {verdict(result)}")
        if result.peak_bytes is not None:
            from ..sizes import format_bytes

            out.line(f"Peak CUDA memory {format_bytes(result.peak_bytes)} measured; convcalc's estimate {format_bytes(result.estimate_bytes)}")
    else:
        table(result, out)
    if not result.ok:
        out.line()
        differences(result, out)
    summary = getattr(result, "summary", None)
    # located as model's are (file:line of the rows they concern), where the report came from a spec
    warn(layer_warnings(summary.rows, result.path) if summary is not None and result.path else result.warnings)


def table(result: VerifyReport, out: Output, *, checks: Sequence[LayerCheck] | None = None) -> None:
    """convcalc's table: every layer with ✓/✗/·, the totals, the verdict. ``checks``: the rows to
    show instead (``convcalc.summary(depth=…)`` folds them); the totals and verdict stay the report's."""
    shown = result.checks if checks is None else checks
    if out.format == PLAIN:
        out.line(header(result))
        out.lines(plain_table([c.title for c in COLUMNS], cells_of(COLUMNS, shown), [c.right for c in COLUMNS]))
        out.line()
        plain_pairs(out, footer(result))
        out.line(verdict(result))
        return
    styles = ["red" if c.confirmed is False else ("dim" if c.confirmed is None else None) for c in shown]
    terminal_table(out, header(result), COLUMNS, shown, styles=styles)
    terminal_pairs(out, footer(result))
    out.line(out.styled(verdict(result), "green" if result.ok else "bold red"))


def differences(result: VerifyReport, out: Output) -> None:
    """The table of disagreements: layer, type, what, convcalc's value, torch's."""
    rows = [[one_line(m.layer), m.type, m.what, _value(m.engine), _value(m.torch)] for m in result.mismatches]
    out.line("Differences between convcalc and torch:")
    out.lines(plain_table(["layer", "type", "what", "convcalc", "torch"], rows, [False] * 5))


def engine_failure(error: Any, out: Output, *, device: str) -> None:
    """convcalc's own verdict (an invalid model): the rows so far and the diagnosis; torch never ran."""
    from .errors import error_json, error_line

    if out.format == JSON:
        out.json({"error": error_json(error), **error.summary.as_dict(), "ok": False, "device": device, "torch_version": None})
    else:
        partial(error.summary, error_json(error), out)
    stderr_line(error_line(str(error.message)))
    stderr_line("note: convcalc's verdict comes first, so torch was not run (the meta device would skip some of CPU torch's checks)")


def _mark(check: LayerCheck) -> str:
    return {True: "✓", False: "✗", None: "·"}[check.confirmed]


def _shape(shape: Any) -> str:
    from ..graph import describe_shape

    return describe_shape(shape) if shape else "?"


def _count(value: int) -> str:

    return human_count(value) if value else "0"


COLUMNS: list[Column] = [
    Column("#", lambda c: str(c.index), right=True, priority=5),
    Column("name", lambda c: "  " * c.depth + c.name, user_text=True),
    Column("type", lambda c: c.type, priority=4),
    Column("input", lambda c: _shape(c.input_shape), priority=3),
    Column("output", lambda c: _shape(c.output_shape)),
    Column("params", lambda c: f"{c.params:,}", right=True, priority=1),
    Column("MACs", lambda c: _count(c.macs), right=True, priority=2),
    Column("✓", _mark),
]


def header(report: VerifyReport) -> str:
    from ..sizes import format_shape

    shapes = report.input_shapes if len(report.input_shapes) > 1 else (report.input_shape,)
    inputs = "inputs " + ", ".join(format_shape(s) for s in shapes) if len(shapes) > 1 else f"input {format_shape(shapes[0])}"
    return f"{one_line(report.name)}: {inputs} ({report.dtype}) on {report.device}, torch {report.torch_version}"


def footer(report: VerifyReport) -> list[tuple[str, str]]:
    from ..sizes import format_bytes

    lines = total_lines(report.totals)
    lines.append(("Memory estimate (convcalc)", format_bytes(report.estimate_bytes)))
    if report.peak_bytes is not None:
        lines.append(("Peak CUDA memory (measured)", format_bytes(report.peak_bytes)))
    return lines


def verdict(report: VerifyReport) -> str:
    """One line: what agrees, what disagrees, and what was not judged (never a ✓ for nothing)."""
    judged = [c for c in report.checks if c.known]
    skipped = _not_judged(report)
    if report.ok and not judged:
        return (f"· nothing compared: no layer of a type convcalc knows ran; measured by torch: {report.totals.params:,} params,"
                f" {report.totals.macs:,} MACs{skipped}")
    if report.ok:
        agree = "the layer agrees" if len(judged) == 1 else f"all {len(judged)} layers agree"
        return f"✓ {agree} (output shape, params, MACs){skipped}"
    bad = sum(1 for c in report.checks if c.confirmed is False)
    if report.failure is not None:
        refuses = f"✗ torch refuses {report.failure.type} '{report.failure.layer}', which convcalc accepts"
        if not judged:
            return refuses + skipped
        before = f"{bad} of the {len(judged)} layers before it disagree" if bad else f"the {len(judged)} layers before it agree"
        return f"{refuses}; {before}{skipped}"
    return f"✗ {bad} of {len(judged)} layers disagree{skipped}"


def _not_judged(report: VerifyReport) -> str:
    """``; judged as the layers they compute: torchvision.ops.misc.Permute as Permute (36); not judged:
    timm.layers.linear.Linear at head.fc, …; 12.3% of MACs in own forwards``."""
    unknown: dict[str, list[str]] = {}
    unproven: dict[str, tuple[str, list[str]]] = {}  # class → (the first row's reason, the rows); --json has each row's
    for check in report.checks:
        if check.not_judged:
            unproven.setdefault(check.class_path or check.type, (check.not_judged, []))[1].append(check.name)
        elif not check.known and not check.own:
            unknown.setdefault(check.class_path or check.type, []).append(check.name)
    judged = _judged_as(report.checks)
    text = f"; judged as the layers they were shown to compute: {judged}" if judged else ""
    parts = [f"{kind} at {_some(names)}" for kind, names in unknown.items()]
    text += f"; not judged (types convcalc does not know): {'; '.join(parts)}" if parts else ""
    parts = [f"{kind} at {_some(names)} ({why})" for kind, (why, names) in unproven.items()]
    text += f"; not judged: {'; '.join(parts)}" if parts else ""
    own = sum(c.macs for c in report.checks if c.own)
    if own and report.totals.macs:
        text += f"; {100 * own / report.totals.macs:.1f}% of the MACs are computed in modules' own forwards (rows 'own forward', counted, not judged)"
    return text


def _judged_as(checks: Sequence[Any]) -> str:
    """``torchvision.ops.misc.Permute as Permute (36)``: the classes judged by what they compute."""
    counts: dict[tuple[str, str], int] = {}
    for check in checks:
        if check.judged_as:
            key = (check.class_path or check.type, check.judged_as)
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{kind} as {what} ({n})" for (kind, what), n in counts.items())


def _some(names: list[str]) -> str:
    more = f" (+{len(names) - 2} more)" if len(names) > 2 else ""
    return f"{', '.join(names[:2])}{more}"


def _value(value: Any) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return _shape(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def classic_lines(report: VerifyReport) -> list[str]:
    """torchsummary.summary's output, line for line, from the rows its hooks would record."""
    from ..graph import totals_of

    lines = [
        "----------------------------------------------------------------",
        "{:>20}  {:>25} {:>15}".format("Layer (type)", "Output Shape", "Param #"),
        "================================================================",
    ]
    total_params = total_output = trainable = 0
    for row in report.classic:
        lines.append("{:>20}  {:>25} {:>15}".format(row.key, str(row.output_shape), "{0:,}".format(row.params)))
        total_params += row.params
        total_output += math.prod(_flatten(row.output_shape))
        if row.trainable:
            trainable += row.params
    # torchsummary's output shapes carry batch -1, so its sum is negative; it takes abs() at the end
    totals = totals_of(
        params=total_params, trainable=trainable, macs=0, output_elements=abs(total_output), input_shape=report.input_shape, dtype=report.dtype
    )
    input_mb, output_mb, params_mb = totals.input_mb, totals.forward_backward_mb, totals.params_mb
    lines += [
        "================================================================",
        "Total params: {0:,}".format(total_params),
        "Trainable params: {0:,}".format(trainable),
        "Non-trainable params: {0:,}".format(total_params - trainable),
        "----------------------------------------------------------------",
        "Input size (MB): %0.2f" % input_mb,
        "Forward/backward pass size (MB): %0.2f" % output_mb,
        "Params size (MB): %0.2f" % params_mb,
        "Estimated Total Size (MB): %0.2f" % (params_mb + output_mb + input_mb),  # torchsummary's order
        "----------------------------------------------------------------",
    ]
    return lines


def _flatten(values: Sequence[Any]) -> list[int]:
    flat: list[int] = []
    for value in values:
        flat.extend(_flatten(value) if isinstance(value, (list, tuple)) else [value])
    return flat
