"""``convcalc draw``: the architecture diagram of a spec (or of a torch module) as SVG, PNG or PDF."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import ConvcalcError, InputError
from ..options import SIZE, batch_option, complete_spec
from ..render.output import stderr_line
from ..render.text import one_line

FORMATS = ("svg", "png", "pdf")
PNG_HINT = "pip install 'convcalc[draw]' (CairoSVG)"


class DrawError(ConvcalcError):
    """The diagram cannot be written as asked (a missing optional renderer)."""


def choice(flag: str, choices: tuple[str, ...], help: str) -> Any:
    """An option taking one of ``choices``, the first by default (shown in --help)."""
    return click.option(flag, type=click.Choice(choices), default=choices[0], show_default=True, help=help)


@click.command()
@click.argument("target", metavar="SPEC|NAME|FILE.py:MODEL", shell_complete=complete_spec)
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    metavar="FILE",
    help="Where to write the diagram; '-' is stdout. Default: the target's name with the format's extension.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="svg (default; no extra dependency), png or pdf (need CairoSVG). Default: from -o's extension.",
)
@choice("--style", ("layered", "graph"),
        "layered: feature maps as boxes, the classic CNN figure; graph: a box per layer, with branches and merges.")
@click.option("--flat", is_flag=True, help="layered: flat rectangles instead of boxes in perspective.")
@click.option(
    "--all-layers",
    "all_layers",
    is_flag=True,
    help="Draw activations, norms and pooling as their own boxes (default: folded into the layer before).",
)
@choice("--direction", ("tb", "lr"), "graph: top to bottom or left to right.")
@choice("--theme", ("light", "dark"), "Colours for a light or dark page.")
@click.option(
    "--title",
    default=None,
    help="Title above the drawing (default: the model's name and input).",
)
@click.option(
    "--in",
    "--input",
    "input_shape",
    type=SIZE,
    default=None,
    help="Override the spec's input (C×H×W, no batch), e.g. 3x224x224.",
)
@batch_option
@click.option(
    "--kwargs",
    "kwargs",
    default=None,
    metavar="JSON",
    help="Python model: constructor arguments, e.g. '{\"num_classes\": 10}'.",
)
@click.pass_context
def draw(
    ctx: click.Context,
    target: str,
    output: str | None,
    fmt: str | None,
    style: str,
    flat: bool,
    all_layers: bool,
    direction: str,
    theme: str,
    title: str | None,
    input_shape: tuple[int, ...] | None,
    batch: int,
    kwargs: str | None,
) -> None:
    """The architecture diagram of a model, as students put it in their reports — no torch needed.

    TARGET is a spec (model.yaml), a packaged example's name (vgg16; convcalc model --list) or a
    Python model (path/model.py:Net, which needs torch and --input). A model that does not fit
    together is drawn up to the failing layer, marked red, and the diagnosis goes to stderr (exit 1).

    \b
      convcalc draw mnist_cnn -o mnist_cnn.svg
      convcalc draw vgg16 -o vgg16.svg --flat
      convcalc draw resnet18 --style graph -o resnet18.svg
      convcalc draw unet --style graph --direction lr -o unet.svg
      convcalc draw lenet5 -o - --theme dark > lenet5.svg
      convcalc draw my_model.yaml --input 3x64x64 -o my_model.png      # needs CairoSVG
      convcalc draw model.py:Net --input 1x28x28 -o net.svg

    Sizes are drawn on bounded scales (√ for H and W, log for channels and features), so a
    224×224×64 map and a 7×7×512 one fit in the same picture; the labels give the exact shapes.
    """
    from ..draw import Options, draw_layout, items_from_summary, to_svg
    from ..reader import output_target
    from ..sizes import format_shape

    fmt = fmt or _format_of(output)
    if fmt != "svg":
        _converter(fmt)  # fail before any work when the renderer is missing
    destination = output_target(output if output is not None else _default_output(target, fmt), option="-o", example=f"model.{fmt}")
    from .verify import _is_python_target

    failure: ConvcalcError | None = None
    if _is_python_target(target):
        items, name, shape = _python_items(target, input_shape, batch, kwargs)
    else:
        if kwargs:
            raise click.UsageError("--kwargs applies to Python models (path/model.py:Net)")
        from ..graph import ModelError
        from .verify import _spec_model

        model = _spec_model(target, input_shape)
        name, shape = model.name, model.full_input(batch, input_shape)
        try:
            summary = model.summary(batch=batch, input_shape=input_shape)
            items = items_from_summary(summary)
        except ModelError as error:
            failure = error
            items = items_from_summary(error.summary, error.node)
    batch_text = f", batch {batch}" if batch > 1 else ""
    heading = title if title is not None else f"{name} · input {format_shape(shape[1:])}{batch_text}"
    options = Options(
        flat=flat,
        all_layers=all_layers,
        direction=direction,
        title=heading,
        error=f"error: {failure.message}" if failure else "",
    )
    document = to_svg(draw_layout(items, style, options), theme, title=heading)
    _write(document, fmt, destination)
    if failure is not None:  # the same line as `model`; its rows are the drawing
        from ..render.errors import error_line

        stderr_line(error_line(failure.message))
        ctx.exit(1)


def _format_of(output: str | None) -> str:
    ext = os.path.splitext(output or "")[1].lower().lstrip(".")
    return ext if ext in FORMATS else "svg"


def _default_output(target: str, fmt: str) -> str:
    stem = os.path.splitext(os.path.basename(target.rpartition(":")[2] if ":" in target and not os.path.exists(target) else target))[0]
    return f"{stem or 'model'}.{fmt}"


def _converter(fmt: str) -> Any:
    """CairoSVG's svg2png/svg2pdf, or a one-line error with the install command."""
    try:
        import cairosvg  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except (
        ImportError,
        OSError,
    ) as error:  # OSError: the cairo library itself is missing
        raise DrawError(
            f"--format {fmt} needs CairoSVG ({type(error).__name__}: {error}); install it with: {PNG_HINT}, or write SVG (the default)"
        ) from None
    return cairosvg.svg2png if fmt == "png" else cairosvg.svg2pdf


