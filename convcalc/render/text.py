"""Text that is safe to show: user strings made visible, long values shortened, ASCII fallbacks.

Pure functions of strings (no rich, no click): the renderers and the error line use them, so
the same rules hold on every output.
"""

from __future__ import annotations

import codecs
import re

#: ASCII spellings of the characters convcalc writes, used when a stream cannot encode them.
ASCII = {
    "×": "x",
    "→": "->",
    "←": "<-",
    "−": "-",
    "–": "-",
    "—": "--",
    "✓": "ok",
    "✗": "FAIL",
    "█": "#",
    "■": "=",
    "·": ".",
    "↔": "R",  # reflect padding
    "≡": "E",  # replicate padding (the edge repeated)
    "↻": "C",  # circular padding
    "…": "...",
    "⋮": ":",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "÷": "/",
    "²": "^2",
    "³": "^3",
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "─": "-",
    "━": "=",
    "│": "|",
    "┃": "|",
}

#: The name of the codec error handler that writes those spellings (registered by ``install``).
ERRORS = "convcalc-ascii"

# C0/C1 control characters and the bidi/zero-width format characters that reorder or hide text.
_CONTROL = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
#: Longest word an error line shows in full (a path fits; a 5,000-digit number does not).
WORD_LIMIT = 100
_LONG_WORD = rf"\S{{{WORD_LIMIT + 1},}}"  # patterns compiled on first use (re caches them)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with control characters (ESC, BEL, CR, bidi overrides …) written as ``\\x1b``.

    Newlines and tabs are kept; everything a terminal would act on instead of show is escaped.
    """
    return re.sub(_CONTROL, _escape, text) if re.search(_CONTROL, text) else text


def one_line(text: str) -> str:
    """``visible(text)`` with newlines and tabs escaped too: for names inside a table cell."""
    return visible(text).replace("\n", "\\n").replace("\t", "\\t")


def shorten(text: str, limit: int = WORD_LIMIT) -> str:
    """``text`` cut in the middle to about ``limit`` characters, saying how long it was (the
    end, where a path has its file name and line, is kept longer than the start)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 24, 8)
    head, tail = text[: keep * 2 // 5], text[-(keep - keep * 2 // 5) :]
    return f"{head}…({len(text):,} characters)…{tail}"


def shorten_words(message: str, limit: int = WORD_LIMIT) -> str:
    """Every run of non-space characters longer than ``limit`` shortened: an echoed 5,000-digit
    number or a megabyte-long name stays readable in a one-line message."""
    if len(message) <= limit:
        return message
    return re.sub(_LONG_WORD if limit == WORD_LIMIT else rf"\S{{{limit + 1},}}", lambda m: shorten(m.group(), limit), message)


def ascii_spelling(text: str) -> str:
    """``text`` with convcalc's symbols spelled in ASCII and anything else non-ASCII escaped."""
    return "".join(ASCII.get(c) or (c if c < "\x80" else c.encode("ascii", "backslashreplace").decode()) for c in text)


def _handler(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return ascii_spelling(error.object[error.start : error.end]), error.end


def can_encode(encoding: str | None, sample: str = "×→−✓█") -> bool:
    try:
        sample.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def register() -> None:
    """Register the ``convcalc-ascii`` error handler (idempotent)."""
    try:
        codecs.lookup_error(ERRORS)
    except LookupError:
        codecs.register_error(ERRORS, _handler)
