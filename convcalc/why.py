"""Explain a pasted PyTorch shape error: what its numbers are, which rule broke, the number that fixes it.

Pure Python: regular expressions over the text (no torch). Every pattern starts with a literal
phrase of torch's message and its numbers have a bounded number of digits and items, so a
search is linear in the text; only the last :data:`MAX_CHARS` characters of a longer text are
read (the error of a traceback is at its end). Of every message recognised, the last one in the
text is explained (``python train.py 2>&1 | convcalc why``).

Each kind of message has one builder that turns the numbers into an :class:`Explanation`; the
arithmetic (window spans, output sizes, torch's output_padding rule) is the engine's:
:mod:`convcalc.formulas` and the layer families in :mod:`convcalc.layers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import formulas
from .errors import ConvcalcError, SpecError

#: Characters of a text that are read: the tail of a longer one.
MAX_CHARS = 1 << 20
#: What ``convcalc why`` explains (said when a text holds none of it).
KNOWN = "shape errors of conv/pool/linear/norm/cat/view"

_N = r"\d{1,19}(?!\d)"  # a size: at most 19 digits (never the first 19 of a longer number)
_SN = r"-?\d{1,19}(?!\d)"  # a size that may be negative (a calculated output size, a -1 in a shape)
_LIST = rf"{_N}(?:, {_N}){{0,15}}"  # "1, 3, 28, 28"
_SLIST = rf"{_SN}(?:, {_SN}){{0,15}}"
_WEIGHT = rf"{_N}(?:,? {_N}){{0,16}}"  # "[16, 3, 3, 3]" or older torch's "16 3 3 3"
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


class UnrecognisedMessage(ConvcalcError):
    """The text holds no torch shape error that convcalc knows."""


@dataclass(frozen=True)
class Explanation:
    """One recognised torch error, explained.

    ``numbers`` are the values read from the message (and derived from them), by name;
    ``what``/``why`` the two sentences of the explanation; ``fixes`` pasteable changes, the
    surest first; ``formula`` the worked rule with the numbers put in (``--explain``).
    """

    kind: str
    numbers: dict[str, Any]
    what: str
    why: str
    fixes: tuple[str, ...]
    formula: tuple[str, ...] = ()
    message: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def explanation(self) -> str:
        return f"{self.what}; {self.why}."

    def lines(self, *, explain: bool = False) -> list[str]:
        """Two to five short lines: what happened, why (and the formula under --explain), the fix."""
        out = [self.what, self.why]
        if explain:
            out += [f"  {line}" for line in self.formula]
        if self.fixes:
            line = "fix: " + self.fixes[0]
            if len(self.fixes) > 1 and len(line) + len(self.fixes[1]) < 100:
                line += "   or   " + self.fixes[1]
            out.append(line)
        out += list(self.notes[:1])
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "numbers": self.numbers,
            "explanation": self.explanation,
            "fixes": list(self.fixes),
            "formula": list(self.formula),
            "message": self.message,
        }


# -- reading the text ------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[A-Za-z]")
_SPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    """The tail of ``text`` (:data:`MAX_CHARS`), colour codes removed, whitespace runs as one space
    (a message pasted across lines reads as one)."""
    tail = text[-MAX_CHARS:]
    return _SPACE.sub(" ", _ANSI.sub("", tail))


def _ints(text: str | None) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d{1,19}", text or "")]


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    build: Callable[[re.Match[str], str], Explanation]


def explain(text: str) -> Explanation:
    """Explain the last torch shape error in ``text``; :class:`UnrecognisedMessage` if there is none."""
    cleaned = clean(text)
    best: tuple[int, Rule, re.Match[str]] | None = None
    for rule in RULES:
        last = None
        for last in rule.pattern.finditer(cleaned):
            pass
        if last is not None and (best is None or last.start() > best[0]):
            best = (last.start(), rule, last)
    if best is None:
        raise UnrecognisedMessage(f"not a torch shape error convcalc knows (it explains {KNOWN}; see convcalc why --help)")
    _, rule, match = best
    before = cleaned[max(0, match.start() - 4000) : match.start()]
    return rule.build(match, before)


def recognises(text: str) -> bool:
    try:
        explain(text)
    except UnrecognisedMessage:
        return False
    return True


# -- small helpers ---------------------------------------------------------------------------


def _compact(values: Sequence[int]) -> str:
    """``[3, 3]`` → ``"3"``, ``[3, 5]`` → ``"(3, 5)"``: a torch argument, one value when all agree."""
    if len(set(values)) == 1:
        return str(values[0])
    return "(" + ", ".join(str(v) for v in values) + ")"


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _times(values: Sequence[int]) -> str:
    return "×".join(str(v) for v in values)


def _axes(count: int) -> tuple[str, ...]:
    return _AXES.get(count, tuple(f"axis {i}" for i in range(count)))


def square_factorings(n: int, limit: int = 4) -> list[tuple[int, int]]:
    """``C×H×H = n`` with H ≥ 2 (a square feature map flattened), the largest maps first:
    3872 → [(2, 44), (8, 22), (32, 11), (968, 2)]. Only H up to 4096 is tried (bounded time)."""
    found = []
    for side in range(2, 4097):
        if side * side > n:
            break
        if n % (side * side) == 0:
            found.append((n // (side * side), side))
    found.sort(key=lambda cs: -cs[1])
    return found[:limit]


def _factoring_text(n: int) -> str:
    """``"3872 = 32×11×11 or 8×22×22 or 2×44×44 (C×H×W)"``, the likeliest channel counts first."""
    options = square_factorings(n, limit=8)
    if not options:
        return f"{n} (not C×H×W of a square map)"
    # likeliest first: a power-of-two channel count (or 3: an image), of a conv's 16..2048, the larger map
    options.sort(key=lambda cs: (not (cs[0] & (cs[0] - 1) == 0 or cs[0] == 3), not 16 <= cs[0] <= 2048, -cs[1]))
    shown = " or ".join(f"{c}×{h}×{h}" for c, h in options[:3])
    return f"{n} = {shown} (C×H×W)"


def _context_layer(before: str, words: str) -> re.Match[str] | None:
    """The last mention of a layer (``max_pool2d``, ``MaxPool2d``, ``BatchNorm1d``) in the traceback
    text before the message, or None."""
    last = None
    for last in re.finditer(words, before, re.IGNORECASE):
        pass
    return last


def _engine_accepts(type_name: str, **kwargs: Any) -> bool:
    """Whether the engine's layer family takes these constructor arguments (its rule, not a copy)."""
    from .layers import make_layer

    try:
        make_layer(type_name, **kwargs)
    except SpecError:
        return False
    return True


