"""The actual numbers of a convolution, transposed convolution or pooling layer, and how each is made.

Pure nested-list arithmetic (no torch, no numpy) with torch's semantics: cross-correlation (no
kernel flip), the engine's padding (``'same'`` with the odd pad on the right/bottom, padding
modes), dilation, groups, ``ceil_mode``, ``count_include_pad`` and ``divisor_override``.
The layer (its sizes, pads and checks) comes from the engine; this module only fills in numbers.

Numbers are exact: every value is an integer or a decimal read as a fraction, sums are computed
on integers scaled by a common denominator, and a result that is not whole is shown as the
float64 nearest to the exact value (what torch prints in float64, up to its rounding order).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Union

from .errors import ErrorKind, InputError, ShapeError, SpecError
from .formulas import PAD_MARKS

Number = Union[int, Fraction]

#: Bounds on what a user may hand over.
MAX_BYTES = 2_000_000  # of a --values/--weight/--bias text or @file
MAX_ITEMS = 1_000_000  # numbers in one matrix
MAX_RANK = 5
MAX_NUMBER_CHARS = 40  # characters of one number literal
MAX_EXPONENT = 30  # |e| of 1.5e-3 style literals
MAX_WORK = 1_000_000  # multiply-adds (conv, tconv) or window reads (pool)

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")  # numbers.py's rule: ASCII digits


# -- reading matrices --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    """A dense array: its shape and row-major values (ints or exact fractions)."""

    shape: tuple[int, ...]
    data: list[Number]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def nested(self) -> Any:
        """The values as nested lists (a scalar for rank 0)."""
        return _nest(list(self.data), self.shape)


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def number(text: str, where: str) -> Number:
    """A number literal: ``3`` → 3, ``0.25`` → Fraction(1, 4); NaN, infinities and words refused."""
    raw = text.strip()
    if len(raw) > MAX_NUMBER_CHARS:
        raise SpecError(f"{where}: the number {raw[:20]}… is longer than {MAX_NUMBER_CHARS} characters")
    if not _NUMBER.fullmatch(raw):
        lowered = raw.lower().lstrip("+-")
        what = "not a number (NaN)" if lowered == "nan" else "infinite" if lowered.startswith("inf") else "not a number"
        raise SpecError(f"{where}: {raw!r} is {what}; write whole or decimal numbers like 3 or 0.5")
    exponent = _NUMBER.fullmatch(raw).group(2)  # type: ignore[union-attr]
    if exponent and abs(int(exponent[1:])) > MAX_EXPONENT:
        raise SpecError(f"{where}: the exponent of {raw} is beyond ±{MAX_EXPONENT}")
    value = Fraction(raw)
    return value.numerator if value.denominator == 1 else value


def read_text(value: str, what: str) -> str:
    """The text of an option: itself, or the contents of ``@file`` (bounded in size)."""
    if not value.startswith("@"):
        if len(value) > MAX_BYTES:
            raise SpecError(f"{what} is longer than {MAX_BYTES:,} characters")
        return value
    path = value[1:]
    from .reader import read_bounded  # bounded in bytes and time: @/dev/zero or a silent FIFO cannot hang

    data = read_bounded(path, MAX_BYTES, what="matrix file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what}: {path} is not UTF-8 text", file=path) from None


def parse_tensor(value: str, what: str, *, scalar: bool = False) -> Tensor:
    """A matrix from JSON (``[[1, 2], [3, 4]]``) or rows of numbers separated by spaces or commas
    (one row per line or ``;``; a blank line starts the next channel), or ``@file`` holding either.

    ``scalar`` also accepts a single number (a bias). Errors name the position of the culprit.
    """
    text = read_text(value, what).strip()
    if not text:
        raise SpecError(f"{what} is empty; write a matrix like [[1, 2], [3, 4]]")
    if text.startswith("["):
        return _from_json(text, what)
    rows = _from_rows(text, what)
    if scalar and rows.shape == (1,):
        return Tensor((), rows.data)
    return rows


def _from_json(text: str, what: str) -> Tensor:
    def bad_constant(name: str) -> Any:
        raise SpecError(f"{what}: {name} is not a number; write whole or decimal numbers")

    try:
        tree = json.loads(text, parse_float=lambda s: number(s, what), parse_int=lambda s: number(s, what), parse_constant=bad_constant)
    except json.JSONDecodeError as error:
        raise SpecError(f"{what}: not valid JSON at line {error.lineno} column {error.colno} ({error.msg})") from None
    except RecursionError:
        raise SpecError(f"{what}: nested too deeply (at most {MAX_RANK} levels)") from None
    shape: list[int] = []
    data: list[Number] = []
    _walk(tree, (), shape, data, what)
    return Tensor(tuple(shape), data)


def _walk(node: Any, at: tuple[int, ...], shape: list[int], data: list[Number], what: str) -> None:
    where = f"{what} at {''.join(f'[{i}]' for i in at)}" if at else what
    depth = len(at)
    if isinstance(node, list):
        if depth >= MAX_RANK:
            raise SpecError(f"{where}: nested deeper than {MAX_RANK} levels")
        if not node:
            raise SpecError(f"{where}: an empty list; every row needs at least one number")
        if depth == len(shape):
            if data:  # a list where a number stood before
                raise SpecError(f"{where}: a list where the matrix holds numbers (ragged)")
            shape.append(len(node))
        elif len(shape) <= depth or shape[depth] != len(node):
            first = "".join("[0]" for _ in at[:-1])
            expected = shape[depth] if len(shape) > depth else "numbers"
            raise SpecError(f"{where}: {len(node)} items where {what} at {first or '[0]'} has {expected} (ragged)")
        for index, child in enumerate(node):
            _walk(child, (*at, index), shape, data, what)
        return
    if isinstance(node, bool) or not isinstance(node, (int, Fraction)):
        raise SpecError(f"{where}: {json.dumps(node) if not isinstance(node, Fraction) else node} is not a number")
    if depth != len(shape):
        raise SpecError(f"{where}: a number where the matrix holds lists (ragged)")
    if len(data) >= MAX_ITEMS:
        raise SpecError(f"{what} holds more than {MAX_ITEMS:,} numbers")
    data.append(node)


def _from_rows(text: str, what: str) -> Tensor:
    channels: list[list[list[Number]]] = [[]]
    lines = text.replace(";", "\n").splitlines()
    count = 0
    for line_number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            if channels[-1]:
                channels.append([])
            continue
        parts = [p for p in re.split(r"[\s,]+", line) if p]
        row = [number(p, f"{what} line {line_number} item {i}") for i, p in enumerate(parts, start=1)]
        count += len(row)
        if count > MAX_ITEMS:
            raise SpecError(f"{what} holds more than {MAX_ITEMS:,} numbers")
        first = channels[0][0] if channels[0] else row
        if len(row) != len(first):
            raise SpecError(f"{what} line {line_number}: {len(row)} numbers where the first row has {len(first)} (ragged)")
        channels[-1].append(row)
    if not channels[-1]:
        channels.pop()
    rows = len(channels[0])
    for index, channel in enumerate(channels):
        if len(channel) != rows:
            raise SpecError(f"{what}: block {index + 1} has {len(channel)} rows where the first has {rows} (ragged)")
    cols = len(channels[0][0])
    data = [v for channel in channels for row in channel for v in row]
    if len(channels) > 1:
        return Tensor((len(channels), rows, cols), data)
    if rows == 1:
        return Tensor((cols,), data)
    return Tensor((rows, cols), data)


# -- showing numbers ---------------------------------------------------------------------------


def show(value: Number | float) -> str:
    """``8`` → ``"8"``, ``15/4`` → ``"3.75"`` (the nearest float64, shortest form)."""
    if isinstance(value, float):  # -inf: a max over padding only
        return str(value)
    if isinstance(value, int) or value.denominator == 1:
        return str(int(value))
    return repr(float(value))


def as_json(value: Number | float) -> int | float | str:
    if isinstance(value, float):
        return str(value)
    return int(value) if isinstance(value, int) or value.denominator == 1 else float(value)


def grid_lines(tensor: Tensor, *, marks: dict[int, str] | None = None) -> list[str]:
    """The values aligned in columns: one line per row, a header per leading index (``[0]``)."""
    shape = tensor.shape
    if not shape:
        return [show(tensor.data[0])]
    texts = [show(v) for v in tensor.data]
    if marks:
        texts = [marks.get(i, "") + t for i, t in enumerate(texts)]
    width = max(len(t) for t in texts)
    cols = shape[-1]
    rows = shape[-2] if len(shape) > 1 else 1
    plane = rows * cols
    lines: list[str] = []
    lead = shape[:-2] if len(shape) > 1 else ()
    for index, start in zip(itertools.product(*(range(n) for n in lead)), range(0, len(texts), plane)):
        if lead:
            lines.append("".join(f"[{i}]" for i in index))
        for r in range(rows):
            row = texts[start + r * cols : start + (r + 1) * cols]
            lines.append(("  " if lead else "") + "  ".join(t.rjust(width) for t in row))
    return lines


# -- the arithmetic ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """The output values and, when asked, the lines that explain how they are made."""

    output: Tensor
    explain: list[str]


def padded_index(size: int, pad_left: int, pad_right: int, mode: str) -> list[int | None]:
    """Input index read at each position of the padded axis (``None``: a zero of zero padding).

    reflect mirrors without repeating the edge, replicate repeats the edge, circular wraps
    around — torch's ``F.pad`` modes; negative padding crops.
    """
    indices: list[int | None] = []
    for q in range(size + pad_left + pad_right):
        i = q - pad_left
        if 0 <= i < size:
            indices.append(i)
        elif mode == "zeros":
            indices.append(None)
        elif mode == "reflect":
            indices.append(-i if i < 0 else 2 * (size - 1) - i)
        elif mode == "replicate":
            indices.append(min(max(i, 0), size - 1))
        else:  # circular
            indices.append(i % size)
    return indices


def _strides(shape: Sequence[int]) -> list[int]:
    out = [1] * len(shape)
    for a in range(len(shape) - 2, -1, -1):
        out[a] = out[a + 1] * shape[a + 1]
    return out


def _check_work(work: int, what: str) -> None:
    if work > MAX_WORK:
        raise SpecError(f"{what} needs {work:,} multiply-adds; --values computes at most {MAX_WORK:,} (use a smaller input)")


def _check_outputs(count: int, what: str) -> None:
    if count > MAX_WORK:
        raise SpecError(f"{what} gives {count:,} output values; --values computes at most {MAX_WORK:,} (use a smaller stride, dilation or output_padding)")


def _label(index: Sequence[int]) -> str:
    return "out" + "".join(f"[{i}]" for i in index)


@dataclass(frozen=True)
class Operands:
    """The input as the engine sees it: (N, C, *spatial) with N, C possibly added, and how to
    give the output back in the shape the user wrote."""

    batch: int
    channels: int
    spatial: tuple[int, ...]
    data: list[Number]
    lead: int  # leading axes the user wrote before the spatial ones: 0, 1 (C) or 2 (N, C)

    @staticmethod
    def of(tensor: Tensor, dims: int, what: str = "--values") -> Operands:
        lead = tensor.rank - dims
        if lead not in (0, 1, 2):
            raise SpecError(
                f"{what} has {tensor.rank} axes {list(tensor.shape)}; a {dims}-D layer takes {dims} (the spatial axes),"
                f" {dims + 1} (C first) or {dims + 2} (N, C first)"
            )
        batch, channels = (1, 1) if lead == 0 else (1, tensor.shape[0]) if lead == 1 else tensor.shape[:2]
        return Operands(batch, channels, tensor.shape[lead:], tensor.data, lead)

    @property
    def engine_shape(self) -> tuple[int, ...]:
        return (self.channels, *self.spatial) if self.batch == 1 else (self.batch, self.channels, *self.spatial)

    def result_shape(self, channels: int, spatial: Sequence[int]) -> tuple[int, ...]:
        if self.lead == 2:
            return (self.batch, channels, *spatial)
        if self.lead == 1 or channels != 1:
            return (channels, *spatial)
        return tuple(spatial)


def conv_weight(tensor: Tensor, dims: int, what: str, second: str) -> tuple[int, int, tuple[int, ...]]:
    """(first, second, kernel) of a weight written ``k``, ``k×k`` (one channel each) or in full."""
    if tensor.rank == dims:
        return 1, 1, tensor.shape
    if tensor.rank == dims + 2:
        return tensor.shape[0], tensor.shape[1], tensor.shape[2:]
    raise SpecError(
        f"--weight has {tensor.rank} axes {list(tensor.shape)}; a {dims}-D layer takes the kernel alone ({dims} axes)"
        f" or {what}×{second}×kernel ({dims + 2} axes)"
    )


def bias_values(bias: Tensor | None, channels: int) -> list[Number]:
    if bias is None:
        return [0] * channels
    if bias.rank == 0 and channels == 1:
        return list(bias.data)
    if bias.rank != 1 or bias.shape[0] != channels:
        raise SpecError(f"--bias needs {channels} number{'s' if channels > 1 else ''} (one per output channel), got shape {list(bias.shape)}")
    return list(bias.data)


def _scaled(values: Sequence[Number]) -> tuple[list[int], int]:
    """Integers and their common denominator: ``[0.5, 2]`` → ``([1, 4], 2)``."""
    denominator = 1
    for v in values:
        if isinstance(v, Fraction):
            denominator = denominator * v.denominator // math.gcd(denominator, v.denominator)
    if denominator == 1:
        return [int(v) for v in values], 1
    return [int(v * denominator) for v in values], denominator


def _exact(value: int, denominator: int) -> Number:
    return value if denominator == 1 else Fraction(value, denominator)


def _reduce(value: Number) -> Number:
    return value.numerator if isinstance(value, Fraction) and value.denominator == 1 else value


def conv(layer: Any, x: Operands, weight: Tensor, bias: Tensor | None, *, explain: bool = False) -> Trace:
    """Cross-correlation of ``x`` with ``weight`` under the engine's bound Conv ``layer``."""
    dims = layer.dims
    c_out, c_per_group, kernel = conv_weight(weight, dims, "C_out", "C_in/groups")
    out_spatial = layer.spatial(layer.output_shape(x.engine_shape))
    groups = layer.groups
    _check_work(layer.macs(x.engine_shape), f"{layer.type_name}")
    pads = layer.pads()
    maps = [padded_index(n, pl, pr, layer.padding_mode) for n, (pl, pr) in zip(x.spatial, pads)]
    xs, x_den = _scaled(x.data)
    ws, w_den = _scaled(weight.data)
    biases = bias_values(bias, c_out)
    x_str, w_str = _strides((x.batch, x.channels, *x.spatial)), _strides((c_out, c_per_group, *kernel))
    taps = list(itertools.product(*(range(k) for k in kernel)))
    outs = list(itertools.product(*(range(n) for n in out_spatial)))
    out_per_group = c_out // groups
    result: list[Number] = []
    lines: list[str] = []
    shown = 0
    for n in range(x.batch):
        for oc in range(c_out):
            group = oc // out_per_group
            for o in outs:
                total = 0
                terms: list[tuple[int, int, tuple[int, ...], int]] = []
                for c in range(c_per_group):
                    ic = group * c_per_group + c
                    x_base, w_base = n * x_str[0] + ic * x_str[1], oc * w_str[0] + c * w_str[1]
                    for tap in taps:
                        w_at = w_base + sum(t * w_str[2 + a] for a, t in enumerate(tap))
                        at = tuple(o[a] * layer.stride[a] + tap[a] * layer.dilation[a] for a in range(dims))
                        sources = [maps[a][at[a]] for a in range(dims)]
                        if None in sources:
                            value = 0
                        else:
                            value = xs[x_base + sum(i * x_str[2 + a] for a, i in enumerate(sources))]  # type: ignore[operator]
                        total += value * ws[w_at]
                        if explain and shown < EXPLAIN_SUMS:
                            terms.append((value, ws[w_at], at, ic))
                exact = _reduce(_exact(total, x_den * w_den) + biases[oc])
                result.append(exact)
                if explain and shown < EXPLAIN_SUMS:
                    index = x.result_shape(c_out, o)
                    label = _label((*((n, oc) if x.lead == 2 else (oc,) if len(index) > dims else ()), *o))
                    products = " + ".join(
                        f"{show(_exact(v, x_den))}×{show(_exact(w, w_den))}" for v, w, _, _ in terms
                    )
                    bias_text = f" + {show(biases[oc])} (bias)" if bias is not None else ""
                    lines.append(f"{label} = {products}{bias_text} = {show(exact)}")
                    if dims == 2 and c_per_group == 1:
                        lines.extend(_window_grid(x, n, terms[0][3] if terms else 0, maps, pads, {t[2] for t in terms}, layer.padding_mode))
                    shown += 1
    total_outputs = len(result)
    if explain and total_outputs > shown:
        lines.append(f"… and {total_outputs - shown} more value{'s' if total_outputs - shown > 1 else ''}, made the same way")
    output = Tensor(x.result_shape(c_out, out_spatial), result)
    return Trace(output, _conv_header(layer, x, maps, pads) + lines if explain else [])


