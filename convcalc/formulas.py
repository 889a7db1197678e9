"""Pure per-axis arithmetic of sliding windows, its inverses, and its worked explanation.

Every function takes one spatial axis. ``SlidingAxis`` (conv, pooling) and ``ScatterAxis``
(transposed conv) hold one axis's whole geometry, computed once per layer and input by the
layer's ``geometry(shape)``; the output shape, explanation, picture, warnings, receptive field
and the model diagnosis all read it. The inverses ("smallest input that fits", "padding that
gives this size") sit next to the forward formulas they undo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: ``d(k − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """Left/right padding of ``padding='same'``: total ``d(k−1)``, the odd one on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def conv_out(size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int) -> int:
    """``floor((in + pl + pr − d(k−1) − 1) / s) + 1``; ≤ 0 when the kernel does not fit."""
    return (size + pad_left + pad_right - dilation * (kernel - 1) - 1) // stride + 1  # effective_kernel, inline (hot path)


def conv_padding_totals(size: int, out: int, kernel: int, stride: int, dilation: int) -> range:
    """Inverse of :func:`conv_out` for the padding: every total ``pl + pr ≥ 0`` that gives ``out``
    (``(out − 1)s ≤ in + total − d(k−1) − 1 ≤ (out − 1)s + s − 1``); empty when none does."""
    low = (out - 1) * stride - size + effective_kernel(kernel, dilation)
    return range(max(low, 0), max(low + stride, 0))


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow/Keras ``padding='same'``: output ``ceil(in / s)``, total padding
    ``max((out − 1)s + d(k−1) + 1 − in, 0)``, the odd one on the right/bottom."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def pool_out(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``: conv arithmetic, with ceil_mode's extra window dropped
    when it would start at or beyond ``in + p`` (inside the right padding)."""
    numerator = size + 2 * padding - effective_kernel(kernel, dilation) + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def tconv_out(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    """``(in − 1)s − 2p + d(k−1) + output_padding + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pad_limit(mode: str, size: int, before: int, after: int) -> int | None:
    """The largest padding ``mode`` allows on an input of ``size`` when (before, after) exceeds it,
    else None: reflect needs padding < size, circular wraps at most once (padding ≤ size)."""
    largest = max(before, after)
    if mode == "reflect" and largest >= size:
        return size - 1
    if mode == "circular" and largest > size:
        return size
    return None


def tconv_padding(size: int, out: int, kernel: int, stride: int, dilation: int, output_padding: int) -> int | None:
    """Inverse of :func:`tconv_out` for the padding: the ``p ≥ 0`` that gives ``out``, or None."""
    twice = (size - 1) * stride + dilation * (kernel - 1) + output_padding + 1 - out
    return twice // 2 if twice >= 0 and twice % 2 == 0 else None


def pad_limit_rule(mode: str, padding: int, size: int) -> tuple[str, int]:
    """What ``mode``'s limit says and the smallest input that lifts it: ``("padding 3 must be
    smaller than the input size 3", 4)`` (reflect) or ``("padding 4 wraps around the input 3
    more than once", 4)`` (circular)."""
    if mode == "reflect":
        return f"padding {padding} must be smaller than the input size {size}", padding + 1
    return f"padding {padding} wraps around the input {size} more than once", padding


def uncovered(size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int, out: int) -> int:
    """How many trailing input positions (not padding) no window covers.

    0 when the kernel is narrower than the stride: windows then skip positions throughout by
    design (a 1×1 stride-2 projection), and the trailing gap is no surprise worth a warning.
    """
    if effective_kernel(kernel, dilation) < stride:
        return 0
    covered = (out - 1) * stride + effective_kernel(kernel, dilation)
    return max(0, size + pad_left - covered)


def _dilated(kernel: int, dilation: int) -> str:
    return f"{dilation}×({kernel}−1)"


def _padding_terms(pad_left: int, pad_right: int) -> str:
    if pad_left == pad_right:
        return f"2×{pad_left}"
    return f"{pad_left} + {pad_right}"


def explain_conv(axis: str, size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int) -> str:
    """One worked line: ``H: floor((227 + 2×0 − 1×(11−1) − 1) / 4) + 1 = floor(216 / 4) + 1 = 55``."""
    numerator = size + pad_left + pad_right - effective_kernel(kernel, dilation)
    out = numerator // stride + 1
    return (
        f"{axis}: floor(({size} + {_padding_terms(pad_left, pad_right)} − {_dilated(kernel, dilation)} − 1)"
        f" / {stride}) + 1 = floor({numerator} / {stride}) + 1 = {out}"
    )


