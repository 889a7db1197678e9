"""The two exception types of convcalc; ``cli.py`` turns them into exit codes."""

from __future__ import annotations


class ConvcalcError(Exception):
    """Base of every error convcalc reports to a user (exit code 1 on the command line).

    ``layer`` names the layer (type or spec name) the error is about, ``file``/``line``
    locate it in a spec when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        layer: str | None = None,
        file: str | None = None,
        line: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The message without the ``Layer:`` prefix, for callers that name the layer themselves.
        self.detail = detail or message
        self.layer = layer
        self.file = file
        self.line = line

    def __str__(self) -> str:
        return self.message

    @property
    def location(self) -> str | None:
        """``file:line`` when both are known, else whichever is known."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or (str(self.line) if self.line else None)

    def as_dict(self) -> dict[str, object]:
        return {"message": self.message, "layer": self.layer, "file": self.file, "line": self.line}


class ShapeError(ConvcalcError):
    """Invalid geometry: the layer cannot take this input (torch would raise too)."""


class SpecError(ConvcalcError):
    """An invalid argument or model spec: unknown key, bad value, broken wiring."""