#: How many output values --explain writes out in full.
EXPLAIN_SUMS = 9
#: Largest padded plane drawn under a sum.
MAX_GRID = 12



def _conv_header(layer: Any, x: Operands, maps: list[list[int | None]], pads: list[tuple[int, int]]) -> list[str]:
    if not any(pl or pr for pl, pr in pads):
        return ["each output value is the sum of the window's input values times the kernel values at the same places (no flip):"]
    mode = layer.padding_mode
    text = "zeros: 0" if mode == "zeros" else f"{mode}: copies of input values"
    return [
        f"the input is padded first ({text}, marked {PAD_MARKS[mode]} in the windows below); each output value is the sum"
        " of the window's values times the kernel values at the same places (no flip):"
    ]


def _window_grid(x: Operands, n: int, ic: int, maps: list[list[int | None]], pads: list[tuple[int, int]], window: set[tuple[int, ...]], mode: str) -> list[str]:
    """The padded input plane of channel ``ic`` with the window's cells in brackets."""
    rows, cols = len(maps[0]), len(maps[1])
    if rows > MAX_GRID or cols > MAX_GRID:
        return []
    h, w = x.spatial
    base = (n * x.channels + ic) * h * w
    cells = []
    for r in range(rows):
        line = []
        for c in range(cols):
            i, j = maps[0][r], maps[1][c]
            inside = 0 <= r - pads[0][0] < h and 0 <= c - pads[1][0] < w
            if i is None or j is None:
                text = PAD_MARKS["zeros"]
            else:
                text = show(x.data[base + i * w + j]) + ("" if inside else PAD_MARKS[mode])
            line.append(text)
        cells.append(line)
    width = max(len(t) for line in cells for t in line) + 2
    out = []
    for r, line in enumerate(cells):
        parts = []
        for c, text in enumerate(line):
            parts.append(f"[{text}]".rjust(width) if (r, c) in window else f"{text} ".rjust(width))
        out.append("    " + "".join(parts).rstrip())
    return out


