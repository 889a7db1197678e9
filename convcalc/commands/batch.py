"""``convcalc batch FILE|-``: calculator answers for every row of a CSV file (for grading scripts)."""

from __future__ import annotations

import sys
from typing import IO, Any

import click

from ..options import json_option


@click.command()
@click.argument("path", metavar="FILE|-")
@json_option
@click.pass_context
def batch(ctx: click.Context, path: str, as_json: bool) -> None:
    """Answer every row of a CSV file in one process, e.g. to grade a course's answers.

    The header names the columns: layer (conv, tconv, maxpool, avgpool, pool or a torch class
    name like Conv2d), in (the input size as --in takes it), any calculator option by its short
    or long name (k, s, p, d, op, g, ceil, kind, dims, cin, cout, kernel_size, stride, padding,
    ceil_mode, in_channels, …; flags as true/false or 1/0; an empty cell is the default), and
    optionally expect (the student's answer; "error" for a layer that is invalid). Other
    columns are kept as they are.

    Prints the rows as CSV with output (as the calculator prints it), error (its one-line
    message, empty when valid) and, with expect, ok (true/false); --json prints one JSON object
    per row. Exit 0 when every row is valid and every expect agrees, 1 otherwise, 2 for a
    malformed file (its line is named). FILE - reads standard input.

    \b
      convcalc batch answers.csv > graded.csv
      printf 'layer,in,k,s,expect\\nconv,227,11,4,55\\n' | convcalc batch -
    """
    from .. import batch as engine
    from ..errors import SpecError
    from ..render import batch as render
    from ..render.progress import progress

    from ..reader import bounded_lines, check_stream

    check_stream(path, what="CSV file")  # a device or a FIFO without a writer: refused, not waited on
    try:
        stream = _open(path)
    except OSError as error:
        raise click.BadParameter(f"{path}: {error.strerror}", param_hint="FILE") from None
    shown = "<stdin>" if path == "-" else path
    try:
        with stream, progress(_size(stream), "answering rows") as bar:
            rows = engine.run(bounded_lines(stream, shown, MAX_LINE), shown)
            code = render.write(_tracked(rows, bar, stream) if bar.enabled else rows, sys.stdout, as_json=as_json, path=shown)
    except engine.BatchFileError as error:
        raise click.UsageError(error.message) from None
    except UnicodeDecodeError as error:
        raise click.UsageError(f"{shown} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except SpecError as error:  # pragma: no cover - every row error is caught per row
        raise click.UsageError(error.message) from None
    ctx.exit(code)


#: Longest CSV line read (a row of cells of at most batch.MAX_CELL characters fits many times).
MAX_LINE = 1_000_000


def _open(path: str) -> IO[Any]:
    """The file (or standard input) as text: UTF-8 with an optional BOM, newlines as csv wants."""
    import io

    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _size(stream: IO[Any]) -> int | None:
    """Bytes in the file (the progress bar's total), or None for a pipe."""
    import os
    import stat

    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size else None


def _tracked(rows: Any, bar: Any, stream: IO[Any], every: int = 1024) -> Any:
    """``rows`` as they come, telling ``bar`` how far into the file the reader is."""
    raw = getattr(stream, "buffer", None)
    for count, row in enumerate(rows, start=1):
        yield row
        if count % every == 0:
            if bar.total and raw is not None:
                bar.update(raw.tell())
            else:
                bar.advance(every)
