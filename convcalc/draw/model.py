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
    #: a sliding window's kernel and stride per spatial axis (conv, pool, tconv), else empty
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()


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
        kernel, stride = window_of(row.layer)
        shape = tuple(row.output_shape[1:])
        items.append(Item(row.name, row.type, family_of(row.type), shape, tuple(row.inputs), row.summary, kernel=kernel, stride=stride))
    if failing is not None:
        layer = failing.layer
        kernel, stride = window_of(layer)
        name, inputs = failing.name, tuple(failing.inputs)
        items.append(Item(name, layer.type_name, family_of(layer.type_name), None, inputs, _describe(layer), True, kernel, stride))
    return items


def window_of(layer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(kernel, stride) per axis from the layer's torch arguments; empty where it has none."""
    try:
        arguments = layer.torch_kwargs()
    except (ConvcalcError, AttributeError):  # an unbound layer may miss inferred arguments
        return (), ()
    kernel, stride = arguments.get("kernel_size"), arguments.get("stride")
    if not isinstance(kernel, tuple) or not isinstance(stride, tuple) or len(kernel) != len(stride):
        return (), ()  # bound layers give both per axis (the engine fills the defaults)
    return tuple(int(k) for k in kernel), tuple(int(v) for v in stride)


def _describe(layer: Any) -> str:
    try:
        return str(layer.describe())
    except ConvcalcError:  # an unbound layer may not describe itself (inferred arguments missing)
        return ""
