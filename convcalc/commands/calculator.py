"""The calculators: ``conv``, ``tconv``, ``pool`` and ``chain`` (the start-up-critical path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .. import calc
from ..errors import SpecError, as_usage
from ..options import (
    COUNT,
    SIZE,
    WholeType,
    channel_options,
    dims_option,
    explain_option,
    json_option,
    output_padding_option,
    padding_mode_option,
    pool_options,
    size_option,
    values_options,
    window_options,
)
from ..render import calculator as render
from ..render.output import Output, warn
from ..sizes import format_size

# -- single-layer calculators ---------------------------------------------------------------


@contextmanager
def command_line_values() -> Iterator[None]:
    """A value the engine refuses (``--s 0``, an unknown chain key) was written on the command
    line: a usage error, exit 2. Geometry that does not fit (ShapeError) stays exit 1."""
    try:
        yield
    except SpecError as error:
        raise as_usage(error) from None


def spatial_size(size: tuple[int, ...], dims: int | None) -> tuple[tuple[int, ...], bool]:
    """The per-axis input and whether it was written as one number (a square/cube)."""
    reading = read_input(size, dims)
    return reading.spatial, reading.square


def read_input(size: tuple[int, ...], dims: int | None, *, in_channels: int | None = None, layer: str = "conv") -> calc.Reading:
    """:func:`calc.read_size`, its refusals as usage errors of ``--in`` (exit 2); pool has no
    --in-channels, so its warning names only --dims."""
    from ..errors import SpecError

    flags = ("--dims ", None if layer.endswith("pool") else "--in-channels ")
    try:
        return calc.read_size(size, dims, in_channels=in_channels, layer=layer, flags=flags)
    except SpecError as error:
        raise click.BadParameter(error.message, param_hint="--in") from None


def given(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was written on the command line (not its default)."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def run_calculator(ctx: click.Context, kind: str, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, kwargs: dict[str, Any]) -> None:
    channels_given = given(ctx, "in_channels")
    reading = read_input(size, dims, in_channels=kwargs.get("in_channels") if channels_given else None, layer=kind)
    if reading.warning:
        warn([reading.warning])
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    if reading.channels is not None:
        kwargs["in_channels"] = reading.channels
    with command_line_values():
        type_name = calc.layer_type(kind, len(reading.spatial))
        step = calc.calculate(type_name, reading.spatial, **kwargs)
    if reading.channels is not None or channels_given or given(ctx, "out_channels"):
        step = step._replace(in_channels=kwargs.get("in_channels", 1), out_channels=step.channels)
    render.answer(
        step, Output.for_stdout(as_json=as_json), square=reading.square, explain=explain,
        channels_first=reading.channels is not None, notes=[reading.warning] if reading.warning else [],
    )


IN_HELP = "Input size: 227, HxW (32x64) or DxHxW (with --values: implied by the matrix)."


def needs(ctx: click.Context, **given: Any) -> None:
    """Without --values, --in (and --k) are required: name the first one missing, as click does."""
    for name, value in given.items():
        if value is None:
            flags = {"size": "'--in' / '--input'", "kernel_size": "'--k' / '--kernel-size'"}[name]
            raise click.UsageError(f"Missing option {flags}.", ctx)


def trace(ctx: click.Context, kind: str, size: Any, dims: Any, explain: bool, as_json: bool, kwargs: dict[str, Any], values: str, weight: str | None = None, bias: str | None = None) -> None:
    """--values: the actual output numbers (imported only when asked, off the start-up path)."""
    from .trace import run_trace

    run_trace(ctx, kind, size, dims, explain, as_json, kwargs, values, weight, bias)


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


@click.command()
@size_option(required=False, help=IN_HELP)
@window_options(required=False)
@channel_options()
@padding_mode_option()
@dims_option
@values_options()
@explain_option
@json_option
@click.pass_context
def conv(ctx: click.Context, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, padding_mode: str, values: str | None, weight: str | None, bias: str | None, **options: Any) -> None:
    """Output size of a convolution (Conv1d/2d/3d).

    out = floor((in + 2p − d(k−1) − 1) / s) + 1 per axis.

    \b
      convcalc conv --in 227 --k 11 --s 4            # 55
      convcalc conv --in 32x64 --k 5                 # 28x60
      convcalc conv --in 32 --k 5 --p same --explain
      convcalc conv --values '[[1,2,3],[4,5,6],[7,8,9]]' --weight '[[1,0],[0,1]]'
    """
    if values is not None:
        return trace(ctx, "conv", size, dims, explain, as_json, {**conv_kwargs(**options), "padding_mode": padding_mode}, values, weight, bias)
    needs(ctx, size=size, kernel_size=options["kernel_size"])
    run_calculator(ctx, "conv", size, dims, explain, as_json, {**conv_kwargs(**options), "padding_mode": padding_mode})


@click.command()
@size_option(required=False, help=IN_HELP)
@window_options(required=False)
@output_padding_option
@channel_options()
@dims_option
@values_options()
@explain_option
@json_option
@click.pass_context
def tconv(ctx: click.Context, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, output_padding: Any, values: str | None, weight: str | None, bias: str | None, **options: Any) -> None:
    """Output size of a transposed convolution (ConvTranspose1d/2d/3d).

    out = (in − 1)s − 2p + d(k−1) + output_padding + 1 per axis.

    \b
      convcalc tconv --in 2 --k 3                    # 4
      convcalc tconv --in 3 --k 3 --s 3 --op 1       # 10
      convcalc tconv --values '[[1,1,1],[1,1,1],[1,1,1]]' --weight '[[1,2,3],[2,2,1],[3,2,1]]' --p 2   # 17
    """
    if values is not None:
        return trace(ctx, "tconv", size, dims, explain, as_json, {**conv_kwargs(**options), "output_padding": output_padding}, values, weight, bias)
    needs(ctx, size=size, kernel_size=options["kernel_size"])
    run_calculator(ctx, "tconv", size, dims, explain, as_json, {**conv_kwargs(**options), "output_padding": output_padding})


@click.command()
@size_option(required=False, help=IN_HELP)
@window_options()
@pool_options()
@click.option("--count-include-pad/--no-count-include-pad", "count_include_pad", default=None, help="Average pooling: count the padding in the mean (torch's default: yes).")
@click.option("--divisor-override", type=WholeType(), default=None, help="Average pooling: divide every window's sum by this number.")
@dims_option
@values_options(weight=False)
@explain_option
@json_option
@click.pass_context
def pool(ctx: click.Context, size: tuple[int, ...], dims: int | None, explain: bool, as_json: bool, kind: str, ceil_mode: bool, kernel_size: Any, stride: Any, padding: Any, dilation: Any, count_include_pad: bool | None, divisor_override: int | None, values: str | None) -> None:
    """Output size of max or average pooling (MaxPool/AvgPool 1d/2d/3d).

    Like a convolution; the stride defaults to the kernel size, padding is at most half the
    kernel, and --ceil keeps a last partial window unless it would start in the right padding.

    \b
      convcalc pool --in 24 --k 2                    # 12
      convcalc pool --in 26 --k 2 --s 2 --p 1        # 14
      convcalc pool --in 5 --k 2 --ceil              # 3
      convcalc pool --k 2 --kind avg --values '[[1,2],[3,4]]'   # 2.5
    """
    if isinstance(padding, str):
        raise click.BadParameter("pooling takes a number of padding, not 'same' or 'valid'", param_hint="--p")
    kwargs = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    if kind == "max":
        kwargs["dilation"] = dilation
    elif dilation is not None:
        raise click.BadParameter("average pooling has no dilation", param_hint="--d")
    for name, value in (("count_include_pad", count_include_pad), ("divisor_override", divisor_override)):
        if value is not None:
            if kind == "max":
                raise click.BadParameter(f"max pooling has no {name}", param_hint="--" + name.replace("_", "-"))
            kwargs[name] = value
    if values is not None:
        return trace(ctx, f"{kind}pool", size, dims, explain, as_json, kwargs, values)
    needs(ctx, size=size)
    run_calculator(ctx, f"{kind}pool", size, dims, explain, as_json, kwargs)


# -- chain ----------------------------------------------------------------------------------


@click.command()
@click.argument("size", type=str, metavar="SIZE")
@click.argument("steps", nargs=-1, required=True, metavar="STEP...")
@click.option("--in-channels", "--cin", "in_channels", type=COUNT, default=None,
              help="Channels of the input (for Flatten/Linear and parameter counts); or write SIZE as CxHxW with --dims 2.")
@dims_option
@explain_option
@json_option
@click.pass_context
def chain(ctx: click.Context, size: str, steps: tuple[str, ...], in_channels: int | None, dims: int | None, explain: bool, as_json: bool) -> None:
    """Follow a size through several layers in one line.

    SIZE is 28, HxW, DxHxW, or CxHxW with --dims 2. A STEP is LAYER[:key=value,...] — layers
    conv, tconv, maxpool, avgpool or a torch class name (Conv2d, AdaptiveAvgPool2d, Flatten,
    Linear …), keys torch's names or k s p d op g out — or torch's own call, "Conv2d(1, 16, 3)".
    Channels are followed from out= (and --in-channels) and shown as CxHxW once known.

    \b
      convcalc chain 28 conv:k=5 maxpool:k=2                       # 28 → 24 → 12
      convcalc chain 28 conv:k=3 maxpool:k=2,s=2,p=1 conv:k=3 maxpool:k=2,s=2,p=1
      convcalc chain 28 "Conv2d(1, 16, 3)" "MaxPool2d(2)" Flatten "Linear(2704, 10)"
      convcalc chain 3x32x32 --dims 2 maxpool:k=2 avgpool:k=2      # 3x32x32 → 3x16x16 → 3x8x8
      convcalc chain 28 conv:k=3,out=16 maxpool:k=2,s=2,p=1 Flatten Linear:out=10
      convcalc chain 64x48 conv:k=3,s=2,p=1 tconv:k=4,s=2,p=1
    """
    parsed = SIZE.convert(size, None, ctx)
    first = steps[0].split(":")[0].split("(")[0].rsplit(".", 1)[-1].strip()
    word = first.lower().replace("_", "").replace("-", "") in calc.WORDS
    if dims is None and not word and first[-2:].lower() in ("1d", "2d", "3d") and int(first[-2]) in (len(parsed) - 1, len(parsed)):
        dims = int(first[-2])  # Conv2d, MaxPool1d(2) …: the layer says how to read the size
    reading = read_input(parsed, dims, in_channels=in_channels, layer=first if word else "conv")
    if reading.warning:
        warn([reading.warning])
    spatial, square = reading.spatial, reading.square
    channels = reading.channels if reading.channels is not None else in_channels
    with command_line_values():
        results = calc.chain(spatial, steps, dims=len(spatial), channels=channels, explain=explain or as_json)
    render.chain(
        results, spatial, Output.for_stdout(as_json=as_json), square=square, explain=explain,
        channels=channels, notes=[reading.warning] if reading.warning else [],
    )
