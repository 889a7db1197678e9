"""The ``convcalc verify`` command: parse the target, call :mod:`convcalc.verify`, render its report.

``convcalc.cli`` imports this module only when ``verify`` runs (or for its --help). Importing it
loads the engine (graph, layers: the renderers it uses read summary rows) but not torch:
``convcalc.verify``, the package that imports torch, is imported inside the command.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
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
    window_options,
)
from ..render import (
    Column,
    human_count,
    plain_table,
    render_plain,
    render_rich,
    to_json,
    total_lines,
)

if TYPE_CHECKING:
    from ..verify import LayerCheck, VerifyReport

F = TypeVar("F", bound=Callable[..., Any])

LAYER_TARGETS = ("conv", "tconv", "pool")
STYLES = ("table", "classic")
DEVICES = ("cpu", "cuda", "meta")
MB = 1024.0**2

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


def _kwargs(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{value!r} is not JSON ({error.msg}); write it like '{{\"num_classes\": 10}}'") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"must be a JSON object like '{{\"num_classes\": 10}}', got {value!r}")
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
              help="Python model whose modules run in sequence: write it as a convcalc spec, proven to compute"
                   " what the model computes (- for stdout; an existing file needs --force).")
@click.option("--force", is_flag=True, default=False, help="--emit-spec may replace an existing file.")
@layer_options
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
    kwargs: dict[str, Any],
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
    if kind != "python" and (kwargs or emit_spec is not None):
        raise click.UsageError(f"{'--kwargs' if kwargs else '--emit-spec'} applies to Python models (path/model.py:Net)")
    if force and emit_spec is None:
        raise click.UsageError("--force applies to --emit-spec (to replace an existing file)")
    if emit_spec is not None:
        _check_emit_options(emit_spec, as_json, device)

    from .. import verify as engine

    if emit_spec is not None:
        engine.check_destination(emit_spec, force=force, protected=[target.rpartition(":")[0]])

    if kind == "python":
        if input_shape is None:
            raise click.UsageError("a Python model needs --input, one sample's C×H×W without the batch (e.g. --input 1x28x28)")
        with contextlib.redirect_stdout(sys.stderr):  # what the model prints must not mix with the report (--json)
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
        engine.import_torch(freeze_gc=True)
        report = engine.verify_summary(summary, device=device, max_memory=max_memory, kind=kind)
    show(report, style=style, as_json=as_json, out=sys.stderr if emit_spec == "-" else None)
    if emit_spec is not None and report.ok:
        engine.emit_spec(report, emit_spec, force=force)
        where = "the spec to stdout" if emit_spec == "-" else emit_spec
        click.echo(f"wrote {where} ({len(report.checks)} layers; same totals, and the same output as the model on a random input)", err=True)
    elif emit_spec is not None:
        click.echo(f"note: {emit_spec} was not written: convcalc and torch disagree", err=True)
    if not report.ok:
        count = len(report.mismatches)
        click.echo(f"error: {count} disagreement{'s' if count != 1 else ''} between convcalc and torch (see above)", err=True)
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
    from .calculator import spatial_size

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
    step = calc.calculate(type_name, spatial, in_channels=channels, **kwargs)  # ShapeError: the calculator's message
    built = SpecBuilder(f"{type_name} {step.layer.describe()}".strip(), (channels, *spatial), path=f"verify {word}")
    built.add(step.layer, name=type_name)
    return built.model()


def _engine_failure(ctx: click.Context, error: Any, as_json: bool, device: str) -> None:
    """convcalc's own verdict (an invalid model): the rows so far, the diagnosis, exit 1; torch never ran."""
    from ..cli import use_rich

    if as_json:
        click.echo(to_json({"error": error.as_dict(), **error.summary.as_dict(), "ok": False, "device": device, "torch_version": None}))
    elif error.summary.rows:
        render_rich(error.summary, totals=False) if use_rich() else render_plain(error.summary, sys.stdout, totals=False)
    click.echo(f"error: {error.message}", err=True)
    click.echo("note: convcalc's verdict comes first, so torch was not run (the meta device would skip some of CPU torch's checks)", err=True)
    ctx.exit(1)


# -- rendering ----------------------------------------------------------------------------------


def show(report: VerifyReport, *, style: str = "table", as_json: bool = False, out: TextIO | None = None, rich: bool | None = None) -> None:
    """Print ``report`` as JSON, torchsummary's classic table, or convcalc's table (rich on a terminal)."""

    out = out or sys.stdout
    if as_json:
        out.write(to_json(report.as_dict()) + "\n")
        return
    if rich is None:
        rich = out is sys.stdout and sys.stdout.isatty()
    if style == "classic":
        for line in classic_lines(report):
            out.write(line + "\n")
        out.write(f"Verified on {report.device} with torch {report.torch_version}: {verdict(report)}\n")
        if report.peak_bytes is not None:
            from ..verify import format_bytes

            out.write(f"Peak CUDA memory {format_bytes(report.peak_bytes)} measured; convcalc's estimate {format_bytes(report.estimate_bytes)}\n")
    else:
        render_table(report, out, rich=rich)
    if not report.ok:
        out.write("\n")
        write_differences(report, out)
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)


