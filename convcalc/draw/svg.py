"""Writes a :class:`~convcalc.draw.layout.Diagram` as a standalone SVG document (stdlib only).

Colours belong to layer families and step in lightness (CIELAB L* 36 … 96, at least 5 apart),
so the families stay apart when printed in grey; the failing layer is red with a dashed outline.
Every piece of user text is escaped and stripped of characters XML cannot hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .layout import Arrow, Box, Diagram, Label

#: Base colour of each family, darkest to lightest.
PALETTE = {
    "conv": "#2a5591",  # L* 36
    "tconv": "#8e44b3",  # L* 43
    "padding": "#9c6d4b",  # L* 50
    "linear": "#3a9849",  # L* 56
    "pool": "#e37b12",  # L* 62
    "merge": "#a6a6a6",  # L* 68
    "resize": "#67c5be",  # L* 74
    "activation": "#f4b1c8",  # L* 79
    "other": "#d6cee7",  # L* 84
    "norm": "#f5e388",  # L* 90
    "input": "#f3f3f3",  # L* 96
}
FAILED = "#c62828"

FONT = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace"


@dataclass(frozen=True)
class Theme:
    background: str
    text: str
    line: str
    error: str
    node_text: str
    node_mix: tuple[str, float]  # graph nodes: the base colour mixed with this colour, this much


THEMES = {
    "light": Theme("#ffffff", "#1a1a1a", "#333333", FAILED, "#1a1a1a", ("#ffffff", 0.6)),
    "dark": Theme("#1b1d21", "#e8e8e8", "#c8c8c8", "#ff7070", "#f2f2f2", ("#000000", 0.55)),
}

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` escaped for XML character data, without characters XML 1.0 forbids."""
    return escape(_NOT_XML.sub("\ufffd", text))


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def mix(colour: str, other: str, amount: float) -> str:
    """``colour`` moved ``amount`` (0…1) of the way to ``other`` in sRGB."""
    a = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(a, b))


def base_colour(family: str) -> str:
    return FAILED if family == "failed" else PALETTE.get(family, PALETTE["other"])


def to_svg(diagram: Diagram, theme: str = "light", title: str = "") -> str:
    """The SVG document of ``diagram`` in ``theme`` (``light`` or ``dark``)."""
    t = THEMES[theme]
    w, h = _num(diagram.width), _num(diagram.height)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family={quoteattr(FONT)}>',
    ]
    if title:
        out.append(f"<title>{xml_text(title)}</title>")
    out += [
        "<defs>",
        f'<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{t.line}"/></marker>',
        "</defs>",
        f'<rect width="100%" height="100%" fill="{t.background}"/>',
    ]
    out += [_arrow(a, t) for a in diagram.arrows]
    out += [_box(b, t) for b in diagram.boxes]
    out += [_label(label, t) for label in diagram.labels]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _arrow(arrow: Arrow, t: Theme) -> str:
    d = " ".join(("M" if k == 0 else "L") + f"{_num(x)},{_num(y)}" for k, (x, y) in enumerate(arrow.points))
    dash = ' stroke-dasharray="5 3"' if arrow.kind == "skip" else ""
    return f'<path d="{d}" fill="none" stroke="{t.line}" stroke-width="1.3"{dash} marker-end="url(#head)"/>'


def _box(box: Box, t: Theme) -> str:
    base = base_colour(box.family)
    stroke = FAILED if box.failed else t.line
    extra = ' stroke-dasharray="4 2" stroke-width="2"' if box.failed else ' stroke-width="0.8"'
    name = f" data-name={quoteattr(xml_text(box.name))}" if box.name else ""
    x, y, w, h = _num(box.x), _num(box.y), _num(box.w), _num(box.h)
    if box.kind == "node":
        fill = mix(base, *t.node_mix)
        return f'<rect class="node"{name} x="{x}" y="{y}" width="{w}" height="{h}" rx="5" fill="{fill}" stroke="{stroke}"{extra}/>'
    if box.kind in ("swatch", "bar", "fail") or (box.dx == 0 and box.dy == 0):
        fill = mix(FAILED, t.background, 0.75) if box.kind == "fail" else base
        return f'<rect class="{box.kind}"{name} x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" stroke="{stroke}"{extra}/>'
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    top = [(x0, y0), (x0 + box.dx, y0 - box.dy), (x1 + box.dx, y0 - box.dy), (x1, y0)]
    side = [(x1, y0), (x1 + box.dx, y0 - box.dy), (x1 + box.dx, y1 - box.dy), (x1, y1)]
    pts = lambda ps: " ".join(f"{_num(px)},{_num(py)}" for px, py in ps)
    return (
        f'<g class="map"{name} stroke="{stroke}"{extra} stroke-linejoin="round">'
        f'<polygon points="{pts(side)}" fill="{mix(base, "#000000", 0.28)}"/>'
        f'<polygon points="{pts(top)}" fill="{mix(base, "#ffffff", 0.35)}"/>'
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{base}"/></g>'
    )


def _label(label: Label, t: Theme) -> str:
    colour = t.error if label.role == "error" else t.node_text if label.role in ("node",) else t.text
    anchor = f' text-anchor="{label.anchor}"' if label.anchor != "start" else ""
    weight = ' font-weight="bold"' if label.bold else ""
    return (
        f'<text class="{label.role}" x="{_num(label.x)}" y="{_num(label.y)}" font-size="{_num(label.size)}"'
        f'{anchor}{weight} fill="{colour}" xml:space="preserve">{xml_text(label.text)}</text>'
    )
