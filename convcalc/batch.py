"""``convcalc batch``: one calculator answer per CSV row, for grading scripts (pure: no click, no rich).

A row names a layer (``conv``, ``tconv``, ``maxpool``, ``avgpool``, ``pool`` or a torch class name),
an input size ``in`` as the calculators take it, any calculator option by its short or long name,
and optionally the student's ``expect``. Every answer comes from the engine the calculators use
(:func:`convcalc.calc.calculate_output`); identical questions are answered once (a bounded cache),
which is what makes a course's worth of rows quick. Nothing here prints.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from . import calc
from .errors import ConvcalcError, SpecError
from .sizes import format_size, parse_size, show_size

#: Column name (lower case, ``-`` as ``_``, leading ``--`` dropped) → the calculator option it sets.
OPTIONS = {
    "k": "kernel_size", "kernel_size": "kernel_size",
    "s": "stride", "stride": "stride",
    "p": "padding", "padding": "padding",
    "d": "dilation", "dilation": "dilation",
    "op": "output_padding", "output_padding": "output_padding",
    "g": "groups", "groups": "groups",
    "ceil": "ceil_mode", "ceil_mode": "ceil_mode",
    "cin": "in_channels", "in_channels": "in_channels",
    "cout": "out_channels", "out_channels": "out_channels",
    "no_bias": "no_bias", "bias": "bias",
    "padding_mode": "padding_mode",
    "count_include_pad": "count_include_pad",
    "divisor_override": "divisor_override",
    "kind": "kind",
    "dims": "dims",
}  # fmt: skip
FLAGS = ("ceil_mode", "no_bias", "bias", "count_include_pad")
#: Columns convcalc writes (an input column of the same name is replaced).
OUTPUT, ERROR, OK = "output", "error", "ok"
#: Longest cell accepted (characters); a longer one makes the file malformed.
MAX_CELL = 10_000
#: Distinct questions remembered at once (the cache is emptied when it is full).
MAX_CACHED = 200_000
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class BatchFileError(SpecError):
    """The file itself is malformed (no header, a missing ``layer``/``in`` column, a broken row):
    a usage error (exit 2) naming ``file:line``."""


class Answer(NamedTuple):
    """One row's answer: the output as the calculator prints it (or None), the error message
    (or None), and a note (the C×H×W/D×H×W warning) for the row."""

    output: str | None
    error: str | None
    note: str | None = None
    sizes: tuple[int, ...] = ()  # the output written out in full (``55`` of a square: (55, 55))


def column_key(name: str) -> str:
    """``"--Kernel-Size"`` → ``"kernel_size"``: how header names are matched."""
    return name.strip().lstrip("-").lower().replace("-", "_")


class Batch:
    """The columns of one file's header, and the answers to its rows (see :func:`run`)."""

    def __init__(self, header: Sequence[str], *, path: str = "<stdin>") -> None:
        self.path = path
        self.header = list(header)
        keys = [column_key(name) for name in self.header]
        for needed in ("layer", "in"):
            if needed not in keys and not (needed == "in" and "input" in keys):
                raise BatchFileError(
                    f"{path}:1: the header has no {needed!r} column; it needs layer and in (and any of k, s, p, d, op, g, ceil, …, expect)",
                    file=path, line=1,
                )
        self.layer_at = keys.index("layer")
        self.in_at = keys.index("in") if "in" in keys else keys.index("input")
        self.expect_at = keys.index("expect") if "expect" in keys else None
        self.options = [(i, OPTIONS[k]) for i, k in enumerate(keys) if k in OPTIONS]
        self.names = [option for _, option in self.options]
        seen: dict[str, str] = {}
        for i, option in self.options:
            if option in seen:
                raise BatchFileError(f"{path}:1: columns {seen[option]!r} and {self.header[i]!r} both set {option}", file=path, line=1)
            seen[option] = self.header[i]
        self.replaced = [i for i, k in enumerate(keys) if k in (OUTPUT, ERROR, OK)]
        self.key_at = [self.layer_at, self.in_at, *(i for i, _ in self.options)]
        self.pick = operator.itemgetter(*self.key_at)  # the row's question: always 2 or more cells
        self.cache: dict[tuple[str, ...], Answer] = {}
        self.layers: dict[tuple[Any, ...], Any] = {}

    @property
    def out_header(self) -> list[str]:
        kept = [name for i, name in enumerate(self.header) if i not in self.replaced]
        return kept + [OUTPUT, ERROR] + ([OK] if self.expect_at is not None else [])

    def answer(self, row: Sequence[str]) -> Answer:
        """The answer to one row, padded to the header's width (cached by the cells that define the question)."""
        key = self.pick(row)
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= MAX_CACHED:
                self.cache.clear()
            found = self.cache[key] = solve(key[0], key[1], dict(zip(self.names, key[2:])), layers=self.layers)
        return found