def _mark(check: LayerCheck) -> str:
    return {True: "✓", False: "✗", None: "·"}[check.confirmed]


def _shape(shape: Any) -> str:
    from ..graph import describe_shape

    return describe_shape(shape) if shape else "?"


def _count(value: int) -> str:

    return human_count(value) if value else "0"


COLUMNS: list[Column] = [
    Column("#", lambda c: str(c.index), right=True),
    Column("name", lambda c: "  " * c.depth + c.name),
    Column("type", lambda c: c.type),
    Column("input", lambda c: _shape(c.input_shape)),
    Column("output", lambda c: _shape(c.output_shape)),
    Column("params", lambda c: f"{c.params:,}", right=True),
    Column("MACs", lambda c: _count(c.macs), right=True),
    Column("✓", _mark),
]


def header(report: VerifyReport) -> str:
    from ..sizes import format_shape

    return f"{report.name}: input {format_shape(report.input_shape)} ({report.dtype}) on {report.device}, torch {report.torch_version}"


def footer(report: VerifyReport) -> list[tuple[str, str]]:
    from ..verify import format_bytes

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
    """``; not judged: timm.layers.linear.Linear at head.fc, …; 12.3% of MACs in own forwards``."""
    unknown: dict[str, list[str]] = {}
    for check in report.checks:
        if not check.known and not check.own:
            unknown.setdefault(check.class_path or check.type, []).append(check.name)
    parts = []
    for kind, names in unknown.items():
        more = f" (+{len(names) - 2} more)" if len(names) > 2 else ""
        parts.append(f"{kind} at {', '.join(names[:2])}{more}")
    text = f"; not judged (types convcalc does not know): {'; '.join(parts)}" if parts else ""
    own = sum(c.macs for c in report.checks if c.own)
    if own and report.totals.macs:
        text += f"; {100 * own / report.totals.macs:.1f}% of the MACs are computed in modules' own forwards (rows 'own forward', counted, not judged)"
    return text


def render_table(report: VerifyReport, out: TextIO, *, rich: bool) -> None:
    cells = [[column.cell(check) for column in COLUMNS] for check in report.checks]
    if rich:
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = Console(file=out)
        table = Table(title=header(report), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in COLUMNS:
            table.add_column(column.title, justify="right" if column.right else "left", no_wrap=True)
        for check, row in zip(report.checks, cells):
            style = "red" if check.confirmed is False else ("dim" if check.confirmed is None else None)
            table.add_row(*row, style=style)
        console.print(table)
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column(justify="right")
        for key, value in footer(report):
            grid.add_row(key, value)
        console.print(grid)
        console.print(verdict(report), style="green" if report.ok else "bold red", highlight=False)
        return

    out.write(header(report) + "\n")
    for line in plain_table([c.title for c in COLUMNS], cells, [c.right for c in COLUMNS]):
        out.write(line + "\n")
    out.write("\n")
    lines = footer(report)
    width = max(len(key) for key, _ in lines)
    for key, value in lines:
        out.write(f"{(key + ':').ljust(width + 1)} {value}\n")
    out.write(verdict(report) + "\n")


def write_differences(report: VerifyReport, out: TextIO) -> None:
    """The table of disagreements: layer, type, what, convcalc's value, torch's."""

    rows = [[m.layer, m.type, m.what, _value(m.engine), _value(m.torch)] for m in report.mismatches]
    out.write("Differences between convcalc and torch:\n")
    for line in plain_table(["layer", "type", "what", "convcalc", "torch"], rows, [False] * 5):
        out.write(line + "\n")


def _value(value: Any) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return _shape(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def classic_lines(report: VerifyReport) -> list[str]:
    """torchsummary.summary's output, line for line, from the rows its hooks would record."""
    from ..sizes import DTYPE_BYTES

    size = DTYPE_BYTES[report.dtype]
    batch = -1 if report.input_shape[0] == 1 else report.input_shape[0]
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
    input_mb = abs(math.prod(report.input_shape[1:]) * batch * size / MB)
    output_mb = abs(2.0 * total_output * size / MB)
    params_mb = abs(total_params * size / MB)
    lines += [
        "================================================================",
        "Total params: {0:,}".format(total_params),
        "Trainable params: {0:,}".format(trainable),
        "Non-trainable params: {0:,}".format(total_params - trainable),
        "----------------------------------------------------------------",
        "Input size (MB): %0.2f" % input_mb,
        "Forward/backward pass size (MB): %0.2f" % output_mb,
        "Params size (MB): %0.2f" % params_mb,
        "Estimated Total Size (MB): %0.2f" % (params_mb + output_mb + input_mb),
        "----------------------------------------------------------------",
    ]
    return lines


def _flatten(values: Sequence[Any]) -> list[int]:
    flat: list[int] = []
    for value in values:
        flat.extend(_flatten(value) if isinstance(value, (list, tuple)) else [value])
    return flat
