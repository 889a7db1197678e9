"""Click parameter types and options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .errors import SpecError
from .numbers import NotANumber, read_per_axis, read_whole, within
from .sizes import DTYPE_BYTES, MAX_SIZE, parse_size

F = TypeVar("F", bound=Callable[..., Any])


class SizeType(click.ParamType):
    """``227``, ``32x64`` or ``16x112x112``: whole numbers ≥ 1."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_size(value)
        except SpecError as error:
            self.fail(error.message, param, ctx)


class IntsType(click.ParamType):
    """``3`` or ``3x5``: one whole number, or one per spatial axis (any sign: the layer judges)."""

    name = "N|HxW"

    def __init__(self, words: tuple[str, ...] = ()) -> None:
        self.words = words
        if words:
            self.name = "N|HxW|" + "|".join(words)

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str:  # click 8.2 adds ctx
        return self.name  # as written (N|HxW), not upper-cased by click

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return read_per_axis(value, self.words)
        except NotANumber as error:
            self.fail(str(error), param, ctx)


class WholeType(click.ParamType):
    """A whole number by numbers.py's rule, within ``low..high`` (click's int takes ``٣`` and ``1_1``)."""

    name = "N"

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            if isinstance(value, int) and not isinstance(value, bool):
                return within(value, self.low, self.high)
            return read_whole(str(value), self.low, self.high)
        except NotANumber as error:
            self.fail(str(error), param, ctx)


SIZE = SizeType()
#: Channel counts and groups: 1 to MAX_SIZE.
COUNT = WholeType(1, MAX_SIZE)
INTS = IntsType()
PADDING = IntsType(("same", "valid"))


def size_option(f: F | None = None, *, required: bool = True, help: str = "Input size: 227, HxW (32x64) or DxHxW.") -> Any:
    """``@size_option`` (required), or ``@size_option(required=False, help=...)``."""
    decorator = click.option("--in", "--input", "size", type=SIZE, required=required, help=help)
    return decorator(f) if f is not None else decorator


def dims_option(f: F) -> F:
    return click.option(
        "--dims",
        type=WholeType(1, 3),
        default=None,
        help="Spatial dimensions (1, 2 or 3); one more number in the size than this is channels first (CxHxW)."
        " Default: from the size (a single number means 2-D, square).",
    )(f)


def _record_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """--json is remembered for the error path (cli.fail), which renders errors as JSON too."""
    if value:
        from .render.output import Settings

        ctx.find_root().ensure_object(Settings).json = True
    return value


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, callback=_record_json, help="Print one JSON document instead of text.")(f)


