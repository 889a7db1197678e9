"""Tuples (shapes, torch arguments) as JSON's lists, for the ``as_dict`` of every report."""

from __future__ import annotations

from typing import Any


def jsonable(value: Any) -> Any:
    """Tuples and lists → lists, dicts → dicts, recursively; any other value as it is."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
