"""``convcalc solve``: every kernel/stride/padding/dilation that turns one size into another
(a thin layer over ``convcalc.solve``)."""

from __future__ import annotations

from typing import Any

import click

from .. import formulas
from .. import solve as solver
from ..cli import fail, remember_json
from ..errors import SpecError
from ..layers.base import AXES
from ..options import INTS, SIZE, dims_option, json_option
from ..render import solve as render
from ..render.output import Output
from ..sizes import show_size
from .calculator import command_line_values, spatial_size

RANGE_HELP = "searched by default: k 1–11, s 1–8, d 1–4, p 0–k (pool: 0–k/2), op 0–max(s, d)−1"


def _per_axis(value: Any, dims: int, name: str) -> list[int | None]:
    if value is None:
        return [None] * dims
    if isinstance(value, str):
        raise click.BadParameter("solve takes numbers here", param_hint=name)
    values = value if isinstance(value, list) else [value] * dims
    if len(values) != dims:
        raise click.BadParameter(f"give 1 or {dims} values", param_hint=name)
    for v in values:
        if v < (0 if name in ("--p", "--op") else 1):
            raise click.BadParameter(f"{v} is out of range", param_hint=name)
    return values


@click.command()
@click.argument("layer", type=click.Choice(["conv", "tconv", "pool"]))
@click.option("--in", "--input", "size", type=SIZE, required=True, help="Input size: 28, HxW or DxHxW.")
@click.option("--out", "--output", "out", type=SIZE, default=None, help="The output size wanted (not with --tf-same).")
@click.option("--k", "--kernel-size", "kernel_size", type=INTS, default=None, help="Fix the kernel size (else searched).")
@click.option("--s", "--stride", "stride", type=INTS, default=None, help="Fix the stride.")
@click.option("--p", "--padding", "padding", type=INTS, default=None, help="Fix the padding.")
@click.option("--d", "--dilation", "dilation", type=INTS, default=None, help="Fix the dilation.")
@click.option("--op", "--output-padding", "output_padding", type=INTS, default=None, help="Fix the output padding (tconv).")
@click.option("--kind", type=click.Choice(["max", "avg"]), default="max", show_default=True, help="Pooling kind.")
@click.option("--ceil/--no-ceil", "ceil_mode", default=None, help="Pool: fix ceil_mode (else both are tried).")
@click.option("--tf-same", is_flag=True, help="What TensorFlow/Keras padding='same' gives with --k/--s, and the same in PyTorch.")
@click.option("--max-k", type=click.IntRange(1, solver.MAX_KERNEL), default=11, show_default=True, help="Widen the kernel search.")
@click.option("--max-s", type=click.IntRange(1, solver.MAX_STRIDE), default=8, show_default=True, help="Widen the stride search.")
@click.option("--max-d", type=click.IntRange(1, solver.MAX_DILATION), default=4, show_default=True, help="Widen the dilation search.")
@click.option("--max-p", type=click.IntRange(0, solver.MAX_PADDING), default=None, help="Padding searched: 0..N (default: 0..k).")
@click.option("--limit", type=click.IntRange(0), default=10, show_default=True, help="Settings printed (0: all; --json lists all).")
@dims_option
@json_option
@click.pass_context
def solve(ctx: click.Context, layer: str, size: tuple[int, ...], out: tuple[int, ...] | None, kernel_size: Any, stride: Any, padding: Any, dilation: Any, output_padding: Any, kind: str, ceil_mode: bool | None, tf_same: bool, max_k: int, max_s: int, max_d: int, max_p: int | None, limit: int, dims: int | None, as_json: bool) -> None:
    """Every setting that turns --in into --out under torch's rules, simplest first.

    Unspecified kernel, stride, padding, dilation (and output_padding, ceil_mode) are searched;
    each answer is a paste-ready torch call, checked by convcalc's engine before it is printed.
    Where only asymmetric padding works, the answer is padding='same' (stride 1) or a ZeroPad
    layer in front. Ranges (searched by default): k 1–11, s 1–8, d 1–4, p 0–k (pool: 0–k/2),
    op 0–max(s, d)−1; widen with --max-k/--max-s/--max-d/--max-p.

    \b
      convcalc solve conv --in 28 --out 28 --k 3           # padding=1
      convcalc solve conv --in 224 --out 112 --k 3 --p 1   # stride=2
      convcalc solve tconv --in 16 --out 32 --k 4
      convcalc solve pool --in 5 --out 3 --k 2
      convcalc solve conv --in 224 --k 3 --s 2 --tf-same   # TensorFlow's 'same' in PyTorch
    """
    remember_json(ctx, as_json)
    spatial, square = spatial_size(size, dims)
    axes = len(spatial)
    family = f"{kind}pool" if layer == "pool" else layer
    if family == "avgpool" and dilation is not None:
        raise click.BadParameter("average pooling has no dilation", param_hint="--d")
    if output_padding is not None and family != "tconv":
        raise click.BadParameter("only tconv has output padding", param_hint="--op")
    fixed_values = {
        "kernel": _per_axis(kernel_size, axes, "--k"),
        "stride": _per_axis(stride, axes, "--s"),
        "padding": _per_axis(padding, axes, "--p"),
        "dilation": _per_axis(dilation, axes, "--d"),
        "output_padding": _per_axis(output_padding, axes, "--op"),
    }
    if tf_same:
        return _tf_same(ctx, family, spatial, square, fixed_values, out, as_json)
    if out is None:
        raise click.UsageError("Missing option '--out' (or use --tf-same).", ctx)
    outs, _ = spatial_size(out, axes)
    if len(outs) != axes:
        raise click.BadParameter(f"give 1 or {axes} sizes", param_hint="--out")
    fixed = [
        solver.Fixed(*(fixed_values[name][a] for name in ("kernel", "stride", "padding", "dilation", "output_padding")), ceil_mode=ceil_mode)
        for a in range(axes)
    ]
    ranges = solver.Ranges(max_k, max_s, max_d, max_p)
    with command_line_values():  # a fixed value out of range, a search too wide: how solve was called (exit 2)
        answer = solver.solve(family, spatial, outs, fixed, ranges)
    type_name = f"{solver.FAMILIES[family]}{axes}d"
    given = _given(fixed_values, ceil_mode)
    searched = ranges.describe(family)
    if as_json:
        data: dict[str, Any] = {
            "layer": type_name,
            "input": list(spatial),
            "output": list(outs),
            "searched": searched,
            "given": given,
            "solutions": [s.as_dict() for s in answer.solutions],
            "count": len(answer.solutions),
            "truncated": answer.truncated,
        }
        if answer.nearest:
            data["nearest"] = answer.nearest
            data["error"] = {"message": _no_solution(type_name, spatial, outs, square, searched, answer), "layer": type_name, "file": None, "line": None}
        render.as_json(Output.for_stdout(as_json=True), data)
        ctx.exit(1 if answer.nearest else 0)
    if answer.nearest:
        remember_json(ctx, False)
        fail(ctx, SpecError(_no_solution(type_name, spatial, outs, square, searched, answer), layer=type_name))
    count = len(answer.solutions)
    more = "+" if answer.truncated else ""
    shown = answer.solutions if limit == 0 else answer.solutions[:limit]
    render.solutions(
        Output.for_stdout(),
        heading=(
            f"{type_name} {show_size(spatial, square)} → {show_size(outs, square)}: {count}{more} setting{'s' if count != 1 else ''},"
            f" simplest first (searched {searched}{'; given ' + given if given else ''})"
        ),
        lines=[f"{'  then  '.join(solution.torch_lines())}{_note(solution)}" for solution in shown],
        more=f"… and {count - len(shown)}{more} more (--limit 0 prints all; --json lists every one)" if len(shown) < count else None,
    )


