"""The inverse question: which kernel, stride, padding, dilation (output_padding, ceil_mode) turn
``in`` into ``out``? A search over the engine's per-axis formulas (``convcalc.formulas``), each
answer checked by building the engine's layer before it is returned. Nothing here prints.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import formulas
from .errors import SpecError

#: Families ``solve`` answers, and the torch class stem of each.
FAMILIES = {"conv": "Conv", "tconv": "ConvTranspose", "maxpool": "MaxPool", "avgpool": "AvgPool"}
#: Bounds of the widened ranges (and of the loops they make).
MAX_KERNEL, MAX_STRIDE, MAX_DILATION, MAX_PADDING = 255, 255, 32, 4096
MAX_LOOPS = 2_000_000
#: At most this many answers per axis (the simplest ones), and combined over several axes.
MAX_SOLUTIONS = 500
#: Combinations over axes that differ (the simplest per axis first): at most this many.
MAX_COMBINATIONS = 100


@dataclass(frozen=True)
class Ranges:
    """What is searched: kernel 1..k, stride 1..s, dilation 1..d, padding 0..p (None: 0..k)."""

    kernel: int = 11
    stride: int = 8
    dilation: int = 4
    padding: int | None = None

    def describe(self, family: str) -> str:
        parts = [f"k 1–{self.kernel}", f"s 1–{self.stride}"]
        if family != "avgpool":
            parts.append(f"d 1–{self.dilation}")
        if family.endswith("pool"):
            parts.append("p 0–k/2" if self.padding is None else f"p 0–min(k/2, {self.padding})")
            parts.append("ceil_mode off/on")
        else:
            parts.append("p 0–k" if self.padding is None else f"p 0–{self.padding}")
        if family == "tconv":
            parts.append("op 0–max(s, d)−1")
        return ", ".join(parts)

    def max_padding(self, kernel: int) -> int:
        return kernel if self.padding is None else self.padding


@dataclass(frozen=True)
class Fixed:
    """Values the user gave for one axis (None: searched)."""

    kernel: int | None = None
    stride: int | None = None
    padding: int | None = None
    dilation: int | None = None
    output_padding: int | None = None
    ceil_mode: bool | None = None


@dataclass(frozen=True)
class AxisSetting:
    """One axis's answer; ``pad_left != pad_right`` only where no symmetric padding works."""

    kernel: int
    stride: int
    dilation: int
    pad_left: int
    pad_right: int
    output_padding: int = 0
    ceil_mode: bool = False

    @property
    def symmetric(self) -> bool:
        return self.pad_left == self.pad_right

    def key(self) -> tuple[int, ...]:
        """Simplest first: symmetric padding, no ceil/output_padding, small dilation, kernel, stride, padding."""
        return (
            not self.symmetric,
            self.ceil_mode,
            self.output_padding != 0,
            self.dilation,
            self.kernel,
            self.stride,
            self.pad_left + self.pad_right,
            self.output_padding,
        )


def _values(fixed: int | None, top: int) -> range:
    return range(fixed, fixed + 1) if fixed is not None else range(1, top + 1)


def solve_axis(family: str, size: int, out: int, fixed: Fixed, ranges: Ranges) -> list[AxisSetting]:
    """Every setting of one axis under ``ranges`` (and ``fixed``) with ``size → out``, simplest first."""
    kernels = _values(fixed.kernel, ranges.kernel)
    strides = _values(fixed.stride, ranges.stride)
    dilations = range(1, 2) if family == "avgpool" else _values(fixed.dilation, ranges.dilation)
    loops = len(kernels) * len(strides) * len(dilations)
    if loops > MAX_LOOPS:
        raise SpecError(f"the search would try {loops:,} kernel/stride/dilation settings; narrow it (at most {MAX_LOOPS:,})")
    found: list[AxisSetting] = []
    for k, s, d in itertools.product(kernels, strides, dilations):
        if family == "conv":
            found.extend(_conv(size, out, k, s, d, fixed, ranges.max_padding(k)))
        elif family == "tconv":
            found.extend(_tconv(size, out, k, s, d, fixed, ranges.max_padding(k)))
        else:
            found.extend(_pool(size, out, k, s, d, fixed, ranges))
    found.sort(key=AxisSetting.key)
    return found