# -- the kinds -------------------------------------------------------------------------------


def _linear(m: re.Match[str], before: str) -> Explanation:
    rows, features, in_features, out_features = (int(v) for v in m.groups())
    numbers = {
        "rows": rows,
        "features": features,
        "in_features": in_features,
        "out_features": out_features,
        "mat1": [rows, features],
        "mat2": [in_features, out_features],
    }
    what = (
        f"nn.Linear({in_features}, {out_features}) got {features} input features"
        f" (torch multiplies {rows}×{features} by the weight's {in_features}×{out_features})"
    )
    why = f"in_features must be the input's last dimension: {_factoring_text(features)}"
    notes: tuple[str, ...] = ()
    if features < in_features and rows > 1:
        notes = (
            f"if it was an unflattened (N, C, H, W) map, torch used its last axis ({features}) only: x.flatten(1) first",
        )
    formula = (
        f"(rows × in) @ (in × out): ({rows}×{features}) @ ({in_features}×{out_features}) needs {features} = {in_features}",
        (
            f"nn.Linear({features}, {out_features}) holds {features}×{out_features} + {out_features} ="
            f" {features * out_features + out_features:,} parameters"
        ),
    )
    fixes = (f"nn.Linear({features}, {out_features})", f"nn.LazyLinear({out_features})")
    return Explanation("linear_in_features", numbers, what, why, fixes, formula, m.group(0), notes)


