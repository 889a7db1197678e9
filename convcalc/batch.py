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
from .errors import ConvcalcError, MissingArgument, SpecError
from .layers import Layer
from .layers.spatial import Spatial
from .numbers import NotANumber, read_per_axis, read_whole
from .sizes import MAX_SIZE, format_size, parse_size, show_size

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
#: A chain step that works on 3x8x8, for the layers whose arguments no column sets.
CHAIN_EXAMPLES = {"Permute": "Permute([0, 2, 3, 1])", "Scale": "Scale([3, 1, 1])", "Bias": "Bias([3, 1, 1])", "Narrow": "Narrow(1, 0, 2)"}
FLAGS = ("ceil_mode", "no_bias", "bias", "count_include_pad")
#: Columns convcalc writes (an input column of the same name is replaced).
OUTPUT, ERROR, OK = "output", "error", "ok"
#: Longest cell accepted (characters); a longer one makes the file malformed.
MAX_CELL = 10_000
#: Distinct questions remembered at once (the cache is emptied when it is full).
MAX_CACHED = 200_000
#: Answers are remembered for the first PROBE rows worked out, and after that while at least one
#: row in REPEATS + 1 is a repeat: a file of all-distinct rows (no repeats) stops paying for it.
PROBE, REPEATS = 10_000, 8
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
    """The columns of one file's header, and the answers to its rows (see :func:`run`).

    The header is read once: which cell is the layer, the size, each option. A row's layer and
    option cells are its :class:`Question` (read once per distinct set of cells, its layers
    remembered); its size is all that is new on most rows.
    """

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
        question_at = [self.layer_at, *(i for i, _ in self.options)]
        getter = operator.itemgetter(*question_at)
        # the row's question: its layer and option cells (itemgetter of one index gives the cell itself)
        self.pick: Any = getter if len(question_at) > 1 else (lambda row: (getter(row),))
        self.questions: dict[tuple[str, ...], Question] = {}
        self.remembered = 0  # answers held by all questions (bounded by MAX_CACHED)
        self.hits = self.misses = 0  # rows answered from memory / worked out

    @property
    def out_header(self) -> list[str]:
        kept = [name for i, name in enumerate(self.header) if i not in self.replaced]
        return kept + [OUTPUT, ERROR] + ([OK] if self.expect_at is not None else [])

    def answer(self, row: Sequence[str]) -> Answer:
        """The answer to one row, padded to the header's width (remembered by its question and size)."""
        cells = self.pick(row)
        question = self.questions.get(cells)
        if question is None:
            if len(self.questions) >= MAX_CACHED:
                self.questions.clear()
            question = self.questions[cells] = Question(cells[0], dict(zip(self.names, cells[1:])))
        size_text = row[self.in_at]
        found = question.answers.get(size_text)
        if found is not None:
            self.hits += 1
            return found
        found = question.solve(size_text)
        self.misses += 1
        if self.misses <= PROBE or self.misses <= REPEATS * self.hits:  # remembering pays where rows repeat
            self.remembered += 1
            if self.remembered > MAX_CACHED:
                self.questions.clear()
                self.remembered = 0
            else:
                question.answers[size_text] = found
        return found


class Question:
    """A row's layer and option cells, read once: the layer word, ``kind``, ``dims`` and
    ``in_channels``, the torch arguments, and the engine's layer per number of spatial axes and
    channel count (or its refusal). :meth:`solve` answers it for one input size."""

    def __init__(self, layer: str, cells: dict[str, str]) -> None:
        self.word = layer.strip()
        self.cells = cells
        self.answers: dict[str, Answer] = {}
        self.layers: dict[tuple[int, int], Layer | ConvcalcError] = {}
        #: (spatial axes, channels) → a layer that answered such an input, and its output channels
        self.accepted: dict[tuple[int, int], tuple[Spatial, int]] = {}
        #: the accepted layer of a one-number size, and how many axes one number stands for
        self.square: tuple[Spatial, int] | None = None
        self.refusal: ConvcalcError | None = None  # an option cell that no size can rescue
        self.kind_refusal: ConvcalcError | None = None
        self.dims: int | None = None
        self.in_channels: int | None = None
        try:
            self._read(cells)
        except ConvcalcError as error:
            self.refusal = error

    def _read(self, cells: dict[str, str]) -> None:
        kind = cells.get("kind", "").strip().lower() or None
        dims_text = cells.get("dims", "")
        dims = number_of("dims", dims_text) if dims_text.strip() else None
        channels_text = cells.get("in_channels", "")
        in_channels = number_of("in_channels", channels_text) if channels_text.strip() else None
        lowered = self.word.lower()
        if lowered == "pool":
            lowered = f"{kind or 'max'}pool"
        elif kind is not None:
            self.kind_refusal = SpecError(f"kind applies to layer 'pool' (max or avg), not to {self.word!r}")
        self.is_word = lowered.replace("_", "").replace("-", "") in calc.WORDS
        if not self.is_word and dims is None and self.word[-2:].lower() in ("1d", "2d", "3d"):
            dims = int(self.word[-2])  # Conv2d: the class says how many spatial axes
        self.lowered = lowered if self.is_word else "conv"  # how read_size names the layer
        self.dims, self.in_channels = dims, in_channels

    def solve(self, size_text: str) -> Answer:
        """The answer for the input size ``size_text`` (an error answer when refused; the note of an
        ambiguous size comes with it either way, as the calculator warns before its error)."""
        reading: calc.Reading | None = None
        try:
            size_text = size_text.strip()
            if not self.word:
                raise SpecError("layer is empty; write conv, tconv, maxpool, avgpool or a torch class name like Conv2d")
            if not size_text:
                raise SpecError("in is empty; write the input size like 227, 32x64 or 3x224x224")
            if self.refusal is not None:  # answered, not raised again: a raised error grows its traceback each time
                return Answer(None, self.refusal.message)
            size = parse_size(size_text, what="in")
            if len(size) == 1 and self.square is not None:  # one number, as one was answered before
                square, axes = self.square
                sizes = square.spatial_sizes(size * axes)
                if sizes is not None:
                    return Answer(show_size(sizes, True), None, None, sizes)
            if self.kind_refusal is not None:
                return Answer(None, self.kind_refusal.message)
            reading = calc.read_size(size, self.dims, in_channels=self.in_channels, layer=self.lowered, flags=FLAG_WORDS)
            channels = reading.channels if reading.channels is not None else (self.in_channels or 1)
            spatial = reading.spatial
            key = (len(spatial), channels)
            accepted = self.accepted.get(key)
            if accepted is not None:  # this layer took an input of this rank and channels before
                sizes = accepted[0].spatial_sizes(spatial)  # the hot path of output_shape
                if sizes is not None:
                    return _answer(reading, accepted[1], sizes)
            layer = self.layers.get(key)
            if layer is None:
                layer = self.layers[key] = self._layer(len(spatial), channels)
            if isinstance(layer, ConvcalcError):
                return Answer(None, layer.message, reading.warning)
            out = layer.output_shape((channels, *spatial))  # calc.calculate_output, its layer remembered
            if isinstance(layer, Spatial):
                self.accepted[key] = (layer, out[0])
                if len(size) == 1 and reading.channels is None and reading.warning is None:
                    self.square = (layer, len(spatial))  # what one number reads as, on this layer
        except ConvcalcError as error:
            return Answer(None, error.message, reading.warning if reading is not None else None)
        return _answer(reading, out[0], out[1:])

    def _layer(self, dims: int, channels: int) -> Layer | ConvcalcError:
        """``calc.calculator_layer`` for these options on ``dims`` spatial axes, or its refusal."""
        try:
            type_name = calc.layer_type(self.lowered if self.is_word else self.word, dims)
            return calc.calculator_layer(type_name, channels, option_values(self.cells))
        except MissingArgument as error:
            return _missing(error)
        except ConvcalcError as error:
            return error


