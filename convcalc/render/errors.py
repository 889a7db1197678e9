"""The one place an error reaches the user: one line on stderr (and the JSON error object on
stdout under ``--json``; for a model that failed part-way, the rows before the failing layer)."""

from __future__ import annotations

from typing import Any

from .output import JSON, Output, stderr_line
from .text import one_line, shorten_words


def error_line(message: str, where: str | None = None) -> str:
    """``error: file:line: message``: echoed values shortened, control characters shown, and
    newlines too (``a\\nb.yaml``): an error is one line, whatever the user's text held."""
    prefix = f"{where}: " if where else ""
    return "error: " + one_line(shorten_words(prefix + message))


def error_json(error: Any) -> dict[str, Any]:
    data = dict(error.as_dict())
    if isinstance(data.get("message"), str):
        data["message"] = shorten_words(data["message"])
    return data


def report(error: Any, out: Output) -> None:
    """Render a ConvcalcError: partial rows and JSON on ``out``, the line on stderr."""
    summary = getattr(error, "summary", None)
    if summary is not None:
        from .model import partial

        partial(summary, error_json(error), out)
    elif out.format == JSON:
        out.json({"error": error_json(error)})
    # an error's message already says where (``spec.yaml:4: …``, ``Conv2d 'c1' at spec.yaml:4: …``):
    # convcalc.errors writes the location into the message of every error that has one
    stderr_line(error_line(str(error.message)))


def usage_line(message: str, hint: str = "") -> str:
    """A usage error (exit 2) as one line: the option's echoed value shortened."""
    return error_line(message) + hint