def solve(layer: str, size_text: str, cells: dict[str, str], *, layers: dict[tuple[Any, ...], Any] | None = None) -> Answer:
    """One question: layer word or class, input size text, option cells (empty = default).

    ``layers`` remembers the engine's layer (or its refusal) per layer type and options, so
    that rows asking about the same layer on other inputs only run ``output_shape``.
    """
    try:
        return _solve(layer.strip(), size_text.strip(), cells, layers)
    except ConvcalcError as error:
        return Answer(None, error.message)


def _solve(word: str, size_text: str, cells: dict[str, str], layers: dict[tuple[Any, ...], Any] | None) -> Answer:
    if not word:
        raise SpecError("layer is empty; write conv, tconv, maxpool, avgpool or a torch class name like Conv2d")
    if not size_text:
        raise SpecError("in is empty; write the input size like 227, 32x64 or 3x224x224")
    kind = cells.get("kind", "").strip().lower() or None
    dims_text = cells.get("dims", "").strip()
    dims = calc.parse_value(dims_text) if dims_text else None
    if dims is not None and dims not in (1, 2, 3):
        raise SpecError(f"dims must be 1, 2 or 3, got {dims_text!r}")
    channels_text = cells.get("in_channels", "").strip()
    in_channels = calc.parse_value(channels_text) if channels_text else None
    if in_channels is not None and (not isinstance(in_channels, int) or isinstance(in_channels, bool)):
        raise SpecError(f"in_channels must be a whole number, got {channels_text!r}")
    size = parse_size(size_text, what="in")
    lowered = word.lower()
    if lowered == "pool":
        lowered = f"{kind or 'max'}pool"
    elif kind is not None:
        raise SpecError(f"kind applies to layer 'pool' (max or avg), not to {word!r}")
    is_word = lowered.replace("_", "").replace("-", "") in calc.WORDS
    if not is_word and dims is None and word[-2:].lower() in ("1d", "2d", "3d"):
        dims = int(word[-2])  # Conv2d: the class says how many spatial axes
    reading = calc.read_size(
        size, dims, in_channels=in_channels, layer=lowered if is_word else "conv",
        flags=("a dims column of ", "an in_channels column of "),
    )
    type_name = calc.layer_type(lowered if is_word else word, len(reading.spatial))
    channels = reading.channels if reading.channels is not None else (in_channels or 1)
    layer = _layer(type_name, channels, cells, layers)
    out = layer.output_shape((channels, *reading.spatial))  # calc.calculate_output, its layer remembered
    spatial = out[1:]
    shown = f"{out[0]}x{format_size(spatial)}" if reading.channels is not None else show_size(spatial, reading.square)
    return Answer(shown, None, reading.warning, tuple(out) if reading.channels is not None else tuple(spatial))