def _missing(error: MissingArgument) -> SpecError:
    """A required argument left out: the column that sets it, or (none does) how to answer it instead."""
    columns = [name for name, option in OPTIONS.items() if option == error.argument and option not in ("kind", "dims", "in_channels")]
    if columns:
        return SpecError(f"{error.message}, which the column {columns[0]} sets", layer=error.layer)
    step = CHAIN_EXAMPLES.get(error.layer or "", f"{error.layer}(…)")
    return SpecError(
        f"{error.message}, which no batch column sets (its columns are the calculators' options: k, s, p, d, op, g,"
        f" ceil …); answer it with convcalc chain, e.g. convcalc chain 3x8x8 --dims 2 '{step}', or in a spec",
        layer=error.layer,
    )


def _answer(reading: calc.Reading, channels: int, sizes: tuple[int, ...]) -> Answer:
    """The answer in the form the size was asked: ``C×H×W`` where channels were written, ``55``
    for a square asked as one number, else ``28x60``."""
    if reading.channels is not None:
        return Answer(f"{channels}x{format_size(sizes)}", None, reading.warning, (channels, *sizes))
    return Answer(show_size(sizes, reading.square), None, reading.warning, sizes)


#: How a file sets dims and in_channels, for read_size's warning.
FLAG_WORDS = ("a dims column of ", "an in_channels column of ")


def solve(layer: str, size_text: str, cells: dict[str, str]) -> Answer:
    """One question: layer word or class, input size text, option cells (empty = default)."""
    return Question(layer, cells).solve(size_text)


#: Numeric columns, read by numbers.py's rule as the command line reads the same option: a value
#: per axis (padding: or a word), or a whole number within the option's range (None: the layer judges).
PER_AXIS = {"kernel_size": (), "stride": (), "padding": ("same", "valid"), "dilation": (), "output_padding": ()}
WHOLE = {"groups": (None, None), "in_channels": (1, MAX_SIZE), "out_channels": (1, MAX_SIZE), "divisor_override": (None, None), "dims": (1, 3)}


def number_of(option: str, text: str) -> Any:
    """The value of a numeric cell, or a SpecError worded as the command line's (``kernel_size:
    '٣' is not a whole number (digits 0-9) or one per axis like 3x5``)."""
    try:
        if option in PER_AXIS:
            return read_per_axis(text, PER_AXIS[option])
        return read_whole(text, *WHOLE[option])
    except NotANumber as error:
        raise SpecError(f"{option}: {error}") from None


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
            values[option] = number_of(option, raw)
    if values.pop("no_bias", False):
        values["bias"] = False
    return values


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
    if text.isascii() and text.isdigit():  # the common case, without parsing: one number
        # agrees only with a one-number answer (int() of each, without int() of 5,000 digits)
        return output.isdigit() and text.lstrip("0") == output.lstrip("0")
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
    answer_to, expect_at, replaced = batch.answer, batch.expect_at, batch.replaced
    for line, row in rows:
        if len(row) != width:
            if len(row) > width:
                raise BatchFileError(f"{path}:{line}: {len(row)} cells but the header has {width} columns", file=path, line=line)
            row = row + [""] * (width - len(row))  # a short row: its missing cells are empty
        answer = answer_to(row)
        if expect_at is None:
            ok = None
        else:
            expect = row[expect_at]
            ok = expect == answer.output or agrees(answer, expect)  # the common right answer without a call
        if replaced:
            row = [cell for i, cell in enumerate(row) if i not in replaced]
        yield line, row, answer, ok