def _conv(size: int, out: int, k: int, s: int, d: int, fixed: Fixed, top: int) -> list[AxisSetting]:
    totals = formulas.conv_padding_totals(size, out, k, s, d)
    if fixed.padding is not None:
        return [AxisSetting(k, s, d, fixed.padding, fixed.padding)] if 2 * fixed.padding in totals else []
    even = [AxisSetting(k, s, d, t // 2, t // 2) for t in totals if t % 2 == 0 and t // 2 <= top]
    if even:
        return even
    odd = [t for t in totals if t - t // 2 <= top]
    return [AxisSetting(k, s, d, odd[0] // 2, odd[0] - odd[0] // 2)] if odd else []


def _tconv(size: int, out: int, k: int, s: int, d: int, fixed: Fixed, top: int) -> list[AxisSetting]:
    found = []
    ops = range(max(s, d)) if fixed.output_padding is None else range(fixed.output_padding, fixed.output_padding + 1)
    for op in ops:
        if op >= max(s, d):
            continue  # torch: output_padding must be smaller than stride or dilation
        p = formulas.tconv_padding(size, out, k, s, d, op)
        if p is not None and p <= top and (fixed.padding is None or p == fixed.padding):
            found.append(AxisSetting(k, s, d, p, p, output_padding=op))
    return found


def _pool(size: int, out: int, k: int, s: int, d: int, fixed: Fixed, ranges: Ranges) -> list[AxisSetting]:
    top = k // 2 if ranges.padding is None else min(k // 2, ranges.padding)
    pads = range(top + 1) if fixed.padding is None else range(fixed.padding, fixed.padding + 1)
    found = []
    for p in pads:
        if p > k // 2:
            continue  # torch: pooling padding at most half the kernel
        floor = formulas.pool_out(size, k, s, p, d, False)
        modes = (False, True) if fixed.ceil_mode is None else (fixed.ceil_mode,)
        for ceil in modes:
            result = formulas.pool_out(size, k, s, p, d, True) if ceil else floor
            if result == out and not (ceil and floor == out and fixed.ceil_mode is None):
                found.append(AxisSetting(k, s, d, p, p, ceil_mode=ceil))
    return found


def nearest(family: str, size: int, out: int, fixed: Fixed, ranges: Ranges) -> list[int]:
    """The reachable outputs closest to ``out`` below and above it (what to ask for instead)."""
    reachable: set[int] = set()
    kernels = _values(fixed.kernel, ranges.kernel)
    strides = _values(fixed.stride, ranges.stride)
    dilations = range(1, 2) if family == "avgpool" else _values(fixed.dilation, ranges.dilation)
    for k, s, d in itertools.product(kernels, strides, dilations):
        top = ranges.max_padding(k)
        if family == "conv":
            pads = [fixed.padding] if fixed.padding is not None else range(top + 1)
            reachable.update(formulas.conv_out(size, k, s, p, p, d) for p in pads)
        elif family == "tconv":
            pads = [fixed.padding] if fixed.padding is not None else range(top + 1)
            ops = [fixed.output_padding] if fixed.output_padding is not None else range(max(s, d))
            reachable.update(formulas.tconv_out(size, k, s, p, d, op) for p in pads for op in ops if op < max(s, d))
        else:
            pads = [fixed.padding] if fixed.padding is not None else range(min(k // 2, top) + 1)
            for p in pads:
                if p <= k // 2:
                    reachable.update(formulas.pool_out(size, k, s, p, d, c) for c in (False, True) if fixed.ceil_mode in (None, c))
    reachable = {r for r in reachable if r >= 1}
    below = [r for r in reachable if r < out]
    above = [r for r in reachable if r > out]
    return ([max(below)] if below else []) + ([min(above)] if above else [])


# -- several axes, the torch call, the engine's check ----------------------------------------------------


@dataclass(frozen=True)
class Solution:
    """A setting for every spatial axis (H before W), with the torch code that builds it."""

    family: str
    axes: tuple[AxisSetting, ...]
    kind_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> int:
        return len(self.axes)

    @property
    def symmetric(self) -> bool:
        return all(a.symmetric for a in self.axes)

    @property
    def same(self) -> bool:
        """torch's padding='same' gives exactly these pads (stride 1, total d(k−1), odd one right)."""
        return self.family == "conv" and all(
            a.stride == 1 and (a.pad_left, a.pad_right) == formulas.same_padding(a.kernel, a.dilation) for a in self.axes
        )

    def _per_axis(self, name: str) -> Any:
        values = [getattr(a, name) for a in self.axes]
        return values[0] if len(set(values)) == 1 else values

    def torch_kwargs(self) -> dict[str, Any]:
        """The layer's torch arguments (padding 0 when a pad layer in front does the padding)."""
        kwargs: dict[str, Any] = {"kernel_size": self._per_axis("kernel"), "stride": self._per_axis("stride")}
        if self.symmetric:
            kwargs["padding"] = self._per_axis("pad_left")
        elif self.same:
            kwargs["padding"] = "same"
        else:
            kwargs["padding"] = 0
        if self.family != "avgpool":
            kwargs["dilation"] = self._per_axis("dilation")
        if self.family == "tconv":
            kwargs["output_padding"] = self._per_axis("output_padding")
        if self.family.endswith("pool"):
            kwargs["ceil_mode"] = any(a.ceil_mode for a in self.axes)
        kwargs.update(self.kind_extra)
        return kwargs

    def pad_layer(self) -> tuple[str, tuple[int, ...]] | None:
        """``("ZeroPad2d", (left, right, top, bottom))`` in front, when torch's padding= cannot say it."""
        if self.symmetric or self.same:
            return None
        pads = tuple(v for a in reversed(self.axes) for v in (a.pad_left, a.pad_right))
        return f"ZeroPad{self.dims}d", pads

    def type_name(self) -> str:
        return f"{FAMILIES[self.family]}{self.dims}d"

    def torch_lines(self) -> list[str]:
        """Paste-ready torch: ``nn.Conv2d(C_in, C_out, kernel_size=3, stride=2, padding=1)``."""
        kwargs = self.torch_kwargs()
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "output_padding": 0, "ceil_mode": False}
        if self.family.endswith("pool"):
            defaults["stride"] = kwargs["kernel_size"]
        parts = ["C_in", "C_out"] if self.family in ("conv", "tconv") else []
        for name, value in kwargs.items():
            if name in defaults and value == defaults[name] and name != "kernel_size":
                continue
            parts.append(f"{name}={_py(value)}")
        lines = []
        pad = self.pad_layer()
        if pad is not None:
            name, values = pad
            lines.append(f"nn.{name}({_py(values)})")
        lines.append(f"nn.{self.type_name()}({', '.join(parts)})")
        return lines

    def as_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in self.torch_kwargs().items()}
        data["dilation"] = self._per_axis("dilation")
        pad = self.pad_layer()
        data["symmetric"] = self.symmetric
        if not self.symmetric:
            data["pads"] = [[a.pad_left, a.pad_right] for a in self.axes]
        if pad is not None:
            data["pad_layer"] = {"type": pad[0], "padding": list(pad[1])}
        data["torch"] = self.torch_lines()
        return data

    def check(self, sizes: Sequence[int], outs: Sequence[int]) -> None:
        """Build the engine's layers (pad layer, then the layer) on ``sizes``: they must give ``outs``."""
        from . import calc
        from .layers import make_layer

        current = tuple(sizes)
        pad = self.pad_layer()
        if pad is not None:
            current = calc.apply(make_layer(pad[0], padding=list(pad[1])), current).output
        kwargs = {k: list(v) if isinstance(v, list) else v for k, v in self.torch_kwargs().items()}
        step = calc.calculate(self.type_name(), current, **kwargs)
        if tuple(step.output) != tuple(outs):
            raise AssertionError(f"solve found {self.torch_lines()} but the engine gives {step.output}, not {tuple(outs)}")


def _py(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Answer:
    """Every solution (checked), plus what was searched; ``nearest`` when there is none."""

    family: str
    sizes: tuple[int, ...]
    outs: tuple[int, ...]
    ranges: Ranges
    solutions: list[Solution]
    per_axis: list[list[AxisSetting]]
    truncated: bool
    nearest: dict[str, list[int]]


def solve(family: str, sizes: Sequence[int], outs: Sequence[int], fixed: Sequence[Fixed], ranges: Ranges | None = None, *, extra: dict[str, Any] | None = None) -> Answer:
    """Every setting with ``sizes → outs`` (per axis), simplest first, each checked by the engine."""
    if family not in FAMILIES:
        raise SpecError(f"solve knows {', '.join(FAMILIES)}, not {family!r}")
    ranges = ranges or Ranges()
    sizes, outs = tuple(sizes), tuple(outs)
    problems: dict[tuple[Any, ...], list[AxisSetting]] = {}
    per_axis = []
    for size, out, fix in zip(sizes, outs, fixed):
        problem = (size, out, fix)
        if problem not in problems:
            problems[problem] = solve_axis(family, size, out, fix, ranges)[:MAX_SOLUTIONS]
        per_axis.append(problems[problem])
    from .layers.base import AXES

    axis_names = AXES[len(sizes)]
    missing = {
        axis: nearest(family, size, out, fix, ranges)
        for axis, size, out, fix, found in zip(axis_names, sizes, outs, fixed, per_axis)
        if not found
    }
    solutions: list[Solution] = []
    truncated = any(len(found) >= MAX_SOLUTIONS for found in per_axis)
    if not missing:
        if len(problems) == 1:
            combos: Any = ((setting,) * len(sizes) for setting in per_axis[0])
        else:
            cap = max(2, int(round(MAX_COMBINATIONS ** (1 / len(sizes)), 6)))
            truncated = truncated or any(len(found) > cap for found in per_axis)
            combos = sorted(
                itertools.product(*(found[:cap] for found in per_axis)),
                key=lambda combo: (len({(a.kernel, a.stride, a.dilation) for a in combo}) > 1, [a.key() for a in combo]),
            )
        for combo in combos:
            solution = Solution(family, tuple(combo), dict(extra or {}))
            solution.check(sizes, outs)
            solutions.append(solution)
    return Answer(family, sizes, outs, ranges, solutions, per_axis, truncated, missing)


# -- TensorFlow's padding='same' ---------------------------------------------------------------------


@dataclass(frozen=True)
class TfSame:
    """What TF/Keras ``padding='same'`` gives, and the PyTorch code that gives the same."""

    sizes: tuple[int, ...]
    outs: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    solution: Solution
    lines: list[str]
    notes: list[str]


def tf_same(family: str, sizes: Sequence[int], kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> TfSame:
    """TF 'same' (output ceil(in/s), the odd pad after) as a checked PyTorch equivalent."""
    if family not in ("conv", "maxpool", "avgpool"):
        raise SpecError("--tf-same answers conv and pooling (TensorFlow's transposed 'same' is another rule)")
    pads = tuple(formulas.tf_same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernels, strides, dilations))
    outs = tuple(-(-n // s) for n, s in zip(sizes, strides))
    notes: list[str] = []
    extra: dict[str, Any] = {}
    axes = [AxisSetting(k, s, d, pl, pr) for k, s, d, (pl, pr) in zip(kernels, strides, dilations, pads)]
    if family.endswith("pool"):
        # TF pools ignore the padding (max: -inf, avg: not counted); torch's implicit padding does the
        # same (max pads with -inf; avg with count_include_pad=False), and ceil_mode adds the odd
        # window on the right — where that reproduces TF's output size.
        if family == "avgpool":
            extra["count_include_pad"] = False
        fitted = []
        for axis, n, out in zip(axes, sizes, outs):
            ceil = axis.pad_right > axis.pad_left
            fits = axis.pad_left <= axis.kernel // 2 and formulas.pool_out(n, axis.kernel, axis.stride, axis.pad_left, axis.dilation, ceil) == out
            fitted.append(AxisSetting(axis.kernel, axis.stride, axis.dilation, axis.pad_left, axis.pad_left, ceil_mode=ceil) if fits else None)
        if all(fitted):
            ceil = any(a.ceil_mode for a in fitted if a)
            settled = tuple(AxisSetting(a.kernel, a.stride, a.dilation, a.pad_left, a.pad_right, ceil_mode=ceil) for a in fitted if a)
            solution = Solution(family, settled, extra)
            try:
                solution.check(sizes, outs)
            except Exception:
                solution = None  # type: ignore[assignment]
            if solution is not None:
                if ceil:
                    notes.append("ceil_mode=True adds the last window that TF's extra right/bottom padding makes; it reads only real input")
                return TfSame(tuple(sizes), outs, pads, solution, solution.torch_lines(), notes)
        solution = Solution(family, tuple(axes), extra)
        lines = solution.torch_lines()
        if family == "maxpool":
            lines[0] = lines[0].replace("nn.ZeroPad", "nn.ConstantPad").replace("))", "), float('-inf'))")
            notes.append("ConstantPad with -inf: TF's max pooling never picks the padding")
        else:
            notes.append("ZeroPad counts the zeros in the border means, TF does not: sizes agree, border values differ")
        solution.check(sizes, outs)
        return TfSame(tuple(sizes), outs, pads, solution, lines, notes)
    solution = Solution(family, tuple(axes))
    solution.check(sizes, outs)
    return TfSame(tuple(sizes), outs, pads, solution, solution.torch_lines(), notes)


def describe_axis(setting: AxisSetting) -> str:
    """``k=3 s=2 p=1`` (``p=0+1`` when asymmetric)."""
    pad = str(setting.pad_left) if setting.symmetric else f"{setting.pad_left}+{setting.pad_right}"
    parts = [f"k={setting.kernel}", f"s={setting.stride}", f"p={pad}"]
    if setting.dilation != 1:
        parts.append(f"d={setting.dilation}")
    if setting.output_padding:
        parts.append(f"op={setting.output_padding}")
    if setting.ceil_mode:
        parts.append("ceil")
    return " ".join(parts)

