"""Parsing and bounds of the sizes users type: ``227``, ``32x64``, ``3x224x224``."""

from __future__ import annotations

import re

from .errors import SpecError

#: Largest size or count convcalc accepts anywhere (sizes of 10**12 work; this is a sanity cap).
MAX_SIZE = 10**15

_SEPARATORS = re.compile(r"\s*[x×X*,]\s*")


def parse_size(text: str, *, what: str = "size") -> tuple[int, ...]:
    """``"32x64"`` → ``(32, 64)``. Every part must be a whole number from 1 to MAX_SIZE."""
    raw = str(text).strip()
    if raw.isascii() and raw.isdigit():  # the common case, one number: no regular expressions
        return (check_size(int(raw), what=what),)
    if not raw:
        raise SpecError(f"{what} is empty; write it like 227, 32x64 or 3x224x224")
    parts = _SEPARATORS.split(raw)
    values = []
    for part in parts:
        if not re.fullmatch(r"[+-]?\d+", part):
            raise SpecError(
                f"{what} {raw!r} is not a list of whole numbers; write it like 227, 32x64 or 3x224x224"
            )
        values.append(check_size(int(part), what=what))
    return tuple(values)


def check_size(value: object, *, what: str = "size", minimum: int = 1) -> int:
    """``value`` as an int within ``minimum..MAX_SIZE``, else a SpecError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise SpecError(f"{what} must be at least {minimum}, got {value}")
    if value > MAX_SIZE:
        raise SpecError(f"{what} {value} is larger than convcalc's limit of {MAX_SIZE:.0e}")
    return value


def format_size(values: tuple[int, ...] | list[int]) -> str:
    """``(32, 64)`` → ``"32x64"``."""
    return "x".join(str(v) for v in values)


def show_size(sizes: tuple[int, ...] | list[int], square: bool) -> str:
    """A calculator answer in the form it was asked: ``55`` for a square asked as ``227``, else ``28x60``."""
    return str(sizes[0]) if square and len(set(sizes)) == 1 else format_size(sizes)


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