def option_values(cells: dict[str, str]) -> dict[str, Any]:
    """The torch keyword arguments of a row's option cells (flags, words, numbers; empty = default)."""
    values: dict[str, Any] = {}
    for option, raw in cells.items():
        text = raw.strip()
        if not text or option in ("kind", "dims", "in_channels"):
            continue
        if option in FLAGS:
            lowered = text.lower()
            if lowered not in _TRUE + _FALSE:
                raise SpecError(f"{option}: {text!r} is not true/false or 1/0")
            values[option] = lowered in _TRUE
        elif option == "padding_mode":
            values[option] = text.lower()
        else:
            values[option] = calc.parse_value(text)
    if values.pop("no_bias", False):
        values["bias"] = False
    return values


def _layer(type_name: str, channels: int, cells: dict[str, str], layers: dict[tuple[Any, ...], Any] | None) -> Any:
    """``calc.calculator_layer`` for the row's options, remembered in ``layers`` (refusals too)."""
    if layers is None:
        return calc.calculator_layer(type_name, channels, option_values(cells))
    key = (type_name, channels, *cells.values())
    found = layers.get(key)
    if found is None:
        if len(layers) >= MAX_CACHED:
            layers.clear()
        try:
            found = calc.calculator_layer(type_name, channels, option_values(cells))
        except ConvcalcError as error:
            found = error
        layers[key] = found
    if isinstance(found, ConvcalcError):
        raise found
    return found


def agrees(answer: Answer, expect: str) -> bool:
    """Whether the student's ``expect`` is the answer: the same sizes (``55`` and ``55x55`` agree
    for a 2-D square; spaces and ``×`` do not matter), or ``error``/``invalid`` for a row the
    calculator refuses."""
    output = answer.output
    text = expect.strip().lower()
    if output is None:
        return text in ("error", "invalid")
    if text == output:
        return True
    if text.isascii() and text.isdigit() and output.isdigit():  # the common case, without parsing
        return text.lstrip("0") == output.lstrip("0")  # int() of each, without int() of 5,000 digits
    try:
        wanted = parse_size(text)
    except SpecError:
        return False
    return wanted == answer.sizes or wanted == parse_size(output)


def read_rows(lines: Iterable[str], path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-empty CSV row after the header; BatchFileError for a
    broken row (a cell over MAX_CELL characters, an unclosed quote)."""
    reader = csv.reader(lines, strict=True)
    try:
        for row in reader:
            if row and (len(row) > 1 or row[0].strip()):
                yield reader.line_num, row
    except csv.Error as error:
        raise BatchFileError(f"{path}:{reader.line_num}: not CSV ({error})", file=path, line=reader.line_num) from None


def field_limit() -> None:
    """Cells longer than MAX_CELL characters make the file malformed (bounded input)."""
    csv.field_size_limit(MAX_CELL)


def run(lines: Iterable[str], path: str) -> Iterator[tuple[int, list[str], Answer, bool | None]]:
    """Stream ``(line, row, answer, ok)`` for a CSV text stream (header first); ``ok`` is None
    without an ``expect`` column. The header comes as the first item's row with line 1 and no answer."""
    field_limit()
    rows = read_rows(lines, path)
    first = next(rows, None)
    if first is None:
        raise BatchFileError(f"{path}:1: the file is empty; it needs a header like layer,in,k,s,p,expect", file=path, line=1)
    batch = Batch(first[1], path=path)
    width = len(batch.header)
    yield first[0], batch.out_header, Answer(None, None), None
    for line, row in rows:
        if len(row) > width:
            raise BatchFileError(f"{path}:{line}: {len(row)} cells but the header has {width} columns", file=path, line=line)
        if len(row) < width:
            row = row + [""] * (width - len(row))  # a short row: its missing cells are empty
        answer = batch.answer(row)
        ok = None if batch.expect_at is None else agrees(answer, row[batch.expect_at])
        if batch.replaced:
            row = [cell for i, cell in enumerate(row) if i not in batch.replaced]
        yield line, row, answer, ok