def _conv_channels(m: re.Match[str], before: str) -> Explanation:
    groups, shape = int(m.group(1)), _ints(m.group(3))
    weight = _ints(m.group(2))[: len(shape)]  # older torch printed a stray number after the sizes
    expected, got = int(m.group(4)), int(m.group(5))
    dims = len(weight) - 2
    out_channels, per_group, kernel = weight[0], weight[1], weight[2:]
    name = f"Conv{dims}d" if 1 <= dims <= 3 else "Conv"
    numbers = {
        "groups": groups,
        "weight": weight,
        "input": shape,
        "expected_channels": expected,
        "channels": got,
        "out_channels": out_channels,
        "kernel_size": kernel,
    }
    group_text = f", groups={groups}" if groups != 1 else ""
    what = f"{name}({expected}, {out_channels}, kernel_size={_compact(kernel)}{group_text}) got {_count(got, 'channel')}: input {shape}"
    if groups == 1:
        why = f"its weight {weight} is out×in×kernel: dimension 1 of the input must be in_channels = {expected}"
    else:
        why = (
            f"groups={groups} splits in_channels into {groups} groups of {per_group} (weight {weight}):"
            f" dimension 1 of the input must be {per_group}×{groups} = {expected}"
        )
    fixes: list[str] = []
    channels_last = len(shape) >= 3 and shape[-1] == expected and got != expected
    if channels_last:
        order = ", ".join(str(i) for i in (0, len(shape) - 1, *range(1, len(shape) - 1)))
        fixes.append(f"x.permute({order})")  # channels-last (N, H, W, C) from PIL/numpy
    new_groups = max(g for g in range(1, groups + 1) if got % g == 0 and out_channels % g == 0)
    fixes.append(f"in_channels={got}" + (f", groups={new_groups}" if new_groups != groups else ""))
    if got == 1 and expected == 3 and len(shape) == dims + 2:
        fixes.append("x.expand(-1, 3, " + ", ".join(["-1"] * dims) + ")")
    if got == 3 and expected == 1:
        fixes.append("x.mean(1, keepdim=True)")
    notes: tuple[str, ...] = ()
    if channels_last:
        notes = (f"its last axis is {expected}: channels-last (N, H, W, C) data; torch wants (N, C, H, W)",)
    formula = (f"input channels = weight[1] × groups = {per_group} × {groups} = {expected} ≠ {got}",)
    return Explanation("conv_in_channels", numbers, what, why, tuple(fixes), formula, m.group(0), notes)


def _tconv_channels(m: re.Match[str], before: str) -> Explanation:
    weight, shape = _ints(m.group(1)), _ints(m.group(2))
    expected, got = int(m.group(3)), int(m.group(4))
    dims = len(weight) - 2
    name = f"ConvTranspose{dims}d" if 1 <= dims <= 3 else "ConvTranspose"
    numbers = {"weight": weight, "input": shape, "expected_channels": expected, "channels": got, "kernel_size": weight[2:]}
    what = f"{name}(in_channels={expected}, kernel_size={_compact(weight[2:])}) got {_count(got, 'channel')}: input {shape}"
    why = f"its weight {weight} is in×out/groups×kernel: dimension 1 of the input must be in_channels = {expected}"
    formula = (f"input channels = weight[0] = {expected} ≠ {got}",)
    fixes = (f"in_channels={got}",)
    notes = ("with groups > 1, in_channels must also be divisible by groups",)
    return Explanation("conv_in_channels", numbers, what, why, fixes, formula, m.group(0), notes)


