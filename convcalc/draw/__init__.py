"""``convcalc draw``: architecture diagrams from a model's summary rows, without torch.

``model`` turns rows into :class:`Item` s, ``layout`` places boxes, text and arrows (pure
geometry), ``svg`` writes the document. Imported only when ``convcalc draw`` runs.

    >>> from convcalc import load_model
    >>> from convcalc.draw import draw_svg
    >>> svg = draw_svg(load_model("examples/models/mnist_cnn.yaml").summary())
"""

from __future__ import annotations

from typing import Any

from .layout import Diagram, Options, draw_layout
from .model import Item, items_from_summary
from .svg import to_svg

__all__ = [
    "Diagram",
    "Item",
    "Options",
    "draw_layout",
    "draw_svg",
    "items_from_summary",
    "to_svg",
]


def draw_svg(
    summary: Any,
    *,
    style: str = "layered",
    theme: str = "light",
    options: Options | None = None,
) -> str:
    """The SVG diagram of a :class:`convcalc.graph.Summary` (``model.summary()``)."""
    return to_svg(
        draw_layout(items_from_summary(summary), style, options or Options(title=summary.name)),
        theme,
        title=summary.name,
    )
