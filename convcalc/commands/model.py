"""``convcalc model``: every layer of a YAML spec, or the input sizes that fit (--find-sizes)."""

from __future__ import annotations

import click

from ..cli import ExitCode, settings
from ..options import (
    SIZE,
    batch_option,
    complete_spec,
    dtype_option,
    json_option,
    table_options,
)
from ..render import model as render
from ..render.output import Output
from ..sizes import format_size

# -- model ----------------------------------------------------------------------------------



def parse_range(text: str) -> tuple[int, int]:
    from ..numbers import parse_whole, shorten

    low, sep, high = text.partition("..")
    a, b = parse_whole(low), parse_whole(high)
    if a is None or b is None:
        raise click.BadParameter(f"{shorten(text)!r} is not a range like 64..1024", param_hint="--find-sizes")
    if not sep or not 1 <= a <= b or b - a > 100_000:
        raise click.BadParameter(f"{shorten(text)!r}: write LOW..HIGH with 1 ≤ LOW ≤ HIGH and at most 100,000 sizes", param_hint="--find-sizes")
    return a, b


@click.command()
@click.argument("spec", required=False, default=None, metavar="SPEC|NAME", shell_complete=complete_spec)
@click.option("--input", "input_shape", type=SIZE, default=None, help="Override the spec's input (C×H×W, no batch), e.g. 3x224x224.")
@batch_option
@dtype_option
@click.option("--find-sizes", "find_sizes", default=None, metavar="LOW..HIGH", help="List every square input size in the range for which the model is valid.")
@click.option("--list", "list_models", is_flag=True, help="List the packaged example models (one line each) and exit.")
@table_options(tuple(c.title for c in render.COLUMNS))
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
    from ..packaged import load_named_model, model_list

    out = Output.for_stdout(as_json=as_json, settings=settings(ctx))
    if list_models:
        render.model_list(model_list(), out)
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
        from ..render.progress import track

        sizes = loaded.find_sizes(low, high, sample=input_shape, batch=batch, track=lambda tried: track(tried, "trying sizes"))
        render.found_sizes(sizes, low, high, out)
        ctx.exit(ExitCode.OK if sizes else ExitCode.INVALID)
    # a ModelError (the rows before the failing layer + the diagnosis) is rendered by cli.fail
    render.summary(loaded.summary(batch=batch, dtype=dtype, input_shape=input_shape), out)