def tconv(layer: Any, x: Operands, weight: Tensor, bias: Tensor | None, *, explain: bool = False) -> Trace:
    """Transposed convolution: every input value scatters a scaled copy of its kernel, overlaps add,
    then ``padding`` crops each side and ``output_padding`` extends the right/bottom."""
    dims = layer.dims
    c_in, c_out_per_group, kernel = conv_weight(weight, dims, "C_in", "C_out/groups")
    if c_in != x.channels:
        raise ShapeError(f"--weight is {list(weight.shape)}: its first axis must be the input's {x.channels} channels (C_in×C_out/groups×kernel)", kind=ErrorKind.CHANNELS)
    groups = layer.groups
    c_out = c_out_per_group * groups
    engine_layer = layer.with_values(out_channels=c_out) if layer.out_channels != c_out else layer
    out_spatial = engine_layer.spatial(engine_layer.output_shape(x.engine_shape))
    _check_work(engine_layer.macs(x.engine_shape), layer.type_name)
    _check_outputs(x.batch * c_out * math.prod(out_spatial), layer.type_name)  # stride, dilation and output_padding spread few MACs wide
    full = [(n - 1) * s + d * (k - 1) + 1 for n, s, d, k in zip(x.spatial, layer.stride, layer.dilation, kernel)]
    xs, x_den = _scaled(x.data)
    ws, w_den = _scaled(weight.data)
    biases = bias_values(bias, c_out)
    x_str, w_str = _strides((x.batch, x.channels, *x.spatial)), _strides((c_in, c_out_per_group, *kernel))
    in_per_group = x.channels // groups
    out_count = math.prod(out_spatial)
    o_str = _strides(out_spatial)
    sums = [0] * (x.batch * c_out * out_count)
    taps = list(itertools.product(*(range(k) for k in kernel)))
    inputs = list(itertools.product(*(range(n) for n in x.spatial)))
    for n in range(x.batch):
        for ic in range(x.channels):
            group = ic // in_per_group
            for position in inputs:
                value = xs[(n * x_str[0] + ic * x_str[1]) + sum(i * x_str[2 + a] for a, i in enumerate(position))]
                if not value:
                    continue
                for c in range(c_out_per_group):
                    oc = group * c_out_per_group + c
                    base = (n * c_out + oc) * out_count
                    w_base = ic * w_str[0] + c * w_str[1]
                    for tap in taps:
                        flat = base
                        for a in range(dims):
                            q = position[a] * layer.stride[a] + tap[a] * layer.dilation[a] - layer.padding[a]
                            if not 0 <= q < out_spatial[a]:
                                break
                            flat += q * o_str[a]
                        else:
                            sums[flat] += value * ws[w_base + sum(t * w_str[2 + a] for a, t in enumerate(tap))]
    result = [
        _reduce(_exact(total, x_den * w_den) + biases[(i // out_count) % c_out]) for i, total in enumerate(sums)
    ]
    output = Tensor(x.result_shape(c_out, out_spatial), result)
    lines: list[str] = []
    if explain:
        lines = _tconv_story(layer, x, weight, kernel, full, out_spatial, bias is not None, biases)
    return Trace(output, lines)


def _tconv_story(layer: Any, x: Operands, weight: Tensor, kernel: tuple[int, ...], full: list[int], out_spatial: Sequence[int], has_bias: bool, biases: list[Number]) -> list[str]:
    dims = layer.dims
    lines = [
        "each input value scatters a copy of the kernel scaled by that value, its corner at (input index × stride);"
        " overlapping copies add up:"
    ]
    single = x.batch == 1 and x.channels == 1 and weight.rank == dims
    if not single:
        lines.append("(with several channels or a batch, each output channel adds the copies of every input channel of its group)")
        return lines
    starts = list(itertools.product(*(range(n) for n in x.spatial)))
    kernel_flat = list(weight.data)
    pads, ops = layer.padding, layer.output_padding
    grid = dims <= 2 and max(full) + max(ops) <= 2 * MAX_GRID  # the uncropped sum is drawn only when it fits
    full_sums: list[Number] = [0] * math.prod(full) if grid else []
    f_str = _strides(full)
    k_str = _strides(kernel)
    x_str = _strides(x.spatial)
    for count, position in enumerate(starts):
        value = x.data[sum(i * x_str[a] for a, i in enumerate(position))]
        corner = tuple(i * s for i, s in zip(position, layer.stride))
        for tap in itertools.product(*(range(k) for k in kernel)) if grid else ():
            at = [corner[a] + tap[a] * layer.dilation[a] for a in range(dims)]
            full_sums[sum(q * f_str[a] for a, q in enumerate(at))] += value * kernel_flat[sum(t * k_str[a] for a, t in enumerate(tap))]
        if count < 4:
            lines.append(f"  in{''.join(f'[{i}]' for i in position)} = {show(value)} → {show(value)} × kernel at {_at(corner)}")
    if len(starts) > 4:
        lines.append(f"  … {len(starts) - 4} more copies the same way")
    size_text = "×".join(map(str, full))
    lines.append(f"full size (in − 1)×s + d×(k − 1) + 1 = {size_text}" + ("; [kept] after the crop:" if _cropped(layer) else ":"))
    if grid:
        lines.extend("  " + line for line in _crop_grid(full, full_sums, pads, ops, out_spatial))
    if any(pads):
        lines.append("padding crops " + ", ".join(f"{p} from each side of {axis}" for axis, p in zip(layer.axes, pads)))
    if any(ops):
        lines.append(
            "output_padding adds "
            + ", ".join(f"{op} at the end of {axis}" for axis, op in zip(layer.axes, ops))
            + " (right/bottom; 0 unless a copy reaches there, marked +)"
        )
    if has_bias:
        lines.append(f"then the bias {show(biases[0])} is added to every value")
    return lines


def _cropped(layer: Any) -> bool:
    return any(layer.padding) or any(layer.output_padding)


def _crop_grid(full: list[int], sums: list[Number], pads: Sequence[int], ops: Sequence[int], out: Sequence[int]) -> list[str]:
    """The uncropped sum with the kept cells in brackets; output_padding's cells (beyond the
    full size) shown as ``+0``."""
    shape = [f + op for f, op in zip(full, ops)]
    if len(shape) == 1:
        shape, pads, out, full = [1, *shape], [0, *pads], [1, *out], [1, *full]
    rows, cols = shape
    texts: list[list[str]] = []
    for r in range(rows):
        line = []
        for c in range(cols):
            if r < full[0] and c < full[1]:
                line.append(show(_reduce(Fraction(sums[r * full[1] + c]))))
            else:
                line.append("+0")
        texts.append(line)
    width = max(len(t) for line in texts for t in line) + 2
    keep = (range(pads[0], pads[0] + out[0]), range(pads[1], pads[1] + out[1]))
    cropped = any(pads) or any(ops)
    return [
        "".join(
            (f"[{t}]".rjust(width) if cropped and r in keep[0] and c in keep[1] else f"{t} ".rjust(width))
            for c, t in enumerate(line)
        ).rstrip()
        for r, line in enumerate(texts)
    ]


def _at(corner: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, corner)) + ")"


def pool(layer: Any, x: Operands, *, explain: bool = False) -> Trace:
    """Max or average pooling under the engine's bound pooling ``layer``."""
    dims = layer.dims
    out_spatial = layer.spatial(layer.output_shape(x.engine_shape))
    kernel, stride, padding = layer.kernel_size, layer.stride, layer.padding
    dilation = layer.dilation
    is_max = layer.type_name.startswith("Max")
    extra = dict(layer.extra)
    include_pad = extra.get("count_include_pad", True)
    divisor_override = extra.get("divisor_override")
    outs = list(itertools.product(*(range(n) for n in out_spatial)))
    work = x.batch * x.channels * len(outs) * math.prod(kernel)
    _check_work(work, layer.type_name)
    xs, den = _scaled(x.data)
    x_str = _strides((x.batch, x.channels, *x.spatial))
    result: list[Number] = []
    lines: list[str] = []
    for n in range(x.batch):
        for c in range(x.channels):
            base = n * x_str[0] + c * x_str[1]
            for o in outs:
                per_axis = []  # (in-range taps, padded-window size, clipped-window size)
                for a in range(dims):
                    start = o[a] * stride[a] - padding[a]
                    taps = [start + t * dilation[a] for t in range(kernel[a])]
                    inside = [q for q in taps if 0 <= q < x.spatial[a]]
                    end = min(start + kernel[a], x.spatial[a] + padding[a])
                    per_axis.append((inside, end - start, min(end, x.spatial[a]) - max(start, 0)))
                cells = [
                    xs[base + sum(q * x_str[2 + a] for a, q in enumerate(at))]
                    for at in itertools.product(*(axis[0] for axis in per_axis))
                ]
                if is_max:
                    value: Any = _exact(max(cells), den) if cells else float("-inf")
                    text = f"max({', '.join(show(_exact(v, den)) for v in cells)}) = {show(value)}"
                else:
                    if divisor_override is not None:
                        divisor, why = divisor_override, "divisor_override"
                    elif include_pad:
                        divisor = math.prod(axis[1] for axis in per_axis)
                        why = "window size, padding included" if divisor != len(cells) else ""
                    else:
                        divisor = math.prod(axis[2] for axis in per_axis)
                        why = "input cells only (count_include_pad=False)" if divisor != len(cells) else ""
                    value = _reduce(Fraction(sum(cells), den * divisor))
                    if divisor != math.prod(kernel) and not why:
                        why = "the window is cut at the edge of the padded input (ceil_mode)"
                    text = f"({' + '.join(show(_exact(v, den)) for v in cells)}) / {divisor} = {show(value)}"
                    if why:
                        text += f"   [divisor {divisor}: {why}]"
                result.append(value)
                if explain and len(lines) < EXPLAIN_SUMS:
                    index = (*((n, c) if x.lead == 2 else (c,) if x.lead == 1 else ()), *o)
                    lines.append(f"{_label(index)} = {text}")
    if explain and len(result) > EXPLAIN_SUMS:
        lines.append(f"… and {len(result) - EXPLAIN_SUMS} more values, made the same way")
    header = []
    if explain:
        what = "the largest value" if is_max else "the mean of the values"
        header = [f"each output value is {what} in its window" + (" (padding never wins a max)" if is_max and any(padding) else "") + ":"]
    return Trace(Tensor(x.result_shape(x.channels, out_spatial), result), header + lines)



# -- the API behind --values ---------------------------------------------------------------------


def spatial_dims(x: Tensor, dims: int | None = None, size: Sequence[int] | None = None) -> int:
    """--dims, else the sizes written in --in, else the matrix: a list is 1-D, rows are 2-D, more
    axes are read as C×H×W (or N×C×H×W) of a 2-D layer."""
    if dims:
        return dims
    if size is not None and len(size) > 1:
        return len(size)
    return x.rank if x.rank in (1, 2) else 2


def _per_axis(value: Any, dims: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * dims


def _sizes(values: Sequence[int]) -> str:
    return "x".join(map(str, values))


def run(kind: str, x: Tensor, *, weight: Tensor | None = None, bias: Tensor | None = None, dims: int | None = None, size: Sequence[int] | None = None, written: str | None = None, explain: bool = False, **kwargs: Any) -> tuple[Any, Trace]:
    """The engine's step and the numeric trace of ``kind`` (conv, tconv, maxpool, avgpool) on ``x``.

    ``size`` (the spatial sizes, per axis) is checked against ``x``; the kernel size and channel
    counts come from ``weight`` (a given ``kernel_size`` must agree). ``kwargs``: the layer's torch
    arguments (stride, padding, …). Raises SpecError/ShapeError as the calculator does.
    """
    from . import calc

    dims = spatial_dims(x, dims, size)
    operands = Operands.of(x, dims)
    if size is not None and tuple(size) != operands.spatial:
        raise SpecError(f"--in {written or _sizes(size)} does not match --values, whose spatial size is {_sizes(operands.spatial)}")
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    stated = {name: kwargs.pop(name) for name in ("in_channels", "out_channels") if name in kwargs}
    if stated.get("in_channels", 1) not in (1, operands.channels):
        raise SpecError(f"--in-channels {stated['in_channels']} does not match --values, which has {operands.channels} channel(s)")
    if kind in ("conv", "tconv"):
        if weight is None:
            raise SpecError(f"{kind} --values needs --weight (the kernel)")
        first, second, kernel = conv_weight(weight, dims, "C_out" if kind == "conv" else "C_in", "C_in/groups" if kind == "conv" else "C_out/groups")
        given = _per_axis(kwargs.get("kernel_size"), dims)
        if given is not None and given != tuple(kernel):
            shown = _sizes(given) if len(set(given)) > 1 else str(given[0])
            raise SpecError(f"--k {shown} does not match --weight, whose kernel is {_sizes(kernel)}")
        kwargs["kernel_size"] = list(kernel)
        groups = kwargs.get("groups", 1)
        valid_groups = isinstance(groups, int) and not isinstance(groups, bool) and groups >= 1
        if kind == "conv":
            if valid_groups and second * groups != operands.channels:
                per_group = operands.channels // groups if operands.channels % groups == 0 else operands.channels
                raise ShapeError(  # a valid weight for another input (exit 1); the other refusals here are of the options (exit 2)
                    f"--weight {_sizes(weight.shape)} gives C_in/groups = {second}, but the input has {operands.channels}"
                    f" channel(s) and groups={groups}; write the weight as C_out×{per_group}×{_sizes(kernel)}",
                    kind=ErrorKind.CHANNELS,
                )
            kwargs["out_channels"] = first
        else:
            if first != operands.channels:
                raise ShapeError(
                    f"--weight {_sizes(weight.shape)} starts with C_in = {first}, but the input has {operands.channels} channel(s)"
                    " (a transposed convolution's weight is C_in×C_out/groups×kernel)",
                    kind=ErrorKind.CHANNELS,
                )
            kwargs["out_channels"] = second * groups if valid_groups else second
        kwargs["bias"] = bias is not None
        if stated.get("out_channels", 1) not in (1, kwargs["out_channels"]):
            raise SpecError(f"--out-channels {stated['out_channels']} does not match --weight, which gives {kwargs['out_channels']} output channel(s)")
    step = calc.calculate(calc.layer_type(kind, dims), operands.spatial, in_channels=operands.channels, **kwargs)
    layer = step.layer
    if kind == "conv":
        trace = conv(layer, operands, weight, bias, explain=explain)  # type: ignore[arg-type]
    elif kind == "tconv":
        trace = tconv(layer, operands, weight, bias, explain=explain)  # type: ignore[arg-type]
    else:
        trace = pool(layer, operands, explain=explain)
    return step, trace


def json_values(tensor: Tensor) -> Any:
    """The output as nested lists of JSON numbers."""
    return _nest([as_json(v) for v in tensor.data], tensor.shape)
