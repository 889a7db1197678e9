"""Parsing and bounds of the sizes users type: ``227``, ``32x64``, ``3x224x224``."""

from __future__ import annotations

import re

from .errors import SpecError
from .numbers import is_whole, shorten, show, whole

#: Largest size or count convcalc accepts anywhere (sizes of 10**12 work; this is a sanity cap).
MAX_SIZE = 10**15

#: Largest element count of any tensor convcalc computes with: far beyond torch's int64 (9.2e18),
#: and small enough that every memory line is a finite float.
MAX_ELEMENTS = 10**100

_SEPARATORS = re.compile(r"\s*[x×X*,]\s*")


def parse_size(text: str | int, *, what: str = "size") -> tuple[int, ...]:
    """``"32x64"`` → ``(32, 64)``. Every part must be a whole number (numbers.py's rule) from 1 to MAX_SIZE."""
    if type(text) is not str:
        if isinstance(text, int) and not isinstance(text, bool):
            return (check_size(text, what=what),)
        text = str(text)
    raw = text.strip()
    if raw.isascii():  # the common cases, 227 and 32x64: no regular expressions
        if raw.isdigit():
            if len(raw) < 16:  # fewer digits than MAX_SIZE's: only 0 is out of bounds
                value = int(raw)
                if value:
                    return (value,)
            return (check_size(whole(raw), what=what),)  # whole(): no int() of 5,000 digits
        parts = raw.split("x")
        if len(parts) > 1 and "" not in parts and raw.replace("x", "").isdigit():  # every part digits
            if len(raw) < 16:  # as above: no part has MAX_SIZE's digits, only 0 is out of bounds
                numbers = tuple(map(int, parts))
                if 0 not in numbers:
                    return numbers
            return tuple([check_size(whole(part), what=what) for part in parts])
    if not raw:
        raise SpecError(f"{what} is empty; write it like 227, 32x64 or 3x224x224")
    parts = _SEPARATORS.split(raw)
    values = []
    for part in parts:
        if not is_whole(part):
            raise SpecError(
                f"{what} {shorten(raw)!r} is not a list of whole numbers (digits 0-9); write it like 227, 32x64 or 3x224x224"
            )
        values.append(check_size(whole(part), what=what))
    return tuple(values)


def check_size(value: object, *, what: str = "size", minimum: int = 1) -> int:
    """``value`` as an int within ``minimum..MAX_SIZE``, else a SpecError naming ``what`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{what} must be a whole number, got {show(value)}")
    if value < minimum:
        raise SpecError(f"{what} must be at least {minimum}, got {show(value)}")
    if value > MAX_SIZE:
        raise SpecError(f"{what} {show(value)} is larger than convcalc's limit; use {minimum} to {MAX_SIZE:.0e}")
    return value


def too_many_elements(shape: tuple[int, ...] | list[int]) -> str | None:
    """Why ``shape`` is beyond MAX_ELEMENTS, or None. Free for ranks up to 6 (6 sizes ≤ 10**15 fit)."""
    if len(shape) <= 6:
        return None
    count = 1
    for size in shape:
        count *= size
    if count <= MAX_ELEMENTS:
        return None
    return f"{len(shape)}-D shape of about 10^{int(count.bit_length() * 0.30103)} elements; convcalc computes with at most 10^100 elements per tensor"


def format_size(values: tuple[int, ...] | list[int]) -> str:
    """``(32, 64)`` → ``"32x64"``."""
    return "x".join(map(str, values))


def show_size(sizes: tuple[int, ...] | list[int], square: bool) -> str:
    """A calculator answer in the form it was asked: ``55`` for a square asked as ``227``, else ``28x60``."""
    return str(sizes[0]) if square and sizes.count(sizes[0]) == len(sizes) else format_size(sizes)


#: Element types of the memory lines, with their size in bytes.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of ``dtype``, or a SpecError naming the ones convcalc knows."""
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    return DTYPE_BYTES[dtype]


def format_shape(values: tuple[int, ...] | list[int]) -> str:
    """``(1, 3, 224, 224)`` → ``"1×3×224×224"`` for tables."""
    return "×".join(str(v) for v in values)


def format_bytes(count: float) -> str:
    """``372_800`` → ``"364.1 KiB"`` (1024-based units)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
