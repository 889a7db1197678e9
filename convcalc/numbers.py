"""The one rule for the numbers a user writes, on the command line, in a spec or in a CSV row.

A whole number is plain ASCII digits with an optional sign (``28``, ``-1``, ``010`` = 10); a
decimal number is those digits with an optional fraction and exponent (``0.5``, ``1e-3``,
``2.``). Nothing else is a number: not ``٣٣`` (other scripts' digits), not ``1_1``, ``0x1F``,
``1:30`` (YAML 1.1 readings), not ``inf`` or ``nan``. The same texts are numbers everywhere.

A number longer than :data:`MAX_DIGITS` digits is never converted (Python refuses above 4,300
digits, and the conversion is quadratic): it becomes a :class:`LongInt`, which compares as
±10**MAX_DIGITS — beyond every bound convcalc checks, so the check that refuses it names the
argument and its range — and prints as written, shortened. Cheap to import (only ``re``): the
calculator's start-up path uses it.
"""

from __future__ import annotations

import re
from typing import Any

#: Whole numbers with more digits than this are not converted (every bound is far below).
MAX_DIGITS = 400
#: Echoed numbers longer than this are shortened in messages.
SHOWN_CHARS = 24

_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: What the rule accepts, for messages.
WHOLE_HINT = "write whole numbers with the digits 0-9 only, like 11"
DECIMAL_HINT = "write numbers with the digits 0-9, like 0.5 or 1e-3"


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``"1111…1111 (5,000 digits)"`` for a long number, the text itself when short."""
    if len(text) <= limit:
        return text
    digits = sum(c.isdigit() for c in text)
    half = max(4, (limit - 4) // 2)
    if digits >= len(text) - 1:  # a number (perhaps signed): say how many digits it has
        return f"{text[:half]}…{text[-half:]} ({digits:,} digits)"
    return f"{text[:half]}…{text[-half:]} ({len(text):,} characters)"


class _Written:
    """Prints as the user wrote it (shortened), whatever its stand-in value."""

    written: str

    def __repr__(self) -> str:
        return shorten(self.written)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return shorten(self.written)


class LongInt(_Written, int):
    """A whole number too long to convert: compares as ±10**MAX_DIGITS, prints as written (shortened)."""

    def __new__(cls, written: str) -> LongInt:
        sign = -1 if written.lstrip().startswith("-") else 1
        made = super().__new__(cls, sign * 10**MAX_DIGITS)
        made.written = written
        return made


class LongFloat(_Written, float):
    """A decimal number beyond float's range (``1e400``): infinite, but prints as written."""

    def __new__(cls, written: str) -> LongFloat:
        made = super().__new__(cls, float("-inf") if written.lstrip().startswith("-") else float("inf"))
        made.written = written
        return made


def is_whole(text: str) -> bool:
    """``"28"``, ``"-1"``: plain ASCII digits with an optional sign."""
    return _INT.fullmatch(text) is not None


def is_decimal(text: str) -> bool:
    """``"0.5"``, ``"1e-3"``, ``"28"``: a decimal number by the rule (whole numbers included)."""
    return _DECIMAL.fullmatch(text) is not None


def whole(text: str) -> int:
    """The int a text that :func:`is_whole` accepts stands for (a :class:`LongInt` when too long)."""
    digits = len(text) - (text[:1] in "+-")
    return LongInt(text) if digits > MAX_DIGITS else int(text)


def decimal(text: str) -> int | float:
    """The number of a text that :func:`is_decimal` accepts: an int without ``.``/exponent, else a float."""
    if is_whole(text):
        return whole(text)
    value = float(text)  # linear in the text's length, no digit limit
    return LongFloat(text) if value in (float("inf"), float("-inf")) else value


def parse_whole(text: str) -> int | None:
    """``text`` (spaces around allowed) as a whole number by the rule, or None."""
    stripped = text.strip()
    return whole(stripped) if is_whole(stripped) else None


def parse_number(text: str) -> int | float | None:
    """``text`` as a whole or decimal number by the rule, or None."""
    stripped = text.strip()
    return decimal(stripped) if is_decimal(stripped) else None


class NotANumber(ValueError):
    """A text that is not the number asked for, by the rule; ``str()`` is the message, without
    the option's name (the command line and a batch cell each put their own name in front)."""


def read_whole(text: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number by the rule within ``low..high`` (either may be None), or NotANumber."""
    number = parse_whole(text)
    if number is None:
        raise NotANumber(f"{shorten(text)!r} is not a whole number (digits 0-9){_range(low, high)}")
    return within(number, low, high)


def within(number: int, low: int | None = None, high: int | None = None) -> int:
    """``number`` when within ``low..high`` (either may be None), else NotANumber naming the range."""
    if (low is not None and number < low) or (high is not None and number > high):
        raise NotANumber(f"{show(number)} is out of range: use{_range(low, high)[1:]}")
    return number


def read_per_axis(text: str, words: tuple[str, ...] = ()) -> int | list[int] | str:
    """A window option: ``3`` → 3, ``3x5`` (or ``3×5``) → [3, 5], one of ``words`` (any case) →
    the word; NotANumber for anything else. Any sign: the layer judges the values."""
    lowered = text.strip().lower()
    if lowered in words:
        return lowered
    parts = lowered.replace("×", "x").split("x")
    if not all(is_whole(part) for part in parts):
        wanted = "a whole number (digits 0-9) or one per axis like 3x5" + (f", or {' / '.join(words)}" if words else "")
        raise NotANumber(f"{shorten(text)!r} is not {wanted}")
    numbers = [whole(part) for part in parts]
    return numbers[0] if len(numbers) == 1 else numbers


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f", from {low:,} to {high:,}"
    if low is not None:
        return f", at least {low}"
    return ""


def show(value: Any) -> str:
    """``repr`` of a value for a message, with long numbers (and Python's huge ints) shortened."""
    if isinstance(value, (LongInt, LongFloat)):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 4 * MAX_DIGITS:  # str() of such an int may be refused or slow
            return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
        return shorten(str(value))
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"… ({len(text):,} characters)"
