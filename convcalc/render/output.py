"""Where output goes and how it may look: decided here, once, for every command.

``Output`` is what a renderer writes to. It knows the format (``json``, ``rich`` for a terminal,
``plain`` for pipes and files), the width, whether colour and other escape codes are allowed
(never with ``NO_COLOR`` or ``TERM=dumb``), and whether the stream can encode convcalc's symbols
(if not, ``prepare_streams`` has installed ASCII spellings and JSON is written with ``\\u``
escapes). Nothing here imports rich: ``console()`` does, on first use, for the rich renderers.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from . import text

if TYPE_CHECKING:
    from rich.console import Console

JSON, RICH, PLAIN = "json", "rich", "plain"

#: The styles renderers may ask for, as terminal escape codes (SGR); none without colour.
STYLES = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "bold red": "1;31", "yellow": "33"}


class Settings:
    """What the command line asked of the output (kept on click's root context object).

    A plain class, not a dataclass: it is defined on the start-up path of ``convcalc conv``.
    """

    __slots__ = ("json", "traceback", "wide", "columns")

    def __init__(self, json: bool = False, traceback: bool = False, wide: bool = False, columns: tuple[str, ...] | None = None) -> None:
        self.json = json
        self.traceback = traceback
        self.wide = wide
        self.columns = columns


def prepare_streams() -> str | None:
    """Called once at start-up: ASCII spellings on streams that cannot encode convcalc's symbols.

    Returns a one-line problem when standard output cannot be written at all (closed: ``>&-``).
    """
    problem = None
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or getattr(stream, "closed", False):
            if name == "stdout":
                problem = "standard output is closed, so the answer cannot be written"
            continue
        if not text.can_encode(getattr(stream, "encoding", None)) and hasattr(stream, "reconfigure"):
            text.register()
            stream.reconfigure(errors=text.ERRORS)
    return problem


def is_write_failure(error: BaseException) -> bool:
    """An OSError raised while writing our output (``>/dev/full``, a vanished terminal)."""
    import errno

    return isinstance(error, OSError) and not isinstance(error, BrokenPipeError) and error.errno in {
        errno.ENOSPC,
        errno.EIO,
        errno.EBADF,
        errno.EFBIG,
        errno.EDQUOT,
        errno.EROFS,
    }


def no_escape_codes() -> bool:
    """``NO_COLOR`` (any value) or ``TERM=dumb``: no colour, bold or italic either."""
    return "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed
        return False


class Output:
    """One output stream and the decisions about it. Renderers write through ``write``/``line``.

    ``format``: JSON, RICH (a terminal) or PLAIN; ``stream``: None means ``sys.stdout`` at write
    time; ``width``: None means the terminal's; ``color``: None means "unless NO_COLOR/TERM=dumb".
    """

    __slots__ = ("format", "stream", "width", "color", "settings", "_console")

    def __init__(
        self,
        format: str = PLAIN,
        stream: TextIO | None = None,
        width: int | None = None,
        color: bool | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.format = format
        self.stream = stream
        self.width = width
        self.color = not no_escape_codes() if color is None else color
        self.settings = settings if settings is not None else Settings()
        self._console: Any = None

    @classmethod
    def for_stdout(cls, *, as_json: bool = False, settings: Settings | None = None) -> Output:
        """JSON when asked, rich on a terminal, plain text otherwise."""
        stream = sys.stdout
        fmt = JSON if as_json else (RICH if is_terminal(stream) else PLAIN)
        return cls(format=fmt, stream=stream, color=not no_escape_codes(), settings=settings or Settings(json=as_json))

    @property
    def file(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    @property
    def unicode(self) -> bool:
        """Whether the stream can encode convcalc's symbols (else they come out in ASCII)."""
        return text.can_encode(getattr(self.file, "encoding", None) or "utf-8")

    def terminal_width(self) -> int:
        """The width to lay out for: fixed, else the terminal's (``COLUMNS`` wins), else 80."""
        if self.width is not None:
            return self.width
        import shutil

        return shutil.get_terminal_size((80, 24)).columns

    def styled(self, text: str, style: str | None) -> str:
        """``text`` in ``style`` (bold, dim, italic, red, green …) on a colour terminal, else as is."""
        if style is None or not self.color or self.format != RICH or not text:
            return text
        return f"\x1b[{STYLES[style]}m{text}\x1b[0m"

    def write(self, data: str) -> None:
        self.file.write(data)

    def line(self, data: str = "") -> None:
        self.file.write(data + "\n")

    def lines(self, lines: Any) -> None:
        self.file.write("".join(f"{line}\n" for line in lines))

    def json(self, data: Any) -> None:
        """The one JSON dumper: indented, UTF-8 where the stream takes it, ``\\u`` escapes elsewhere."""
        self.file.write(to_json(data, ascii=not self.unicode) + "\n")

    def console(self) -> Console:
        """A rich Console on this stream: escape codes only when allowed, no markup, no highlighting."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.file,
                width=self.width,
                force_terminal=True if self.format == RICH else None,
                color_system="auto" if self.color else None,
                no_color=not self.color,
                markup=False,
                emoji=False,
                highlight=False,
            )
        return self._console


def to_json(data: Any, *, ascii: bool = False) -> str:
    """``data`` as indented JSON text; ``ascii``: non-ASCII characters as ``\\u`` escapes."""
    import json

    return json.dumps(data, ensure_ascii=ascii, indent=2)


def for_stream(data: str, stream: TextIO | None) -> str:
    """``data`` as it can be written to ``stream``: as is, or in ASCII spellings where the
    stream's encoding cannot hold convcalc's symbols (for text that bypasses ``Output``, like
    click's help, which click writes to an ASCII stream as UTF-8 bytes)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    if text.can_encode(encoding) and text.can_encode(encoding, data):
        return data
    return text.ascii_spelling(data)


def stderr_line(message: str) -> None:
    """One line on stderr, if stderr is open (closed: ``2>&-``, the line is dropped)."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(message + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def warn(lines: Any) -> None:
    """``warning: …`` lines on stderr; control characters in them are shown, not obeyed."""
    for line in lines:
        stderr_line(f"warning: {text.one_line(line)}")