def _write(document: str, fmt: str, output: str) -> None:
    data: bytes | str = document if fmt == "svg" else _converter(fmt)(bytestring=document.encode("utf-8"))
    if output == "-":
        if isinstance(data, str):
            sys.stdout.write(data)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        return
    from ..reader import open_output

    handle = open_output(output, option="-o", binary=not isinstance(data, str))
    try:
        with handle:
            handle.write(data)
    except OSError as error:  # a full disk, a quota
        raise InputError(f"-o {output}: cannot write it ({error.strerror or error})", file=output) from None
    stderr_line(f"wrote {one_line(output)}")


def _python_items(
    target: str, input_shape: tuple[int, ...] | None, batch: int, kwargs: str | None
) -> tuple[list[Any], str, tuple[int, ...]]:
    """A user's nn.Module run once through ``convcalc.verify``: its leaf modules, in the order they ran."""
    import json

    from .. import verify as engine
    from ..draw.model import Item, family_of, input_item

    if input_shape is None:
        raise click.UsageError("a Python model needs --input, one sample's C×H×W without the batch (e.g. --input 1x28x28)")
    try:
        arguments = json.loads(kwargs) if kwargs else {}
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--kwargs") from None
    if not isinstance(arguments, dict):
        raise click.BadParameter("must be a JSON object like '{\"num_classes\": 10}'", param_hint="--kwargs")
    from .verify import _check_python_file

    _check_python_file(target)  # before torch is imported (seconds): a missing file, a FIFO, a device
    engine.import_torch(freeze_gc=True)
    module = engine.load_python_model(target, arguments)
    name = target.rpartition(":")[2]
    report = engine.verify_python(module, input_shape, name=name, batch=batch)
    items = [input_item(input_shape)]
    previous = items[0].name
    for check in report.checks:
        shape = check.torch_output_shape if check.torch_output_shape is not None else check.output_shape
        first: Any = shape[0] if shape and isinstance(shape[0], tuple) else shape  # a module with several outputs: the first
        detail = check.layer.describe() if check.layer is not None else ""
        items.append(Item(check.name, check.type, family_of(check.type), tuple(first[1:]), (previous,), detail))
        previous = check.name
    if report.sequential is not None:
        stderr_line(one_line(f"note: {name} is not a plain chain of modules ({report.sequential}); drawn as its leaf modules in the order they ran"))
    if not report.ok:
        stderr_line(one_line(f"note: convcalc and torch disagree on {len(report.mismatches)} layer(s); the shapes drawn are torch's (see convcalc verify {target})"))
    return items, name, report.input_shape
