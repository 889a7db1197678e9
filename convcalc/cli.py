"""The ``convcalc`` command line: parse options, call the core, render. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from . import calc
from .errors import ConvcalcError
from .options import (
    INTS,
    SIZE,
    channel_options,
    dims_option,
    explain_option,
    json_option,
    size_option,
    window_options,
)
from .sizes import format_size

COST_NOTE = (
    "MACs are weight multiply-accumulates, bias excluded (torch's FlopCounterMode ÷ 2); FLOPs = 2 × MACs; "
    "a transposed convolution is counted over its input positions."
)


class ExitCode:
    """Exit codes of every command (click itself uses 2 for usage errors)."""

    OK = 0
    INVALID = 1
    USAGE = 2


class ConvcalcGroup(click.Group):
    """Turns convcalc's errors into one line on stderr (plus JSON when asked) and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConvcalcError as error:
            fail(ctx, error)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("convcalc: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # `convcalc model … | head`: the reader left; stop quietly
            raise
        except Exception as error:  # a bug of ours: say so in one line, keep the traceback for --traceback
            if ctx.meta.get("convcalc.traceback"):
                raise
            click.echo(
                f"convcalc: internal error: {type(error).__name__}: {error} (rerun with --traceback and report it)",
                err=True,
            )
            ctx.exit(ExitCode.INVALID)


def fail(ctx: click.Context, error: ConvcalcError) -> NoReturn:
    """Report ``error`` (stderr, and stdout JSON under --json) and exit 1."""
    if ctx.meta.get("convcalc.json"):
        click.echo(json.dumps({"error": error.as_dict()}, ensure_ascii=False))
    where = f"{error.location}: " if error.location and not error.message.startswith(error.file or "\0") else ""
    click.echo(f"error: {where}{error.message}", err=True)
    if ctx.meta.get("convcalc.traceback"):
        raise error
    ctx.exit(ExitCode.INVALID)


def remember_json(ctx: click.Context, as_json: bool) -> None:
    ctx.meta["convcalc.json"] = as_json


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def warn(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


@click.group(cls=ConvcalcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convcalc", prog_name="convcalc")
@click.option("--traceback", is_flag=True, hidden=True, help="Show Python tracebacks (for bug reports).")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """Output sizes, parameters and compute of convolutional networks, exactly as PyTorch computes them.

    \b
      convcalc conv --in 227 --k 11 --s 4          # 55
      convcalc pool --in 26 --k 2 --s 2 --p 1      # 14
      convcalc tconv --in 3 --k 3 --s 3 --op 1     # 10
      convcalc chain 28 conv:k=5 maxpool:k=2       # 28 → 24 → 12
      convcalc model examples/models/mnist_cnn.yaml
      convcalc examples

    Exit codes: 0 ok, 1 invalid geometry or model, 2 usage error.
    """
    ctx.meta["convcalc.traceback"] = traceback


# -- single-layer calculators ---------------------------------------------------------------


def spatial_size(size: tuple[int, ...], dims: int | None) -> tuple[tuple[int, ...], bool]:
    """The per-axis input and whether it was written as one number (a square/cube)."""
    if len(size) > 3:
        raise click.BadParameter(f"{format_size(size)} has {len(size)} sizes; convolutions have 1 to 3 spatial axes", param_hint="--in")
    dims = dims or (2 if len(size) == 1 else len(size))
    if len(size) == 1:
        return size * dims, True
    if len(size) != dims:
        raise click.BadParameter(
            f"{format_size(size)} has {len(size)} sizes, but the layer is {dims}-D; give 1 or {dims} sizes",
            param_hint="--in",
        )
    return size, False


def show_size(sizes: Sequence[int], square: bool) -> str:
    return str(sizes[0]) if square and len(set(sizes)) == 1 else format_size(sizes)


def run_calculator(ctx: click.Context, kind: str, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, kwargs: dict[str, Any]) -> None:
    remember_json(ctx, as_json)
    spatial, square = spatial_size(size, dims)
    type_name = calc.layer_type(kind, len(spatial))
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    step = calc.calculate(type_name, spatial, **kwargs)
    if as_json:
        emit_json(step.as_dict())
        return
    if explain:
        click.echo(f"{type_name} {step.layer.describe()}")
        for line in step.explain:
            click.echo(f"  {line}")
        for line in step.warnings:
            click.echo(f"  note: {line}")
        click.echo(f"{show_size(step.input, square)} → {show_size(step.output, square)}")
        return
    warn(step.warnings)
    click.echo(show_size(step.output, square))


def conv_kwargs(kernel_size: Any, stride: Any, padding: Any, dilation: Any, in_channels: int, out_channels: int, groups: int, no_bias: bool) -> dict[str, Any]:
    return {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "groups": groups,
        "bias": not no_bias,
    }


@main.command()
@size_option
@window_options
@channel_options
@click.option(
    "--padding-mode",
    type=click.Choice(["zeros", "reflect", "replicate", "circular"]),
    default="zeros",
    show_default=True,
    help="How the border is padded.",
)
@dims_option
@explain_option
@json_option
@click.pass_context
def conv(ctx: click.Context, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, padding_mode: str, **options: Any) -> None:
    """Output size of a convolution (Conv1d/2d/3d).

    out = floor((in + 2p − d(k−1) − 1) / s) + 1 per axis.

    \b
      convcalc conv --in 227 --k 11 --s 4            # 55
      convcalc conv --in 32x64 --k 5                 # 28x60
      convcalc conv --in 32 --k 5 --p same --explain
    """
    run_calculator(ctx, "conv", size, dims, explain, as_json, {**conv_kwargs(**options), "padding_mode": padding_mode})


@main.command()
@size_option
@window_options
@click.option("--op", "--output-padding", "output_padding", type=INTS, default=None, help="Output padding (< stride or dilation).")
@channel_options
@dims_option
@explain_option
@json_option
@click.pass_context
def tconv(ctx: click.Context, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, output_padding: Any, **options: Any) -> None:
    """Output size of a transposed convolution (ConvTranspose1d/2d/3d).

    out = (in − 1)s − 2p + d(k−1) + output_padding + 1 per axis.

    \b
      convcalc tconv --in 2 --k 3                    # 4
      convcalc tconv --in 3 --k 3 --s 3 --op 1       # 10
    """
    run_calculator(ctx, "tconv", size, dims, explain, as_json, {**conv_kwargs(**options), "output_padding": output_padding})


@main.command()
@size_option
@window_options
@click.option("--kind", type=click.Choice(["max", "avg"]), default="max", show_default=True, help="Max or average pooling.")
@click.option("--ceil", "--ceil-mode", "ceil_mode", is_flag=True, help="Round up (ceil_mode=True).")
@dims_option
@explain_option
@json_option
@click.pass_context
def pool(ctx: click.Context, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, kind: str, ceil_mode: bool, kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> None:
    """Output size of max or average pooling (MaxPool/AvgPool 1d/2d/3d).

    Like a convolution; the stride defaults to the kernel size, padding is at most half the
    kernel, and --ceil keeps a last partial window unless it would start in the right padding.

    \b
      convcalc pool --in 24 --k 2                    # 12
      convcalc pool --in 26 --k 2 --s 2 --p 1        # 14
      convcalc pool --in 5 --k 2 --ceil              # 3
    """
    if isinstance(padding, str):
        raise click.BadParameter("pooling takes a number of padding, not 'same' or 'valid'", param_hint="--p")
    kwargs = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    if kind == "max":
        kwargs["dilation"] = dilation
    elif dilation is not None:
        raise click.BadParameter("average pooling has no dilation", param_hint="--d")
    run_calculator(ctx, f"{kind}pool", size, dims, explain, as_json, kwargs)


# -- chain ----------------------------------------------------------------------------------


@main.command()
@click.argument("size", type=str)
@click.argument("steps", nargs=-1, required=True)
@dims_option
@explain_option
@json_option
@click.pass_context
def chain(ctx: click.Context, size: str, steps: tuple[str, ...], dims: int | None, explain: bool, as_json: bool) -> None:
    """Follow a size through several layers in one line.

    A step is LAYER[:key=value,...]. Layers: conv, tconv, maxpool, avgpool, or a torch class
    name (Conv2d, AdaptiveAvgPool2d, ReLU …). Keys: torch's names or k s p d op g out.

    \b
      convcalc chain 28 conv:k=5 maxpool:k=2                       # 28 → 24 → 12
      convcalc chain 28 conv:k=3 maxpool:k=2,s=2,p=1 conv:k=3 maxpool:k=2,s=2,p=1
      convcalc chain 64x48 conv:k=3,s=2,p=1 tconv:k=4,s=2,p=1
    """
    remember_json(ctx, as_json)
    parsed = SIZE.convert(size, None, ctx)
    spatial, square = spatial_size(parsed, dims)
    results = calc.chain(spatial, steps, dims=len(spatial))
    if as_json:
        emit_json(
            {
                "input": list(spatial),
                "output": list(results[-1].output),
                "steps": [step.as_dict() for step in results],
            }
        )
        return
    if explain:
        for step in results:
            click.echo(f"{step.layer.type_name} {step.layer.describe()}: {show_size(step.input, square)} → {show_size(step.output, square)}")
            for line in step.explain:
                click.echo(f"  {line}")
            for line in step.warnings:
                click.echo(f"  note: {line}")
    else:
        warn([line for step in results for line in step.warnings])
    click.echo(" → ".join([show_size(spatial, square)] + [show_size(step.output, square) for step in results]))


# -- model ----------------------------------------------------------------------------------

DTYPES = ("float32", "float16", "bfloat16", "float64")


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


def use_rich() -> bool:
    return sys.stdout.isatty()


@main.command()
@click.argument("spec", type=click.Path(dir_okay=True))
@click.option("--input", "input_shape", type=SIZE, default=None, help="Override the spec's input (C×H×W, no batch), e.g. 3x224x224.")
@click.option("--batch", type=click.IntRange(1, 1_000_000), default=1, show_default=True, help="Batch size for shapes, MACs and memory.")
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True, help="Element type for the memory lines.")
@click.option("--find-sizes", "find_sizes", default=None, metavar="LOW..HIGH", help="List every square input size in the range for which the model is valid.")
@json_option
@click.pass_context
def model(ctx: click.Context, spec: str, input_shape: tuple[int, ...] | None, batch: int, dtype: str, find_sizes: str | None, as_json: bool) -> None:
    """Every layer of a YAML model: shapes, parameters, MACs, receptive field, memory.

    A model that does not fit together prints the rows up to the failing layer and says
    where (file:line), what came in, and the number that would fix it (exit 1).

    \b
      convcalc model examples/models/mnist_cnn.yaml
      convcalc model examples/models/vgg16.yaml --input 3x64x64 --batch 8 --dtype float16
      convcalc model examples/models/unet.yaml --find-sizes 64..1024

    MACs are weight multiply-accumulates, bias excluded (torch's FlopCounterMode ÷ 2);
    FLOPs = 2 × MACs; transposed convolutions are counted over their input positions.
    Memory lines are torchsummary's: MB of 1024², forward/backward = 2 × all layer outputs.
    """
    from .graph import ModelError, load_model
    from .render import render_plain, render_rich, to_json

    remember_json(ctx, as_json)
    loaded = load_model(spec)
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


# -- examples -------------------------------------------------------------------------------


@main.command()
@click.argument("path", required=False, default=None, type=click.Path(dir_okay=False))
@json_option
@click.pass_context
def examples(ctx: click.Context, path: str | None, as_json: bool) -> None:
    """Solve and check every exercise in examples.yaml (or PATH, same format).

    Prints question, answer, expected and ✓/✗ for each; exits 1 if any disagrees.
    The file format is described at the top of examples.yaml.

    \b
      convcalc examples
      convcalc examples my_homework.yaml --json
    """
    from .exercises import check_file, default_path

    remember_json(ctx, as_json)
    outcomes = check_file(path or default_path())
    if as_json:
        emit_json({"examples": [o.as_dict() for o in outcomes], "ok": all(o.ok for o in outcomes)})
    else:
        for number, outcome in enumerate(outcomes, start=1):
            mark = "✓" if outcome.ok else "✗"
            click.echo(f"{mark} {number}. {outcome.question}")
            click.echo(f"    answer:   {outcome.answer}")
            if not outcome.ok:
                click.echo(f"    expected: {outcome.expected}")
        passed = sum(o.ok for o in outcomes)
        click.echo(f"{passed} of {len(outcomes)} agree")
    if not all(o.ok for o in outcomes):
        ctx.exit(ExitCode.INVALID)


def _register_verify() -> None:
    from .verify_cmd import verify

    main.add_command(verify)


_register_verify()


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: click's handling, with usage errors shortened to one line on stderr."""
    try:
        code = main.main(args=argv, prog_name="convcalc", standalone_mode=False)
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return ExitCode.INVALID
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else error.format_message())
        return ExitCode.USAGE
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        click.echo(f"error: {error.format_message()}{hint}", err=True)
        return ExitCode.USAGE
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        click.echo("convcalc: aborted", err=True)
        return ExitCode.INVALID
    return code if isinstance(code, int) else ExitCode.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())


def console() -> None:
    """The ``convcalc`` console script."""
    sys.exit(run())
