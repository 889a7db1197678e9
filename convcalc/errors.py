"""The exception types of convcalc (the base ``ConvcalcError``; ``ShapeError`` for geometry,
``SpecError`` for arguments and specs, and its ``InputError`` for unreadable files); ``cli.py``
turns them into exit codes.

An error is a value: what went wrong (``kind``), where (``layer``, ``axis``, ``file``/``line``,
and the outer places in ``context``), the numbers involved and the fix when one is known.
:func:`message_of` turns it into the one-line message, :meth:`ConvcalcError.as_dict` into the
JSON ``error`` object; code that decides something reads the fields, never the message.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorKind(str, Enum):
    """What went wrong, for code that reacts to it (the diagnosis, the renderer, scripts)."""

    RANK = "rank"  # the input has a number of dimensions the layer does not take
    CHANNELS = "channels"  # in_channels / num_features / num_channels disagree with the input
    FEATURES = "features"  # a Linear's in_features disagree with the input
    TOO_SMALL = "too small"  # a window larger than its (padded) input; an output below 1
    PADDING = "padding"  # padding beyond what its mode allows (reflect, circular)
    GEOMETRY = "geometry"  # any other input the layer cannot take
    MERGE = "merge"  # the inputs of Add/Multiply/Concat do not line up
    ARGUMENT = "argument"  # a layer's argument: no such keyword, a value its constructor refuses
    # Spec errors (a SpecError's kind says which part of the spec is wrong):
    UNKNOWN_LAYER = "unknown layer"  # a layer (or block) name convcalc does not know
    UNKNOWN_KEY = "unknown key"  # a key the spec format does not have (top level, entry, block)
    WIRING = "wiring"  # name: and from: — names used twice, inputs that name nothing above, merges
    BLOCK = "block"  # a block's definition or use: its params, $params, recursion, nesting
    TOO_LARGE = "too large"  # past a bound: layers after expansion, repeat:, list items, elements
    INPUT_SHAPE = "input shape"  # the spec's input: (or a model input) is not a shape
    SYNTAX = "syntax"  # not a spec: YAML syntax, the file's structure, a malformed layer call
    FILE = "file"  # a file or stream that cannot be read


#: Kinds that say "the layer expects another input" (the diagnosis adds where the input came from).
INPUT_KINDS = (ErrorKind.RANK, ErrorKind.CHANNELS, ErrorKind.FEATURES)
#: Kinds that a larger model input can cure (the diagnosis searches the smallest one).
SIZE_KINDS = (ErrorKind.TOO_SMALL, ErrorKind.PADDING)


class ConvcalcError(Exception):
    """Base of every error convcalc reports to a user (exit code 1 on the command line).

    ``text`` is the sentence as written where the error arose (a layer's own errors start with
    its type; an error with a ``file`` names it in the sentence — ``spec.yaml:4: …`` via
    :func:`located`, ``x.yaml is a directory`` — so no renderer adds it again); ``detail`` is that sentence without the layer
    prefix, for callers that name the layer themselves; ``context`` holds the outer places
    (``step 2 (conv:k=3)``) that :func:`message_of` puts in front. ``exit_code`` is what the
    command line exits with: 1 for a well-formed question whose answer is "invalid" (the README's
    table of exit codes); :func:`as_usage` makes it 2 for an error in how the command was called.
    """

    exit_code: int = 1

    DEFAULT_KIND = ErrorKind.ARGUMENT

    def __init__(
        self,
        text: str,
        *,
        kind: ErrorKind | None = None,
        layer: str | None = None,
        file: str | None = None,
        line: int | None = None,
        detail: str | None = None,
        axis: str | None = None,
        numbers: dict[str, int] | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.kind = kind or self.DEFAULT_KIND
        #: The message without the ``Layer:`` prefix.
        self.detail = detail or text
        self.layer = layer
        self.file = file
        self.line = line
        self.axis = axis
        self.numbers = dict(numbers or {})
        self.fix = fix
        self.context: tuple[str, ...] = ()
        #: The line of the block use a spec error inside a block's definition came from (blocks.py).
        self.block_use: int | None = None

    @property
    def message(self) -> str:
        return message_of(self)

    def __str__(self) -> str:
        return self.message

    def within(self, place: str) -> ConvcalcError:
        """Name an outer place (``step 2 (conv:k=3)``) in front of the message; returns self."""
        self.context = (place, *self.context)
        return self

    def noting(self, note: str) -> ConvcalcError:
        """Add ``(note)`` after the message (where a block's bad value came from); returns self."""
        self.text = f"{self.text} ({note})"
        self.detail = f"{self.detail} ({note})"
        return self

    @property
    def location(self) -> str | None:
        """``file:line`` when both are known, else whichever is known."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or (str(self.line) if self.line else None)

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``error`` object (``message``, ``layer``, ``file``, ``line`` are the stable keys)."""
        data: dict[str, Any] = {"message": self.message, "layer": self.layer, "file": self.file, "line": self.line}
        data["kind"] = self.kind.value
        if self.axis is not None:
            data["axis"] = self.axis
        if self.numbers:
            data["numbers"] = dict(self.numbers)
        if self.fix is not None:
            data["fix"] = self.fix
        return data


def as_usage(error: ConvcalcError) -> ConvcalcError:
    """``error`` as a usage error (exit 2): a bad value written on the command line."""
    error.exit_code = 2
    return error


class ShapeError(ConvcalcError):
    """Invalid geometry: the layer cannot take this input (torch would raise too)."""

    DEFAULT_KIND = ErrorKind.GEOMETRY


class SpecError(ConvcalcError):
    """An invalid argument or model spec: unknown key, bad value, broken wiring."""


class MissingArgument(SpecError):
    """A layer's required argument left out (``Permute needs dims``); ``argument`` names it."""

    def __init__(self, type_name: str, argument: str) -> None:
        super().__init__(f"{type_name} needs {argument}", layer=type_name)
        self.argument = argument


def message_of(error: ConvcalcError) -> str:
    """The one-line message: the outer places, then the error's own sentence."""
    return "".join(f"{place}: " for place in error.context) + error.text


def located(file: str | None, line: int | None, text: str) -> str:
    """``spec.yaml:4: text`` (or ``spec.yaml: text`` without a line): how a spec's errors begin."""
    where = f"{file}:{line}" if file and line else (file or "")
    return f"{where}: {text}" if where else text


class InputError(SpecError):
    """A file or stream that cannot be read: missing, a folder or device, too large, not text (exit 2)."""

    exit_code = 2
    DEFAULT_KIND = ErrorKind.FILE
