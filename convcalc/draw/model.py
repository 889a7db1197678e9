"""What a diagram is drawn from: one :class:`Item` per layer, independent of where it came from.

:func:`items_from_summary` reads a model summary's rows (and, for a model that fails, the
failing node); ``commands/draw.py`` builds items from a user's torch module the same way.
Nothing here imports torch, rich or click.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConvcalcError
from ..layers.catalog import module_of

INPUT = "input"

#: Families whose layers keep the shape's kind and fold into the layer before them by default.
FOLDABLE = frozenset({"activation", "norm", "pool", "padding", "resize"})


@dataclass(frozen=True)
class Item:
    """One layer to draw: its name, torch type, family (``conv``, ``pool`` … from the layer
    catalog), output shape without the batch (None for the layer that fails), the names of its
    inputs, and the short description the ``model`` table shows (``k=3 s=1 p=1``)."""

    name: str
    type: str
    family: str
    shape: tuple[int, ...] | None
    inputs: tuple[str, ...]
    detail: str = ""
    failed: bool = False


def family_of(type_name: str) -> str:
    """The layer family of a torch type name (the catalog's module), ``other`` if unknown."""
    return module_of(type_name) or "other"


def input_item(shape: Sequence[int]) -> Item:
    return Item(INPUT, "Input", "input", tuple(shape), ())


def items_from_summary(summary: Any, failing: Any = None) -> list[Item]:
    """The input, every row of ``summary`` (a :class:`convcalc.graph.Summary`), and the failing
    spec node (``ModelError.node``) if there is one, marked ``failed``."""
    items = [input_item(summary.input_shape[1:])]
    for row in summary.rows:
        items.append(
            Item(
                row.name,
                row.type,
                family_of(row.type),
                tuple(row.output_shape[1:]),
                tuple(row.inputs),
                row.summary,
            )
        )
    if failing is not None:
        layer = failing.layer
        items.append(
            Item(
                failing.name,
                layer.type_name,
                family_of(layer.type_name),
                None,
                tuple(failing.inputs),
                _describe(layer),
                failed=True,
            )
        )
    return items


def _describe(layer: Any) -> str:
    try:
        return str(layer.describe())
    except ConvcalcError:  # an unbound layer may not describe itself (inferred arguments missing)
        return ""