def _kernel_larger(m: re.Match[str], before: str) -> Explanation:
    padded, kernel = _ints(m.group(1)), _ints(m.group(2))
    if len(padded) != len(kernel):
        kernel = (kernel + kernel[-1:] * len(padded))[: len(padded)]
    axes = _axes(len(padded))
    short = [max(0, k - p) for p, k in zip(padded, kernel)]
    more_padding = [-(-s // 2) for s in short]  # per side: ceil(short / 2)
    fits = [formulas.conv_out(p + 2 * e, k, 1, 0, 0, 1) for p, k, e in zip(padded, kernel, more_padding)]
    assert min(fits) >= 1, "the padding fix must make every window fit"
    name = f"Conv{len(padded)}d" if len(padded) <= 3 else "Conv"
    failing = [a for a, s in zip(axes, short) if s]
    numbers = {"padded_input": padded, "kernel": kernel, "short_by": short, "more_padding": more_padding}
    what = f"{name}: the kernel ({_times(kernel)}) is larger than the padded input ({_times(padded)})"
    why = (
        f"a window must fit in input + 2×padding: on {', '.join(failing)} it is {_compact([s for s in short if s])} short"
        " (torch prints the dilated kernel, d(k−1)+1)"
    )
    formula = tuple(
        f"{a}: floor(({p} − {k}) / s) + 1 ≤ floor({p - k} / 1) + 1 = {formulas.conv_out(p, k, 1, 0, 0, 1)} < 1"
        f" even at stride 1; with {e} more padding per side: {p + 2 * e} ≥ {k}"
        for a, p, k, e, s in zip(axes, padded, kernel, more_padding, short)
        if s
    )
    fixes = (
        f"padding += {_compact(more_padding)}",
        f"an input {_times(short)} larger (the padded input must reach {_times([max(p, k) for p, k in zip(padded, kernel)])})",
        f"kernel_size={_compact([min(p, k) for p, k in zip(padded, kernel)])}, dilation=1",
    )
    return Explanation("kernel_larger_than_input", numbers, what, why, fixes, formula, m.group(0))


def _output_too_small(m: re.Match[str], before: str) -> Explanation:
    given, calculated = _ints(m.group(1)), _ints(m.group(2))
    size = min(len(given), len(calculated))
    given, calculated = given[:size], calculated[:size]
    spatial_in, spatial_out = given[1:], calculated[1:]
    dims = len(spatial_in)
    mention = _context_layer(before, r"(max|avg)_?pool([123])d")
    if mention is not None:
        dims = int(mention.group(2))
    axes = _axes(len(spatial_in))
    failing = [i for i, out in enumerate(spatial_out) if out < 1]
    # out = floor((in + 2p − span)/s) + 1 ≤ 0 means the window spans at least 1 − out more than in + 2p
    growth = {axes[i]: 1 - spatial_out[i] for i in failing}
    numbers = {
        "input": given,
        "output": calculated,
        "channels": given[0] if given else None,
        "failing_axes": [axes[i] for i in failing],
        "window_exceeds_padded_input_by_at_least": growth,
    }
    conv = len(given) == len(calculated) and given[:1] != calculated[:1]
    layer = "convolution" if conv else "pooling layer"
    what = f"a {layer} window is larger than its input: {_times(spatial_in)} ({_count(given[0], 'channel')}) gives {_times(spatial_out)}"
    why = (
        f"out = floor((in + 2p − d(k−1) − 1)/s) + 1 must be ≥ 1: the window must fit in in + 2p"
        f" (not on {', '.join(axes[i] for i in failing) or 'an axis'})"
    )
    formula = tuple(
        f"{axes[i]}: floor(({spatial_in[i]} + 2p − d(k−1) − 1) / s) + 1 = {spatial_out[i]} < 1, so d(k−1) + 1 ≥"
        f" {spatial_in[i]} + 2p + {growth[axes[i]]}"
        for i in failing
    )
    target = _compact([max(1, out) for out in spatial_out])
    kinds = [mention.group(1).lower()] if mention is not None else ["avg", "max"]
    adaptive = [f"nn.Adaptive{k.capitalize()}Pool{dims}d({target})" for k in kinds]
    fixes = [*adaptive]
    if len(failing) == len(spatial_out):
        fixes.append(f"kernel_size={_compact(spatial_in)}, padding=0")
    fixes.append(
        "a larger input: at least "
        + ", ".join(f"{growth[axes[i]]} more on {axes[i]}" for i in failing)
        + " here (convcalc model --find-sizes finds the model inputs that fit)"
    )
    notes: tuple[str, ...] = ()
    if mention is None and dims == 2 and spatial_in[:1] == [1] and spatial_out[:1] == [1]:
        notes = ("torch runs avg_pool1d as 2-D with H = 1: for a 1-D layer, read W",)
    return Explanation("output_too_small", numbers, what, why, tuple(fixes), formula, m.group(0), notes)


def _pool3d_kernel(m: re.Match[str], before: str) -> Explanation:
    """avg_pool3d compares its kernel with the input before padding (padding does not help)."""
    sizes = [int(v) for v in m.group(1, 2, 3)]
    kernel = [int(v) for v in m.group(4, 5, 6)]
    axes = _axes(3)
    short = [max(0, k - i) for i, k in zip(sizes, kernel)]
    failing = [a for a, s in zip(axes, short) if s]
    fitted = [min(i, k) for i, k in zip(sizes, kernel)]
    numbers = {"input": sizes, "kernel": kernel, "short_by": short}
    what = f"AvgPool3d: the kernel ({_times(kernel)}) is larger than the input ({_times(sizes)})"
    why = f"avg_pool3d needs kernel ≤ input on every axis before padding (padding does not help): {', '.join(failing)} fails"
    formula = tuple(f"{a}: kernel {k} > input {i}" for a, i, k, s in zip(axes, sizes, kernel, short) if s)
    fixes = (
        f"kernel_size={_compact(fitted)}",
        "nn.AdaptiveAvgPool3d(1)",
        "a larger input: " + ", ".join(f"{s} more on {a}" for a, s in zip(axes, short) if s),
    )
    notes = ("a smaller kernel keeps padding ≤ kernel_size // 2 (torch's pooling rule)",)
    return Explanation("kernel_larger_than_input", numbers, what, why, fixes, formula, m.group(0), notes)


def _pool1d_output(m: re.Match[str], before: str) -> Explanation:
    kind, output = m.group(1), int(m.group(2))
    name = f"{kind.capitalize()}Pool1d"
    numbers = {"output": [output], "failing_axes": ["L"]}
    what = f"{name}: the window is larger than the padded input, so the output would be {output} long"
    why = "out = floor((in + 2p − d(k−1) − 1)/s) + 1 must be ≥ 1: the window must fit in in + 2p"
    fixes = (f"nn.Adaptive{kind.capitalize()}Pool1d(1)", "a larger input, or kernel_size ≤ the input length")
    formula = (f"L: floor((in + 2p − d(k−1) − 1) / s) + 1 = {output} < 1",)
    return Explanation("output_too_small", numbers, what, why, fixes, formula, m.group(0))


def _cat_new(m: re.Match[str], before: str) -> Explanation:
    dim, expected, got, index = (int(v) for v in m.groups())
    return _cat(m, dim, expected, got, index, None)


def _cat_old(m: re.Match[str], before: str) -> Explanation:
    dim, expected, got, where = (int(v) for v in m.groups()[:4])
    index = int(m.group(5)) if m.group(5) is not None else None
    return _cat(m, dim, expected, got, index, where)


def _cat(m: re.Match[str], dim: int, expected: int, got: int, index: int | None, where: int | None) -> Explanation:
    other = f"tensor {index}" if index is not None else "another tensor"
    b = f"t{index}" if index is not None else "t1"
    numbers: dict[str, Any] = {"cat_dim": dim, "expected": expected, "got": got, "tensor": index, "differing_dim": where}
    diff = abs(expected - got)
    place = f"dimension {where}" if where is not None else f"a dimension other than {dim} (torch does not say which)"
    what = f"torch.cat(dim={dim}): {other} has {got} where tensor 0 has {expected}, in {place}"
    why = (
        f"cat needs every dimension but {dim} equal; off by {diff} in a U-Net skip is typically a stride-2 layer"
        " that rounded an odd size down"
    )
    fixes: list[str] = []
    if where is not None:
        big, small = ("t0", got) if expected > got else (b, expected)
        fixes.append(f"{big} = {big}.narrow({where}, 0, {small})")
    else:
        fixes.append(f"{b} = F.pad({b}, [0, t0.size(-1) - {b}.size(-1), 0, t0.size(-2) - {b}.size(-2)])")
    if got < expected:
        fixes.append(f"output_padding={diff} on the ConvTranspose that makes {other} (< its stride)")
    fixes.append("an input size divisible by 2ⁿ for n stride-2 layers")
    formula: tuple[str, ...] = (
        f"t0 = tensor 0 ({expected} there), {b} = {other} ({got}); F.pad's list is (left, right) per axis from the last,"
        " a negative amount crops",
    )
    if where is None:
        formula += ("the pad above is for 2-D feature maps (N, C, H, W); 1-D maps need one pair, 3-D maps three",)
    return Explanation("cat_size_mismatch", numbers, what, why, tuple(fixes), formula, m.group(0))


def _broadcast(m: re.Match[str], before: str) -> Explanation:
    a, b, dim = (int(v) for v in m.groups())
    numbers = {"a": a, "b": b, "dim": dim}
    what = f"a + b (or *, -, …): a has {a} and b has {b} at dimension {dim}"
    why = "elementwise ops need equal sizes, or 1 (which broadcasts), in every dimension"
    small_name, small, big_name, big = ("b", b, "a", a) if b < a else ("a", a, "b", b)
    fixes: list[str] = []
    if dim == 1:
        fixes.append(f"{small_name} = nn.Conv2d({small}, {big}, kernel_size=1)({small_name})")
    fixes.append(f"{big_name} = {big_name}.narrow({dim}, 0, {small})")
    if dim >= 2 and (big - small) % 2 == 0:
        fixes.append(f"padding += {(big - small) // 2} on the stride-1 conv that makes {small_name}")
    formula = (f"dimension {dim}: {a} vs {b}: neither is 1, so they do not broadcast",)
    notes: tuple[str, ...] = ()
    if dim == 1:
        notes = (f"for (N, C, H, W) branches that is the channels: a 1×1 conv {small} → {big}, as ResNet's downsample",)
    return Explanation("broadcast_mismatch", numbers, what, why, tuple(fixes), formula, m.group(0), notes)


def _view(m: re.Match[str], before: str) -> Explanation:
    shape = _ints(m.group(1))
    size = int(m.group(2))
    known = [v for v in shape if v != -1]
    needed = math.prod(known) if known else 1
    numbers: dict[str, Any] = {"shape": shape, "size": size, "product": needed}
    if -1 in shape:
        what = f"view/reshape to {shape}: {needed} does not divide the tensor's {size} elements"
    else:
        what = f"view/reshape to {shape} needs {needed} elements; the tensor has {size}"
    why = f"a view keeps every element: {_factoring_text(size)}"
    fixes = ["x.flatten(1)", "x.view(x.size(0), -1)"]
    batch = shape[0] if shape and shape[0] > 0 else None
    if batch is not None and size % batch == 0:
        fixes.insert(1, f"x.view({batch}, {size // batch})")
        numbers["per_sample"] = size // batch
        why += f"; a batch of {batch} has {size // batch} per sample"
    formula = (f"{' × '.join(str(v) for v in known) or '1'} = {needed}; {size} / {needed} = {size / needed:g}",)
    notes = ("x.flatten(1) keeps the batch and flattens the rest, as nn.Flatten(); the next Linear takes C×H×W",)
    return Explanation("view_size", numbers, what, why, tuple(fixes), formula, m.group(0), notes)


def _batchnorm(m: re.Match[str], before: str) -> Explanation:
    which, channels, features = m.group(1), int(m.group(2)), int(m.group(3))
    mention = _context_layer(before, r"batch_?norm([123])d")
    numbers = {"channels": channels, "num_features": features, "buffer": f"running_{which}"}
    what = f"BatchNorm has num_features={features}, but its input has {_count(channels, 'channel')} (dimension 1)"
    why = f"it keeps a running mean and variance per channel: num_features must be {channels}"
    fixes = [f"num_features={channels}"]
    if mention is not None:
        fixes.append(f"nn.BatchNorm{mention.group(1)}d({channels})")
    else:
        fixes.append(f"nn.BatchNorm2d({channels}) (BatchNorm1d/3d: the same number)")
    formula = (f"running_{which}: {features} values; input dimension 1: {channels}",)
    return Explanation("batchnorm_features", numbers, what, why, tuple(fixes), formula, m.group(0))


def _input_dims_fixes(shape: list[int], dims: int, in_channels: int | None) -> list[str]:
    """Pasteable reshapes that give a ``dims``-D layer the ``dims + 1`` or ``dims + 2`` axes it takes."""
    rank = len(shape)
    fixes: list[str] = []
    if rank == dims + 1 and in_channels is not None:  # older torch: no unbatched inputs
        if shape[0] == in_channels:
            fixes.append("x.unsqueeze(0)")
        if in_channels == 1:
            fixes.append("x.unsqueeze(1)")
        return fixes or ["x.unsqueeze(0)"]
    if rank == dims:
        return ["x.unsqueeze(0)", "x.unsqueeze(0).unsqueeze(0)"]
    if rank < dims:
        total = math.prod(shape) if shape else 1
        if dims == 2:
            for channels in (1, 3):
                side = math.isqrt(total // channels) if total % channels == 0 else 0
                if side and channels * side * side == total:
                    fixes.append(f"x.view({channels}, {side}, {side})")
        elif dims == 1 and rank == 0:
            fixes.append("x.view(1, 1)")
        return fixes
    extra = rank - (dims + 2)
    if extra == 1:
        ones = [i for i in range(rank - dims - 1) if shape[i] == 1]  # a size-1 axis before the channels
        fixes += [f"x.squeeze({i})" for i in ones[:1]]
        fixes.append("x.flatten(0, 1)")
    elif extra > 1:
        fixes.append(f"x.flatten(0, {extra})")
    return fixes


def _conv_dims(m: re.Match[str], before: str) -> Explanation:
    low, high, op = int(m.group(1)), int(m.group(2)), m.group(3)
    shape = _ints(m.group(4))
    dims = int(op[-2])
    return _dims_explanation(m, op, dims, (low, high), shape, None)


def _conv_dims_old(m: re.Match[str], before: str) -> Explanation:
    expected, weight_rank = int(m.group(1)), int(m.group(2))
    weight = _ints(m.group(3))[:weight_rank]
    shape = _ints(m.group(5))
    dims = expected - 2
    in_channels = weight[1] if len(weight) > 1 else None
    return _dims_explanation(m, f"conv{dims}d", dims, (expected,), shape, in_channels, weight)


def _dims_explanation(
    m: re.Match[str],
    op: str,
    dims: int,
    ranks: tuple[int, ...],
    shape: list[int],
    in_channels: int | None,
    weight: list[int] | None = None,
) -> Explanation:
    axes = "×".join(_axes(dims))
    rank = len(shape)
    numbers: dict[str, Any] = {"op": op, "expected_ranks": list(ranks), "input": shape, "rank": rank}
    if weight is not None:
        numbers["weight"] = weight
    wanted = " or ".join(
        f"{r}-D ({'N×' if r == dims + 2 else ''}C×{axes})" for r in ranks
    )
    what = f"{op} takes a {wanted} input; it got {rank}-D {shape}"
    if rank < min(ranks):
        if rank == dims + 1:
            why = "the batch axis (N) is missing"
        elif rank == dims:
            why = "the channel axis (C) is missing: one channel is C = 1"
        else:
            why = f"{min(ranks) - rank} axes or more are missing: reshape the {math.prod(shape) if shape else 1} values to C×{axes}"
    else:
        why = f"{_count(rank - max(ranks), 'axis', 'axes')} too many: the batch must be one axis, N"
    fixes = _input_dims_fixes(shape, dims, in_channels)
    formula = (f"{op}: {' or '.join(str(r) for r in ranks)} axes; the input has {rank}",)
    return Explanation("conv_input_dims", numbers, what, why, tuple(fixes), formula, m.group(0))


def _output_padding(m: re.Match[str], before: str) -> Explanation:
    def per_axis(text: str) -> dict[str, int]:
        return {name: int(value) for name, value in re.findall(r"_(depth|height|width): (-?\d{1,19})", text)}

    ops, strides, dilations = per_axis(m.group(1)), per_axis(m.group(2)), per_axis(m.group(3))
    names = [n for n in ("depth", "height", "width") if n in ops and n in strides and n in dilations]
    op = [ops[n] for n in names]
    stride = [strides[n] for n in names]
    dilation = [dilations[n] for n in names]
    dims = len(names)
    axes = [n[0].upper() for n in names]
    name = f"ConvTranspose{dims}d"
    largest = [max(s, d) - 1 for s, d in zip(stride, dilation)]
    new_op = [min(o, big) for o, big in zip(op, largest)]
    new_stride = [max(s, o + 1) if o >= s and o >= d else s for o, s, d in zip(op, stride, dilation)]
    assert _engine_accepts(name, out_channels=1, kernel_size=1, stride=stride, dilation=dilation, output_padding=new_op)
    assert _engine_accepts(name, out_channels=1, kernel_size=1, stride=new_stride, dilation=dilation, output_padding=op)
    numbers = {
        "output_padding": op,
        "stride": stride,
        "dilation": dilation,
        "axes": axes,
        "largest_output_padding": largest,
    }
    what = f"{name}: output_padding {_compact(op)} is not smaller than stride {_compact(stride)} or dilation {_compact(dilation)}"
    why = (
        "output_padding picks among the output sizes a stride can give, so it must be < max(stride, dilation):"
        f" at most {_compact(largest)}"
    )
    formula = tuple(
        f"{a}: out = (in − 1)×{s} − 2p + {d}×(k−1) + output_padding + 1 with output_padding ≤ max({s}, {d}) − 1 = {big}"
        f" (here {o})"
        for a, o, s, d, big in zip(axes, op, stride, dilation, largest)
    )
    fixes = [f"output_padding={_compact(new_op)}", f"stride={_compact(new_stride)}"]
    notes: tuple[str, ...] = ()
    if dims == 2 and (op[0], stride[0], dilation[0]) == (0, 1, 1):
        notes = (f"torch runs ConvTranspose1d as 2-D with H = 1: for a 1-D layer, output_padding={new_op[1]}",)
    return Explanation("output_padding", numbers, what, why, tuple(fixes), formula, m.group(0), notes)


RULES: tuple[Rule, ...] = (
    Rule("linear_in_features", re.compile(rf"mat1 and mat2 shapes cannot be multiplied \(({_N})x({_N}) and ({_N})x({_N})\)"), _linear),
    Rule("linear_in_features", re.compile(rf"size mismatch, m1: \[({_N}) x ({_N})\], m2: \[({_N}) x ({_N})\]"), _linear),
    Rule(
        "conv_in_channels",
        re.compile(
            rf"Given groups=({_N}), weight(?: of size)? ?\[?({_WEIGHT})\]?,(?: so)? expected input\[({_LIST})\] to have"
            rf" ({_N}) channels, but got ({_N}) channels instead"
        ),
        _conv_channels,
    ),
    Rule(
        "conv_in_channels",
        re.compile(
            rf"Given transposed=1, weight of size \[?({_WEIGHT})\]?, expected input\[({_LIST})\] to have ({_N}) channels,"
            rf" but got ({_N}) channels instead"
        ),
        _tconv_channels,
    ),
    Rule(
        "kernel_larger_than_input",
        re.compile(
            rf"Calculated (?:padded )?input size per channel: \(({_N}(?: x {_N}){{0,2}})\)\. Kernel size: \(({_N}(?: x {_N}){{0,2}})\)"
        ),
        _kernel_larger,
    ),
    Rule(
        "output_too_small",
        re.compile(
            rf"Given input size: \(({_SN}(?: ?[x,] ?{_SN}){{1,4}})\)\. Calculated output size: \(({_SN}(?: ?[x,] ?{_SN}){{1,4}})\)\."
            r" Output size is too small"
        ),
        _output_too_small,
    ),
    Rule(
        "kernel_larger_than_input",
        re.compile(
            rf"input image \(T: ({_N}) H: ({_N}) W: ({_N})\) smaller than kernel size \(kT: ({_N}) kH: ({_N}) kW: ({_N})\)"
        ),
        _pool3d_kernel,
    ),
    Rule("output_too_small", re.compile(rf"(max|avg)_pool1d\(\) Invalid computed output size: ({_SN})"), _pool1d_output),
    Rule(
        "cat_size_mismatch",
        re.compile(
            rf"Sizes of tensors must match except in dimension ({_N})\. Expected size ({_N}) but got size ({_N}) for"
            rf" tensor number ({_N}) in the list"
        ),
        _cat_new,
    ),
    Rule(
        "cat_size_mismatch",
        re.compile(
            rf"Sizes of tensors must match except in dimension ({_N})\. Got ({_N}) and ({_N}) in dimension ({_N})"
            rf"(?: \(The offending index is ({_N})\))?"
        ),
        _cat_old,
    ),
    Rule(
        "broadcast_mismatch",
        re.compile(rf"The size of tensor a \(({_N})\) must match the size of tensor b \(({_N})\) at non-singleton dimension ({_N})"),
        _broadcast,
    ),
    Rule("view_size", re.compile(rf"shape '\[({_SLIST})\]' is invalid for input of size ({_N})"), _view),
    Rule("view_size", re.compile(rf"size '\[({_SN}(?: x {_SN}){{0,15}})\]' is invalid for input (?:of )?with ({_N}) elements"), _view),
    Rule("batchnorm_features", re.compile(rf"running_(mean|var) should contain ({_N}) elements not ({_N})"), _batchnorm),
    Rule(
        "conv_input_dims",
        re.compile(
            rf"Expected ({_N})D \(unbatched\) or ({_N})D \(batched\) input to (conv(?:_transpose)?[123]d), but got input of"
            rf" size: ?\[((?:{_LIST})?)\]"
        ),
        _conv_dims,
    ),
    Rule(
        "conv_input_dims",
        re.compile(
            rf"Expected ({_N})-dimensional input for ({_N})-dimensional weight,? \[?({_WEIGHT})\]?,? but got ({_N})-dimensional"
            rf" input of size \[((?:{_LIST})?)\] instead"
        ),
        _conv_dims_old,
    ),
    Rule(
        "output_padding",
        re.compile(
            rf"output padding must be smaller than either stride or dilation, but got"
            rf"((?: output_padding_(?:depth|height|width): {_SN}){{1,3}})((?: stride_(?:depth|height|width): {_SN}){{1,3}})"
            rf"((?: dilation_(?:depth|height|width): {_SN}){{1,3}})"
        ),
        _output_padding,
    ),
)

KINDS = tuple(dict.fromkeys(rule.kind for rule in RULES))
