"""``convcalc model``: every layer of a YAML spec, or the input sizes that fit (--find-sizes)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from ..cli import ExitCode, remember_json, use_rich, warn
from ..options import SIZE, batch_option, dtype_option, json_option
from ..sizes import format_size

# -- model ----------------------------------------------------------------------------------



def parse_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("..")
    try:
        a, b = int(low), int(high)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a range like 64..1024", param_hint="--find-sizes") from None
    if not sep or not 1 <= a <= b or b - a > 100_000:
        raise click.BadParameter(f"{text!r}: write LOW..HIGH with 1 ≤ LOW ≤ HIGH and at most 100,000 sizes", param_hint="--find-sizes")
    return a, b


def size_pattern(sizes: Sequence[int]) -> str:
    """``" (the multiples of 16)"`` when the sizes are exactly that, else nothing."""
    steps = {b - a for a, b in zip(sizes, sizes[1:])}
    if len(steps) == 1 and (step := steps.pop()) > 1 and sizes[0] % step == 0:
        return f" (the multiples of {step})"
    return ""


def layer_warnings(rows: Sequence[Any]) -> list[str]:
    """Each distinct warning once, prefixed with the rows it concerns (``layer2.0.downsample.0``)."""
    where: dict[str, list[str]] = {}
    for row in rows:
        for text in row.warnings:
            where.setdefault(text, []).append(row.name)
    lines = []
    for text, names in where.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"{shown}: {text}")
    return lines


@click.command()
@click.argument("spec", required=False, default=None, metavar="SPEC|NAME")
@click.option("--input", "input_shape", type=SIZE, default=None, help="Override the spec's input (C×H×W, no batch), e.g. 3x224x224.")
@batch_option
@dtype_option
@click.option("--find-sizes", "find_sizes", default=None, metavar="LOW..HIGH", help="List every square input size in the range for which the model is valid.")
@click.option("--list", "list_models", is_flag=True, help="List the packaged example models (one line each) and exit.")
@json_option
@click.pass_context
def model(ctx: click.Context, spec: str | None, input_shape: tuple[int, ...] | None, batch: int, dtype: str, find_sizes: str | None, list_models: bool, as_json: bool) -> None:
    """Every layer of a YAML model: shapes, parameters, MACs, receptive field, memory.

    SPEC is a YAML file, or NAME a packaged example by its stem (vgg16, mnist_cnn, resnet50 …;
    see --list); a file of that name in the current folder wins.

    A model that does not fit together prints the rows up to the failing layer and says
    where (file:line), what came in, and the number that would fix it (exit 1).

    \b
      convcalc model mnist_cnn
      convcalc model vgg16 --input 3x64x64 --batch 8 --dtype float16
      convcalc model unet --find-sizes 64..1024
      convcalc model my_net.yaml
      convcalc model --list

    MACs are weight multiply-accumulates, bias excluded (torch's FlopCounterMode ÷ 2);
    FLOPs = 2 × MACs; transposed convolutions are counted over their input positions.
    Memory lines are torchsummary's: MB of 1024², forward/backward = 2 × all layer outputs.
    """
    from ..graph import ModelError
    from ..packaged import load_named_model, model_list
    from ..render import render_plain, render_rich, to_json

    remember_json(ctx, as_json)
    if list_models:
        listed = model_list()
        if as_json:
            click.echo(to_json({"models": [{"name": stem, "description": text} for stem, text in listed]}))
        else:
            width = max(len(stem) for stem, _ in listed)
            for stem, text in listed:
                click.echo(f"{stem:<{width}}  {text}")
        return
    if spec is None:
        raise click.UsageError("give a spec file or a packaged example's name (convcalc model mnist_cnn; convcalc model --list)")
    loaded = load_named_model(spec)
    if input_shape is not None and len(input_shape) != len(loaded.input_shape):
        raise click.BadParameter(
            f"{format_size(input_shape)} has {len(input_shape)} sizes; the spec's input has {len(loaded.input_shape)} (C, then the spatial sizes)",
            param_hint="--input",
        )
    if find_sizes is not None:
        low, high = parse_range(find_sizes)
        sizes = loaded.find_sizes(low, high, sample=input_shape, batch=batch)
        if as_json:
            click.echo(to_json({"sizes": sizes}))
        elif not sizes:
            click.echo(f"no size in {low}..{high} fits", err=True)
        elif use_rich():
            click.echo(f"{len(sizes)} of {high - low + 1} sizes in {low}..{high} fit{size_pattern(sizes)}:")
            click.echo(click.wrap_text(" ".join(map(str, sizes)), width=100))
        else:
            click.echo("\n".join(map(str, sizes)))  # one per line for scripts
        ctx.exit(ExitCode.OK if sizes else ExitCode.INVALID)
    try:
        summary = loaded.summary(batch=batch, dtype=dtype, input_shape=input_shape)
    except ModelError as error:
        if as_json:
            click.echo(to_json({"error": error.as_dict(), **error.summary.as_dict()}))
        elif error.summary.rows:
            render_rich(error.summary, totals=False) if use_rich() else render_plain(error.summary, sys.stdout, totals=False)
        click.echo(f"error: {error.message}", err=True)
        ctx.exit(ExitCode.INVALID)
    if as_json:
        click.echo(to_json(summary.as_dict()))
    elif use_rich():
        render_rich(summary)
    else:
        render_plain(summary, sys.stdout)
    warn(layer_warnings(summary.rows))