def _record_table(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    from .render.output import Settings

    chosen = ctx.find_root().ensure_object(Settings)
    if param.name == "wide":
        chosen.wide = bool(value)
    elif value:
        names = tuple(part.strip() for part in str(value).split(",") if part.strip())
        chosen.columns = names
    return value


def table_options(titles: tuple[str, ...]) -> Callable[[F], F]:
    """--wide and --columns of commands that draw a table on the terminal (piped output always
    has every column)."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value:
            known = {t.lower(): t for t in titles}
            unknown = [p for p in (part.strip() for part in str(value).split(",")) if p and p.lower() not in known]
            if unknown:
                raise click.BadParameter(f"no column {unknown[0]!r}; the columns are {', '.join(titles)}")
        return _record_table(ctx, param, value)

    return _stacked(
        [
            click.option("--wide", "wide", is_flag=True, callback=_record_table, expose_value=False,
                         help="On a terminal: every column, even when the table is wider than the window."),
            click.option("--columns", "columns", default=None, metavar="NAME,...", callback=check, expose_value=False,
                         help=f"On a terminal: only these columns ({', '.join(titles)})."),
        ]
    )


def explain_option(f: F) -> F:
    return click.option("--explain", is_flag=True, help="Show the worked formula, one line per axis.")(f)


def _stacked(decorators: list[Callable[[F], F]]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def window_options(*, required: bool = True) -> Callable[[F], F]:
    """--k --s --p --d of conv, tconv and pool (and of verify's layer targets, where --k is optional)."""
    return _stacked(
        [
            click.option("--k", "--kernel-size", "kernel_size", type=INTS, required=required, help="Kernel size: 3 or 3x5."),
            click.option("--s", "--stride", "stride", type=INTS, default=None, help="Stride (default 1; pool: the kernel)."),
            click.option("--p", "--padding", "padding", type=PADDING, default=None, help="Padding: N, HxW, same or valid."),
            click.option("--d", "--dilation", "dilation", type=INTS, default=None, help="Dilation (default 1)."),
        ]
    )


def channel_options(*, defaults: bool = True) -> Callable[[F], F]:
    """--in-channels/--out-channels/--g/--no-bias of conv and tconv (they change only params and MACs).

    ``defaults=False`` leaves unset options None, for commands that must tell "not given" apart.
    """
    return _stacked(
        [
            click.option("--in-channels", "--cin", "in_channels", type=COUNT, default=1 if defaults else None, show_default=defaults, help="Input channels (1)."),
            click.option("--out-channels", "--cout", "out_channels", type=COUNT, default=1 if defaults else None, show_default=defaults, help="Output channels (1)."),
            click.option("--g", "--groups", "groups", type=WholeType(), default=1 if defaults else None, show_default=defaults, help="Groups (1)."),
            click.option("--no-bias", "no_bias", is_flag=True, default=False if defaults else None, help="Leave out the bias (bias=False)."),
        ]
    )


def output_padding_option(f: F) -> F:
    return click.option("--op", "--output-padding", "output_padding", type=INTS, default=None, help="Output padding (< stride or dilation).")(f)


def padding_mode_option(*, default: str | None = "zeros") -> Callable[[F], F]:
    return click.option(
        "--padding-mode",
        type=click.Choice(["zeros", "reflect", "replicate", "circular"]),
        default=default,
        show_default=default is not None,
        help="How the border is padded (zeros).",
    )


def pool_options(*, defaults: bool = True) -> Callable[[F], F]:
    """--kind and --ceil of pool."""
    return _stacked(
        [
            click.option("--kind", type=click.Choice(["max", "avg"]), default="max" if defaults else None, show_default=defaults, help="Max or average pooling (max)."),
            click.option("--ceil", "--ceil-mode", "ceil_mode", is_flag=True, default=False if defaults else None, help="Round up (ceil_mode=True)."),
        ]
    )


def batch_option(f: F) -> F:
    return click.option("--batch", type=WholeType(1, 1_000_000), default=1, show_default=True, help="Batch size for shapes, MACs and memory.")(f)


def dtype_option(f: F) -> F:
    return click.option(
        "--dtype", type=click.Choice(list(DTYPE_BYTES)), default="float32", show_default=True, help="Element type for the memory lines."
    )(f)


def values_options(*, weight: bool = True) -> Callable[[F], F]:
    """--values/--weight/--bias: compute the actual output numbers (convcalc.values)."""
    options = [
        click.option(
            "--values",
            "values",
            metavar="MATRIX",
            default=None,
            help="Compute the output numbers for this input: JSON ([[1, 2], [3, 4]], a leading C or N, C axis"
            " allowed), rows like '1 2; 3 4', or @file holding either.",
        )
    ]
    if weight:
        options += [
            click.option(
                "--weight",
                metavar="MATRIX",
                default=None,
                help="The kernel for --values: k, kxk, or C_out×C_in/groups×k×k (tconv: C_in×C_out/groups×k×k); implies --k.",
            ),
            click.option("--bias", metavar="N|LIST", default=None, help="Bias for --values: a number or one per output channel (default none)."),
        ]
    return _stacked(options)


def complete_spec(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of a SPEC|NAME argument: files, and the packaged models' names (the
    file item first: click's bash script starts over at a file item, then adds the names)."""
    from click.shell_completion import CompletionItem

    from .packaged import model_names

    names = [CompletionItem(name) for name in model_names() if name.startswith(incomplete)]
    return [CompletionItem(incomplete, type="file"), *names]
