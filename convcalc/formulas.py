"""Pure per-axis arithmetic of sliding windows, and its worked explanation.

Every function takes one spatial axis. The layer classes in ``convcalc.layers`` apply them
axis by axis and decide which rule an impossible result breaks.
"""

from __future__ import annotations


def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: ``d(k − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """Left/right padding of ``padding='same'``: total ``d(k−1)``, the odd one on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def conv_out(size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int) -> int:
    """``floor((in + pl + pr − d(k−1) − 1) / s) + 1``; ≤ 0 when the kernel does not fit."""
    return (size + pad_left + pad_right - effective_kernel(kernel, dilation)) // stride + 1


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


MAX_PICTURE = 60  # positions; wider axes get no picture


def picture(size: int, kernel: int, stride: int, pad_left: int, pad_right: int, dilation: int, out: int, axis: str = "") -> list[str]:
    """Where each window sits on one axis: ``·`` padding, ``■`` input, ``█`` a kernel tap,
    ``^`` an input position no window reads. Empty for axes wider than MAX_PICTURE."""
    total = pad_left + size + pad_right
    if total > MAX_PICTURE or out < 1 or min(pad_left, pad_right) < 0:
        return []
    strip = "·" * pad_left + "■" * size + "·" * pad_right
    label = f"{axis} " if axis else ""
    lines = [f"{label}input    {strip}"]
    shown = list(range(out)) if out <= 8 else [0, 1, 2, None, out - 2, out - 1]
    for index in shown:
        if index is None:
            lines.append(f"{' ' * len(label)}   …")
            continue
        start = index * stride
        cells = [" "] * total
        for tap in range(kernel):
            position = start + tap * dilation
            if position < total:
                cells[position] = "█"
        lines.append(f"{' ' * len(label)}window {index + 1:<2}{''.join(cells).rstrip()}")
    missed = uncovered(size, kernel, stride, pad_left, pad_right, dilation, out)
    if missed:
        marks = " " * (pad_left + size - missed) + "^" * missed
        lines.append(f"{' ' * len(label)}unread   {marks}")
    return lines
