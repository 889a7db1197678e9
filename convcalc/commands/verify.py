"""The ``convcalc verify`` command: parse the target, call :mod:`convcalc.verify`, render its report.

``convcalc.cli`` imports this module only when ``verify`` runs (or for its --help). Importing it
loads the engine (graph, layers: the renderers it uses read summary rows) but not torch:
``convcalc.verify``, the package that imports torch, is imported inside the command.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from ..options import (
    SIZE,
    batch_option,
    channel_options,
    dims_option,
    dtype_option,
    json_option,
    output_padding_option,
    padding_mode_option,
    pool_options,
    table_options,
    window_options,
)
from ..render.verify import COLUMNS as TABLE_COLUMNS
from ..render.verify import classic_lines, footer, header, verdict  # noqa: F401  (older names, tests)

if TYPE_CHECKING:
    from ..verify import VerifyReport

F = TypeVar("F", bound=Callable[..., Any])

LAYER_TARGETS = ("conv", "tconv", "pool")
STYLES = ("table", "classic")
DEVICES = ("cpu", "cuda", "meta")

#: Options that only the layer targets (conv, tconv, pool) take: name → default for them.
LAYER_DEFAULTS: dict[str, Any] = {
    "kernel_size": None,
    "stride": None,
    "padding": None,
    "dilation": None,
    "output_padding": None,
    "in_channels": 1,
    "out_channels": 1,
    "groups": 1,
    "no_bias": False,
    "padding_mode": "zeros",
    "kind": "max",
    "ceil_mode": False,
    "dims": None,
}


#: The layer options each layer target takes (the others are usage errors there, as in the calculator).
TARGET_OPTIONS: dict[str, frozenset[str]] = {
    "conv": frozenset({"kernel_size", "stride", "padding", "dilation", "in_channels", "out_channels", "groups", "no_bias", "padding_mode", "dims"}),
    "tconv": frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding", "in_channels", "out_channels", "groups", "no_bias", "dims"}),
    "pool": frozenset({"kernel_size", "stride", "padding", "dilation", "kind", "ceil_mode", "dims"}),
}


def layer_options(f: F) -> F:
    """The calculator's options (defined once in ``options.py``), all optional here: they apply to
    the conv, tconv and pool targets only."""
    for decorator in (
        dims_option,
        pool_options(defaults=False),
        padding_mode_option(default=None),
        channel_options(defaults=False),
        output_padding_option,
        window_options(required=False),
    ):
        f = decorator(f)
    return f


def _memory(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from ..errors import SpecError
    from ..verify import parse_memory

    try:
        return parse_memory(value)
    except SpecError as error:
        raise click.BadParameter(error.message) from None


def _kwargs(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None  # not given (``{}`` is given: it still applies to Python models only)
    from ..numbers import MAX_DIGITS, shorten, show

    def whole(text: str) -> int:
        if len(text.lstrip("-")) > MAX_DIGITS:
            raise click.BadParameter(f"the number {shorten(text)} has more than {MAX_DIGITS} digits; convcalc passes on numbers up to 10^{MAX_DIGITS}")
        return int(text)

    try:
        data = json.loads(value, parse_int=whole)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{show(value)} is not JSON ({error.msg}); write it like '{{\"num_classes\": 10}}'") from None
    except RecursionError:
        raise click.BadParameter("the JSON is nested too deeply; write a flat object like '{\"num_classes\": 10}'") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"must be a JSON object like '{{\"num_classes\": 10}}', got {show(value)}")
    return data


@click.command()
@click.argument("target")
@click.option("--in", "--input", "input_shape", type=SIZE, default=None,
              help="Spec or Python model: one sample's C×H×W (no batch), e.g. 3x224x224. conv/tconv/pool: the spatial size.")
@batch_option
@dtype_option
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="Where torch runs: cpu, cuda, or meta (shapes only, no memory; convcalc's verdict still comes first).")
@click.option("--max-memory", default="2GiB", show_default=True, callback=_memory, metavar="SIZE",
              help="Refuse to run on cpu/cuda above this estimate (512MiB, 2GiB, 1.5GB).")
@click.option("--style", type=click.Choice(STYLES), default="table", show_default=True,
              help="table: every layer with ✓; classic: torchsummary's exact layout and numbers.")
@click.option("--kwargs", "kwargs", default=None, callback=_kwargs, metavar="JSON",
              help="Python model: constructor arguments, e.g. '{\"num_classes\": 10}'.")
@click.option("--emit-spec", "emit_spec", default=None, metavar="OUT.yaml",
              help="Python model: write it as a convcalc spec (traced with torch.fx; graphs, blocks, tied weights),"
                   " proven to compute what the model computes (- for stdout; an existing file needs --force).")
@click.option("--force", is_flag=True, default=False, help="--emit-spec may replace an existing file.")
@layer_options
@table_options(tuple(c.title for c in TABLE_COLUMNS))
@json_option
@click.pass_context
def verify(
    ctx: click.Context,
    target: str,
    input_shape: tuple[int, ...] | None,
    batch: int,
    dtype: str,
    device: str,
    max_memory: int,
    style: str,
    kwargs: dict[str, Any] | None,
    emit_spec: str | None,
    force: bool,
    as_json: bool,
    **layer: Any,
) -> None:
    """Build the real torch layers, run them once, and confirm every shape, parameter count and MAC.

    TARGET is a spec (model.yaml, or a packaged example's name: vgg16), a calculator layer (conv, tconv, pool, with their options), or a
    Python model (path/to/model.py:Net, package.module:factory) run as written — every layer of a
    type convcalc knows is recomputed on the input it really received. Any disagreement with torch
    exits 1 with a table of the differences. The report names the device and the torch version.

    \b
      convcalc verify mnist_cnn                     # a packaged example (convcalc model --list)
      convcalc verify mnist_cnn --style classic     # torchsummary's table
      convcalc verify vgg16 --device meta
      convcalc verify conv --in 227 --k 11 --s 4 --cin 3 --cout 96
      convcalc verify model.py:Net --input 1x28x28 --kwargs '{"num_classes": 10}'
      convcalc verify model.py:Net --input 1x28x28 --emit-spec net.yaml

    MACs are weight multiply-accumulates, bias excluded (torch's FlopCounterMode ÷ 2). Memory lines
    are torchsummary's (MB of 1024²); on cuda the measured peak is shown beside convcalc's estimate.
    Needs PyTorch: pip install 'convcalc[torch]'.
    """
    from ..cli import remember_json

    remember_json(ctx, as_json)
    kind = "layer" if target in LAYER_TARGETS else ("python" if _is_python_target(target) else "spec")
    given = [name for name, value in layer.items() if value is not None]
    if kind != "layer" and given:
        option = "--" + given[0].replace("_", "-")
        raise click.UsageError(f"{option} applies to the layer targets (verify conv/tconv/pool ...), not to {target}")
    if kind == "layer":
        foreign = [name for name in given if name not in TARGET_OPTIONS[target]]
        if foreign:
            option = "--" + foreign[0].replace("_", "-")
            raise click.UsageError(f"{option} does not apply to verify {target}; it takes {_option_list(target)}")
    if kind != "python" and (kwargs is not None or emit_spec is not None):
        raise click.UsageError(f"{'--kwargs' if kwargs is not None else '--emit-spec'} applies to Python models (path/model.py:Net)")
    if force and emit_spec is None:
        raise click.UsageError("--force applies to --emit-spec (to replace an existing file)")
    from .. import verify as engine
    from ..render.output import stderr_line
    from ..render.progress import status

    if emit_spec is not None:
        _check_emit_options(emit_spec, as_json, device)
        emit_spec = engine.check_destination(emit_spec, force=force, protected=[target.rpartition(":")[0]])
        _check_emit_options(emit_spec, as_json, device)  # /dev/stdout is stdout

    if kind == "python":
        if input_shape is None:
            raise click.UsageError("a Python model needs --input, one sample's C×H×W without the batch (e.g. --input 1x28x28)")
        _check_python_file(target)
        with contextlib.redirect_stdout(sys.stderr), status("building and running the model with torch"):  # what the model prints must not mix with the report (--json)
            engine.import_torch(freeze_gc=True)
            report = engine.verify_python_target(target, input_shape, kwargs, batch=batch, dtype=dtype, device=device, max_memory=max_memory)
    else:
        if kind == "layer":
            model = _layer_model(target, input_shape, {k: (LAYER_DEFAULTS[k] if v is None else v) for k, v in layer.items()})
            input_shape = None
        else:
            model = _spec_model(target, input_shape)
        from ..graph import ModelError

        try:
            summary = model.summary(batch=batch, dtype=dtype, input_shape=input_shape)
        except ModelError as error:  # the engine's verdict comes first: torch never runs
            _engine_failure(ctx, error, as_json, device)
            return
        slow = half_precision_on_cpu(summary.totals.macs, dtype, device)
        if slow:
            stderr_line(f"warning: {slow}")
        count = len(summary.rows)
        with status(f"running {count:,} layer{'s' if count != 1 else ''} with torch on {device}"):
            engine.import_torch(freeze_gc=True)
            report = engine.verify_summary(summary, device=device, max_memory=max_memory, kind=kind)
    from ..cli import settings

    show(report, style=style, as_json=as_json, out=sys.stderr if emit_spec == "-" else None, settings=settings(ctx))
    if emit_spec is not None and report.ok:
        rows = engine.emit_spec(report, emit_spec, force=force)
        where = "the spec to stdout" if emit_spec == "-" else emit_spec
        stderr_line(f"wrote {where} ({rows} layers; same totals, and the same output as the model on a random input)")
    elif emit_spec is not None:
        stderr_line(f"note: {emit_spec} was not written: convcalc and torch disagree")
    if not report.ok:
        count = len(report.mismatches)
        stderr_line(f"error: {count} disagreement{'s' if count != 1 else ''} between convcalc and torch (see above)")
        ctx.exit(1)


def _check_emit_options(path: str, as_json: bool, device: str) -> None:
    if not path:
        raise click.BadParameter("needs a file name (or - for stdout), got ''", param_hint="--emit-spec")
    if path == "-" and as_json:
        raise click.UsageError("--emit-spec - writes the spec to stdout, where --json writes the report; choose one, or name a file")
    if device == "meta":
        raise click.UsageError("--emit-spec proves the spec by running it beside the model on real numbers: use --device cpu (or cuda), not meta")


def _option_list(target: str) -> str:
    return ", ".join("--" + name.replace("_", "-") for name in sorted(TARGET_OPTIONS[target]))


def _is_python_target(target: str) -> bool:
    where, sep, attribute = target.rpartition(":")
    if target.endswith(".py"):
        raise click.UsageError(f"name the model inside {target}: {target}:ClassName (or :factory)")
    return bool(sep and where and attribute and not os.path.exists(target))


#: Above this many MACs, a float16/bfloat16 run on CPU gets a warning first: CPUs without native
#: half-precision kernels run it many times slower than float32 (a U-Net at batch 3 took minutes).
HALF_CPU_MACS = 1_000_000_000


def half_precision_on_cpu(macs: int, dtype: str, device: str) -> str | None:
    """The warning for a large model verified in float16/bfloat16 on CPU, or None."""
    if device != "cpu" or dtype not in ("float16", "bfloat16") or macs <= HALF_CPU_MACS:
        return None
    return (
        f"{dtype} on cpu: {macs / 1e9:,.1f} GMACs in half precision can take many times longer than in float32"
        " on CPUs without native half-precision kernels; --device meta checks the same shapes without computing,"
        " --dtype float32 the same shapes and counts"
    )


def _check_python_file(target: str) -> None:
    """A Python target's file exists and is a regular file (checked before torch is imported)."""
    from ..reader import check_regular

    where = target.rpartition(":")[0]
    if where.endswith(".py") or "/" in where or os.sep in where:
        check_regular(where, what="Python file")


def _spec_model(path: str, input_shape: tuple[int, ...] | None) -> Any:
    from ..packaged import load_named_model
    from ..sizes import format_size

    loaded = load_named_model(path)
    if input_shape is not None and len(input_shape) != len(loaded.input_shape):
        raise click.BadParameter(
            f"{format_size(input_shape)} has {len(input_shape)} sizes; the spec's input has {len(loaded.input_shape)}"
            " (C, then the spatial sizes)",
            param_hint="--input",
        )
    return loaded


def _layer_model(word: str, size: tuple[int, ...] | None, options: dict[str, Any]) -> Any:
    """One calculator layer as a one-node model; the calculator's verdict (and message) comes first."""
    from .. import calc
    from ..builder import SpecBuilder
    from .calculator import command_line_values, spatial_size

    if size is None:
        raise click.UsageError(f"verify {word} needs --in (the spatial input size, e.g. --in 227)")
    if options["kernel_size"] is None:
        raise click.UsageError(f"verify {word} needs --k (the kernel size)")
    spatial, _ = spatial_size(size, options["dims"])
    channels = 1
    if word == "pool":
        if isinstance(options["padding"], str):
            raise click.BadParameter("pooling takes a number of padding, not 'same' or 'valid'", param_hint="--p")
        kwargs = {key: options[key] for key in ("kernel_size", "stride", "padding", "ceil_mode")}
        if options["kind"] == "max":
            kwargs["dilation"] = options["dilation"]
        elif options["dilation"] is not None:
            raise click.BadParameter("average pooling has no dilation", param_hint="--d")
        type_name = calc.layer_type(f"{options['kind']}pool", len(spatial))
    else:
        channels = options["in_channels"]
        kwargs = {key: options[key] for key in ("kernel_size", "stride", "padding", "dilation", "out_channels", "groups")}
        kwargs["bias"] = not options["no_bias"]
        if word == "conv":
            kwargs["padding_mode"] = options["padding_mode"]
        else:
            kwargs["output_padding"] = options["output_padding"]
        type_name = calc.layer_type(word, len(spatial))
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    with command_line_values():  # a bad option value is exit 2, as for the calculator itself
        step = calc.calculate(type_name, spatial, in_channels=channels, **kwargs)  # ShapeError: the calculator's message
    built = SpecBuilder(f"{type_name} {step.layer.describe()}".strip(), (channels, *spatial), path=f"verify {word}")
    built.add(step.layer, name=type_name)
    return built.model()


def _engine_failure(ctx: click.Context, error: Any, as_json: bool, device: str) -> None:
    """convcalc's own verdict (an invalid model): the rows so far, the diagnosis, exit 1; torch never ran."""
    from ..cli import settings
    from ..render import verify as render
    from ..render.output import Output

    render.engine_failure(error, Output.for_stdout(as_json=as_json, settings=settings(ctx)), device=device)
    ctx.exit(1)


def show(
    report: VerifyReport,
    *,
    style: str = "table",
    as_json: bool = False,
    out: TextIO | None = None,
    rich: bool | None = None,
    settings: Any = None,
) -> None:
    """Print ``report`` as JSON, torchsummary's classic table, or convcalc's table (the terminal
    table when ``out`` is stdout on a terminal, or ``rich=True``); see ``render/verify.py``."""
    from ..render import verify as render
    from ..render.output import JSON, PLAIN, RICH, Output, is_terminal

    stream = out if out is not None else sys.stdout
    if rich is None:
        rich = stream is sys.stdout and is_terminal(stream)
    fmt = JSON if as_json else (RICH if rich else PLAIN)
    render.report(report, Output(format=fmt, stream=stream, settings=settings), style=style)