def explain_pool(axis: str, size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> str:
    """Like :func:`explain_conv`, with ``ceil`` and the dropped last window of ceil_mode."""
    numerator = size + 2 * padding - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return explain_conv(axis, size, kernel, stride, padding, padding, dilation)
    raw = -(-numerator // stride) + 1
    out = pool_out(size, kernel, stride, padding, dilation, True)
    text = (
        f"{axis}: ceil(({size} + 2×{padding} − {_dilated(kernel, dilation)} − 1) / {stride}) + 1"
        f" = ceil({numerator} / {stride}) + 1 = {raw}"
    )
    if out != raw:
        text += (
            f"; the last window would start at {(raw - 1) * stride} ≥ {size} + {padding}"
            f" (inside the right padding), so it is dropped: {out}"
        )
    return text


def explain_tconv(axis: str, size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> str:
    """``H: (3 − 1)×3 − 2×0 + 1×(3−1) + 1 + 1 = 10``."""
    out = tconv_out(size, kernel, stride, padding, dilation, output_padding)
    return (
        f"{axis}: ({size} − 1)×{stride} − 2×{padding} + {_dilated(kernel, dilation)}"
        f" + {output_padding} + 1 = {out}"
    )


MAX_PICTURE = 60  # positions drawn in full; a wider axis keeps its two ends with "…" between
EDGE = 28  # positions kept at each end of a wide axis
#: How each padding mode is drawn (zero padding ``·``; the others copy input values).
PAD_MARKS = {"zeros": "·", "reflect": "↔", "replicate": "≡", "circular": "↻"}

CONV_FORMULA = "out = floor((in + 2p − d(k−1) − 1) / s) + 1"
CEIL_FORMULA = "out = ceil((in + 2p − d(k−1) − 1) / s) + 1, less a last window that would start in the right padding"
TCONV_FORMULA = "out = (in − 1)×s − 2p + d(k−1) + output_padding + 1"
LECTURE_CONV = "with d = 1 this is the lecture's out = (in − k + 2p) / s + 1, the division rounded down"
LECTURE_TCONV = "with d = 1 and no output_padding this is out = (in − 1)×s − 2p + k"


def formula_lines(kind: str, *, dilated: bool, ceil_mode: bool = False, output_padding: bool = False) -> list[str]:
    """The symbolic formula torch uses (``kind``: sliding or scatter), then the lecture's simpler
    form where it applies (no dilation; for tconv no output_padding either)."""
    if kind == "scatter":
        return [TCONV_FORMULA] + ([] if dilated or output_padding else [LECTURE_TCONV])
    if ceil_mode:
        return [CEIL_FORMULA]
    return [CONV_FORMULA] + ([] if dilated else [LECTURE_CONV])


class _Canvas(NamedTuple):
    """The drawn columns of an axis of ``total`` positions: all of them up to MAX_PICTURE, else
    EDGE at each end with ``…`` between (only drawn positions are ever visited)."""

    total: int

    @property
    def elided(self) -> bool:
        return self.total > MAX_PICTURE

    def positions(self) -> list[int]:
        if not self.elided:
            return list(range(self.total))
        return [*range(EDGE), *range(self.total - EDGE, self.total)]

    def column(self, position: int) -> int:
        return position if position < EDGE or not self.elided else EDGE + 1 + position - (self.total - EDGE)

    def shows(self, first: int, last: int) -> bool:
        """Whether positions first..last are all drawn."""
        if not self.elided:
            return True
        return last < EDGE or first >= self.total - EDGE

    def strip(self, mark: Callable[[int], str | None]) -> str:
        row = [" "] * (2 * EDGE + 1 if self.elided else self.total)
        if self.elided:
            row[EDGE] = "…"
        for position in self.positions():
            drawn = mark(position)
            if drawn:
                row[self.column(position)] = drawn
        return "".join(row).rstrip()


def _taps(start: int, kernel: int, dilation: int) -> Callable[[int], str | None]:
    def mark(position: int) -> str | None:
        offset = position - start
        return "█" if offset >= 0 and offset % dilation == 0 and offset // dilation < kernel else None

    return mark


def _shown(count: int, visible: Callable[[int], bool], elided: bool) -> list[int | None]:
    """Which windows (or inputs) get a row: all of up to 8, else the first 3 and the last 2."""
    if count <= 8 and not elided:
        return list(range(count))
    head = [i for i in range(min(count, 3)) if visible(i)] or [0]  # a window wider than an end: drawn clipped
    tail = [i for i in range(max(count - 2, len(head)), count) if visible(i)] or [i for i in [count - 1] if i > head[-1]]
    gap = bool(tail) and tail[0] > (head[-1] if head else -1) + 1
    return [*head, None, *tail] if gap else [*head, *tail]


def picture(size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int, out: int, axis: str = "", mode: str = "zeros") -> list[str]:
    """Where each window sits on one axis: ``·`` zero padding (``↔`` reflect, ``≡`` replicate,
    ``↻`` circular), ``■`` input, ``█`` a kernel tap, ``^`` an input position no window reads.
    An axis wider than MAX_PICTURE keeps its two ends, ``…`` between."""
    if out < 1 or min(pad_left, pad_right) < 0:
        return []
    canvas = _Canvas(pad_left + size + pad_right)
    pad = PAD_MARKS.get(mode, PAD_MARKS["zeros"])
    label = f"{axis} " if axis else ""
    indent = " " * len(label)
    width = max(2, len(str(out)))
    lines = [f"{label}{'input':<{7 + width}}{canvas.strip(lambda q: pad if q < pad_left or q >= pad_left + size else '■')}"]
    span = effective_kernel(kernel, dilation)
    for index in _shown(out, lambda i: canvas.shows(i * stride, min(i * stride + span, canvas.total) - 1), canvas.elided):
        if index is None:
            lines.append(f"{indent}   …")
            continue
        lines.append(f"{indent}window {index + 1:<{width}}{canvas.strip(_taps(index * stride, kernel, dilation))}")
    missed = uncovered(size, kernel, stride, pad_left, pad_right, dilation, out)
    if missed:
        first = pad_left + size - missed
        lines.append(f"{indent}{'unread':<{7 + width}}{canvas.strip(lambda q: '^' if first <= q < pad_left + size else None)}")
    return lines


def scatter_picture(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int, out: int, axis: str = "") -> list[str]:
    """A transposed convolution on one axis: the full size ``(in−1)s + d(k−1) + 1`` (``■``), where
    each input's kernel copy lands (``█``), and the output: ``-`` cropped by padding, ``+`` added
    by output_padding."""
    if out < 1:
        return []
    span = effective_kernel(kernel, dilation)
    full = (size - 1) * stride + span
    canvas = _Canvas(max(full, padding + out))
    label = f"{axis} " if axis else ""
    indent = " " * len(label)
    width = max(3, len(str(size)))
    lines = [f"{label}{'full':<{6 + width}}{canvas.strip(lambda q: '■' if q < full else None)}"]
    for index in _shown(size, lambda i: canvas.shows(i * stride, i * stride + span - 1), canvas.elided):
        if index is None:
            lines.append(f"{indent}   …")
            continue
        lines.append(f"{indent}input {index + 1:<{width}}{canvas.strip(_taps(index * stride, kernel, dilation))}")

    def kept(q: int) -> str | None:
        if padding <= q < padding + out:
            return "■" if q < full else "+"
        return "-" if q < full else None

    lines.append(f"{indent}{'output':<{6 + width}}{canvas.strip(kept)}")
    return lines


# -- one axis's geometry, computed once -------------------------------------------------------


class SlidingAxis(NamedTuple):
    """One spatial axis of a sliding window (conv, pooling) on one input size.

    Window ``i`` starts at input index ``i·stride − pad_left`` and its taps read every
    ``dilation``-th index from there (indices < 0 or ≥ size are padding). ``output`` < 1 means
    the window does not fit. (A NamedTuple: cheap to define on the start-up path.)
    """

    name: str  # "H", "W", "L", "D"
    size: int
    kernel: int
    stride: int
    pad_left: int
    pad_right: int
    dilation: int
    ceil_mode: bool
    output: int

    @property
    def span(self) -> int:
        """The dilated kernel, ``d(k−1) + 1``."""
        return effective_kernel(self.kernel, self.dilation)

    @property
    def padded(self) -> int:
        return self.size + self.pad_left + self.pad_right

    def taps(self, window: int) -> list[int]:
        """The input index each tap of window ``window`` (0-based) reads."""
        start = window * self.stride - self.pad_left
        return [start + tap * self.dilation for tap in range(self.kernel)]

    @property
    def uncovered(self) -> int:
        """Trailing input positions no window reads (0 under ceil_mode, whose last window reaches them)."""
        if self.ceil_mode or self.output < 1:
            return 0
        return uncovered(self.size, self.kernel, self.stride, self.pad_left, self.pad_right, self.dilation, self.output)

    def explain(self) -> str:
        if self.ceil_mode:
            return explain_pool(self.name, self.size, self.kernel, self.stride, self.pad_left, self.dilation, True)
        return explain_conv(self.name, self.size, self.kernel, self.stride, self.pad_left, self.pad_right, self.dilation)

    def picture(self, mode: str = "zeros") -> list[str]:
        return picture(self.size, self.kernel, self.stride, self.pad_left, self.pad_right, self.dilation, self.output, self.name, mode)

    # -- inverses ---------------------------------------------------------------------------
    def smallest_input(self) -> int:
        """The smallest input size with at least one window, at this kernel, stride and padding."""
        return smallest_input(self.kernel, self.stride, self.pad_left, self.pad_right, self.dilation, self.ceil_mode)

    def padding_to_fit(self) -> int:
        """The smallest symmetric padding that lets one window fit this input."""
        return -(-(self.span - self.size) // 2)

    def padding_for(self, want: int) -> int | None:
        """The symmetric padding that makes a stride-1 window give ``want`` outputs, or None."""
        if self.stride != 1 or self.ceil_mode:
            return None
        twice = want - 1 + self.span - self.size
        return twice // 2 if twice % 2 == 0 and twice >= 0 else None


def sliding_out(size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int, ceil_mode: bool = False) -> int:
    """One axis's output size: conv arithmetic, or pooling's with ``ceil_mode``; < 1 when no window fits."""
    if ceil_mode:
        return pool_out(size, kernel, stride, pad_left, dilation, True)
    return conv_out(size, kernel, stride, pad_left, pad_right, dilation)


def sliding_axis(name: str, size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int, ceil_mode: bool = False) -> SlidingAxis:
    """The geometry of one axis (its output from :func:`sliding_out`)."""
    out = sliding_out(size, kernel, stride, pad_left, pad_right, dilation, ceil_mode)
    return SlidingAxis(name, size, kernel, stride, pad_left, pad_right, dilation, ceil_mode, out)


def smallest_input(kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int, ceil_mode: bool = False) -> int:
    """Inverse of :func:`conv_out`/:func:`pool_out` at 1: floor mode needs ``in + pl + pr ≥ span``;
    ceil mode lets the one window hang over the right padding by ``s − 1``."""
    span = effective_kernel(kernel, dilation)
    return max(1, span - pad_left - pad_right - (stride - 1 if ceil_mode else 0))


class ScatterAxis(NamedTuple):
    """One spatial axis of a transposed convolution: input ``i`` scatters its taps to the
    outputs ``i·stride − padding + tap·dilation`` (those < 0 or ≥ output are cropped)."""

    name: str
    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    output_padding: int
    output: int

    @property
    def uncovered(self) -> int:
        """Every input is scattered somewhere: nothing is left unread."""
        return 0

    def targets(self, index: int) -> list[int]:
        """The output index each tap of input ``index`` (0-based) writes."""
        start = index * self.stride - self.padding
        return [start + tap * self.dilation for tap in range(self.kernel)]

    def explain(self) -> str:
        return explain_tconv(self.name, self.size, self.kernel, self.stride, self.padding, self.dilation, self.output_padding)

    def picture(self) -> list[str]:
        return scatter_picture(self.size, self.kernel, self.stride, self.padding, self.dilation, self.output_padding, self.output, self.name)

    # -- inverses ---------------------------------------------------------------------------
    def max_padding(self) -> int:
        """The largest padding that leaves an output of at least 1:
        (in−1)s + d(k−1) + op + 1 − 2p ≥ 1  ⇔  p ≤ ((in−1)s + d(k−1) + op) / 2."""
        return ((self.size - 1) * self.stride + self.dilation * (self.kernel - 1) + self.output_padding) // 2

    def adjust(self, diff: int) -> tuple[int, int] | None:
        """(padding, output_padding) closest to the current ones that change the output by ``diff``:
        the output grows by output_padding − 2·padding, output_padding < max(stride, dilation)."""
        limit = max(self.stride, self.dilation)
        pad, op = self.padding, self.output_padding
        target = op - 2 * pad + diff
        options = [(p, target + 2 * p) for p in range(0, max(pad, 0) + abs(diff) + 2) if 0 <= target + 2 * p < limit]
        if not options:
            return None
        return min(options, key=lambda o: (abs(o[0] - pad) + abs(o[1] - op), o[0]))


def scatter_axis(name: str, size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> ScatterAxis:
    """The geometry of one axis of a transposed convolution."""
    out = tconv_out(size, kernel, stride, padding, dilation, output_padding)
    return ScatterAxis(name, size, kernel, stride, padding, dilation, output_padding, out)
