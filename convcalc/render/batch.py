"""``convcalc batch``'s rows: CSV (the input columns, then output, error[, ok]) or JSON lines.

Both formats are for scripts, so a terminal gets the same text as a pipe, except that a cell's
control characters and escape sequences are shown there (``\x1b[2J``), not obeyed: piped, the
CSV is the input's cells as they were. The C×H×W/D×H×W note of ambiguous sizes is said once on
stderr (with the first row's ``file:line`` and a count).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from . import text
from .output import is_terminal, warn

if TYPE_CHECKING:
    from ..batch import Answer


def write(items: Iterable[tuple[int, list[str], Answer, bool | None]], stream: TextIO, *, as_json: bool, path: str) -> int:
    """Write every row of :func:`convcalc.batch.run`; returns the exit code: 0 when every row is
    valid and every expect agrees (with an expect column, a row agrees when ok: an invalid layer
    whose expect is ``error``), else 1."""
    iterator = iter(items)
    _, header, _, _ = next(iterator)
    good = True
    notes: dict[str, tuple[int, int]] = {}
    if as_json:
        ascii = not text.can_encode(getattr(stream, "encoding", None) or "utf-8")
        columns = header[: len(header) - (3 if header[-1] == "ok" else 2)]
        dumps = json.JSONEncoder(ensure_ascii=ascii, separators=(",", ":")).encode
        for line, row, answer, ok in iterator:
            record: dict[str, object] = dict(zip(columns, row))
            record.update(output=answer.output, error=answer.error, line=line)
            if ok is not None:
                record["ok"] = ok
            good = good and (answer.error is None if ok is None else ok)
            if answer.note:
                first, count = notes.get(answer.note, (line, 0))
                notes[answer.note] = (first, count + 1)
            stream.write(dumps(record) + "\n")
    else:
        writer: Any = csv.writer(stream, lineterminator="\n")
        if is_terminal(stream):
            writer = _Visible(writer)
        writer.writerow(header)
        for line, row, answer, ok in iterator:
            if ok is None:
                writer.writerow([*row, answer.output or "", answer.error or ""])
            else:
                writer.writerow([*row, answer.output or "", answer.error or "", "true" if ok else "false"])
            good = good and (answer.error is None if ok is None else ok)
            if answer.note:
                first, count = notes.get(answer.note, (line, 0))
                notes[answer.note] = (first, count + 1)
    warn(
        f"{path}:{first}: {note}" + (f" (and {count - 1} more row{'s' if count > 2 else ''})" if count > 1 else "")
        for note, (first, count) in notes.items()
    )
    return 0 if good else 1


class _Visible:
    """A CSV writer for a terminal: every cell through :func:`text.visible`."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def writerow(self, row: list[str]) -> None:
        self.writer.writerow([text.visible(cell) for cell in row])