def _given(fixed_values: dict[str, list[int | None]], ceil_mode: bool | None) -> str:
    short = {"kernel": "k", "stride": "s", "padding": "p", "dilation": "d", "output_padding": "op"}
    parts = []
    for name, values in fixed_values.items():
        if values[0] is not None:
            parts.append(f"{short[name]}={values[0] if len(set(values)) == 1 else 'x'.join(map(str, values))}")
    if ceil_mode is not None:
        parts.append(f"ceil_mode={ceil_mode}")
    return " ".join(parts)


def _note(solution: solver.Solution) -> str:
    if solution.symmetric:
        return ""
    if len(set(solution.axes)) == 1:
        a = solution.axes[0]
        sides = f"{a.pad_left} before, {a.pad_right} after on each axis"
    else:
        sides = ", ".join(f"{axis}: {a.pad_left} before, {a.pad_right} after" for axis, a in zip(AXES[solution.dims], solution.axes) if not a.symmetric)
    return f"   # only asymmetric padding works here ({sides})"


def _no_solution(type_name: str, spatial: Any, outs: Any, square: bool, searched: str, answer: solver.Answer) -> str:
    same = len(answer.nearest) == len(answer.sizes) and len(set(zip(answer.sizes, answer.outs))) == 1
    near = "; ".join(
        f"{axis + ': ' if len(answer.sizes) > 1 and not same else ''}nearest reachable {' or '.join(map(str, values)) or 'none'}"
        for axis, values in (list(answer.nearest.items())[:1] if same else answer.nearest.items())
    )
    return (
        f"no {type_name} setting turns {show_size(spatial, square)} into {show_size(outs, square)} (searched {searched});"
        f" {near}; or widen the search with --max-k/--max-s/--max-d/--max-p"
    )


def _tf_same(ctx: click.Context, family: str, spatial: tuple[int, ...], square: bool, fixed: dict[str, list[int | None]], out: Any, as_json: bool) -> None:
    if fixed["kernel"][0] is None:
        raise click.UsageError("--tf-same needs --k (and --s, default 1)", ctx)
    if fixed["padding"][0] is not None or out is not None:
        raise click.UsageError("--tf-same computes the padding and the output: leave out --p and --out", ctx)
    kernels = [k or 1 for k in fixed["kernel"]]
    strides = [s or (k if family.endswith("pool") else 1) for s, k in zip(fixed["stride"], kernels)]
    dilations = [d or 1 for d in fixed["dilation"]]
    with command_line_values():
        answer = solver.tf_same(family, spatial, kernels, strides, dilations)
    type_name = answer.solution.type_name()
    if as_json:
        render.as_json(
            Output.for_stdout(as_json=True),
            {
                "layer": type_name,
                "input": list(spatial),
                "output": list(answer.outs),
                "tf_same": {"pads": [list(p) for p in answer.pads]},
                "solutions": [answer.solution.as_dict()],
                "torch": answer.lines,
                "notes": answer.notes,
            },
        )
        return
    seen: dict[tuple[int, ...], str] = {}
    axes: list[str] = []
    for axis, n, k, s, d, o, (pl, pr) in zip(AXES[len(spatial)], spatial, kernels, strides, dilations, answer.outs, answer.pads):
        problem = (n, k, s, d)
        if problem in seen:
            axes.append(f"{axis}: the same as {seen[problem]}")
            continue
        seen[problem] = axis
        span = formulas.effective_kernel(k, d)
        axes.append(
            f"{axis}: TensorFlow padding='same': out = ceil({n} / {s}) = {o};"
            f" total padding max(({o} − 1)×{s} + {span} − {n}, 0) = {pl + pr}: {pl} before, {pr} after"
        )
    render.tf_same(
        Output.for_stdout(),
        axes=axes,
        heading=f"PyTorch ({show_size(spatial, square)} → {show_size(answer.outs, square)}, checked with convcalc's engine):",
        lines=answer.lines,
        notes=answer.notes,
    )
