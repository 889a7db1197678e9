"""Pure geometry of a diagram: boxes, text and arrows placed from the layers' items.

Two styles, one :class:`Diagram` (what ``svg.py`` writes):

- :func:`layered`: the classic picture of a CNN — each feature map a box whose height follows H,
  whose depth follows W and whose thickness follows the channels (bounded, monotone scales:
  square root for sizes, log for channels and features), Linear/Flatten as bars; each box is
  labelled with its shape (C×H×W, C×L or C×D×H×W) and the layers that made it.
- :func:`graph`: a box per layer with its output shape, in ranks (top-to-bottom or
  left-to-right); a branch takes a lane of its own and long edges (skips, U-Net's
  concatenations) run in channels between the lanes, so no line crosses a box.

Text is written in a monospace font, so its extent is known here (:func:`text_width`); every
label is placed in a column or box of its own, which keeps text from overlapping other text.
No torch, rich or click.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .model import FOLDABLE, INPUT, Item

#: Advance of one character of the monospace font, in ems (DejaVu Sans Mono: 1233/2048).
CHAR_EM = 0.61
ASCENT, DESCENT = 0.8, 0.25
MAX_CHARS = 44  # longer user text is cut with "…"
MARGIN = 16

TITLE_SIZE, SHAPE_SIZE, TEXT_SIZE, LEGEND_SIZE, KERNEL_SIZE = 14, 11, 10, 10, 9
LINE = 1.3  # line height, in font sizes

#: Legend wording of each family (colours are the SVG writer's business).
FAMILY_NAMES = {
    "input": "input",
    "conv": "convolution",
    "tconv": "transposed conv",
    "pool": "pooling",
    "linear": "linear / flatten",
    "norm": "normalisation",
    "activation": "activation / dropout",
    "resize": "resize",
    "padding": "padding",
    "merge": "merge (add / concat)",
    "other": "other",
    "failed": "fails here",
}


# -- the result -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Label:
    """One line of text; ``y`` is its baseline, ``anchor`` is SVG's text-anchor."""

    x: float
    y: float
    text: str
    size: float = TEXT_SIZE
    anchor: str = "start"
    bold: bool = False
    role: str = "text"  # title, shape, text, legend, error, node

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the text as the monospace font draws it."""
        width = text_width(self.text, self.size)
        x0 = self.x - width / 2 if self.anchor == "middle" else self.x - width if self.anchor == "end" else self.x
        return (
            x0,
            self.y - ASCENT * self.size,
            x0 + width,
            self.y + DESCENT * self.size,
        )


@dataclass(frozen=True)
class Box:
    """A feature map, bar or node: front face (x, y, w, h) and a perspective offset (dx, dy)
    up and to the right (0 when flat)."""

    x: float
    y: float
    w: float
    h: float
    family: str
    kind: str = "map"  # map, bar, node, swatch
    dx: float = 0.0
    dy: float = 0.0
    failed: bool = False
    name: str = ""

    def bbox(self) -> tuple[float, float, float, float]:
        return (self.x, self.y - self.dy, self.x + self.w + self.dx, self.y + self.h)


@dataclass(frozen=True)
class Arrow:
    points: tuple[tuple[float, float], ...]
    kind: str = "flow"  # flow (to the next box) or skip (a branch or a long edge)


@dataclass
class Diagram:
    width: float
    height: float
    boxes: list[Box] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    style: str = "layered"


@dataclass(frozen=True)
class Options:
    flat: bool = False
    all_layers: bool = False
    direction: str = "tb"  # graph: tb (top to bottom) or lr (left to right)
    title: str = ""
    error: str = ""  # the diagnosis of a model that fails, shown under the drawing


# -- text -------------------------------------------------------------------------------------
def text_width(text: str, size: float) -> float:
    """Width of ``text`` in the monospace font: wide (CJK) characters count two, combining none."""
    cells = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        cells += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return cells * CHAR_EM * size


def clip(text: str, limit: int = MAX_CHARS) -> str:
    """User text on one bounded line: control characters dropped, long text cut with "…"."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shape_text(shape: tuple[int, ...] | None) -> str:
    return "fails here" if shape is None else "×".join(str(v) for v in shape)


def window_text(item: Item) -> str:
    """``3×3``, ``11×11 s4``, ``1×2×2 s1×2×2``: a layer's kernel, and its stride when not 1."""
    if not item.kernel:
        return ""
    kernel = "×".join(map(str, item.kernel))
    if all(s == 1 for s in item.stride):
        return kernel
    stride = str(item.stride[0]) if len(set(item.stride)) == 1 else "×".join(map(str, item.stride))
    return f"{kernel} s{stride}"


def member_lines(item: Item, *, split: bool) -> list[str]:
    """How a layer reads in the drawing: ``Conv2d`` then ``k=3 s=1 p=1`` (split) or on one line."""
    detail = "" if item.family in ("norm", "input") else item.detail
    if not detail:
        return [clip(item.type)]
    return [clip(item.type), clip(detail)] if split else [clip(f"{item.type} {detail}")]


# -- folding ----------------------------------------------------------------------------------
@dataclass
class Stage:
    """A drawn box: a layer and the activations/norms/pools folded into it (``members``)."""

    members: list[Item]
    parents: list[int] = field(default_factory=list)

    @property
    def head(self) -> Item:
        return self.members[0]

    @property
    def out(self) -> Item:
        return self.members[-1]

    @property
    def failed(self) -> bool:
        return any(m.failed for m in self.members)


def fold(items: Sequence[Item], all_layers: bool = False) -> list[Stage]:
    """Group items into stages: an activation, norm, pooling, padding or resize layer joins the
    stage before it when it reads that stage's output and is its only reader."""
    readers = Counter(name for item in items for name in item.inputs)
    stages: list[Stage] = []
    where: dict[str, int] = {}
    for item in items:
        if not all_layers and item.family in FOLDABLE and len(item.inputs) == 1 and not item.failed:
            k = where.get(item.inputs[0])
            if k is not None:
                stage = stages[k]
                # only items that did not fail join a stage, so a stage failed when its head did
                # (``stage.failed`` scans every member: quadratic over a long run of activations)
                if stage.out.name == item.inputs[0] and readers[item.inputs[0]] == 1 and stage.head.name != INPUT and not stage.head.failed:
                    stage.members.append(item)
                    where[item.name] = k
                    continue
        parents = list(dict.fromkeys(where[name] for name in item.inputs if name in where))
        where[item.name] = len(stages)
        stages.append(Stage([item], parents))
    return stages


# -- scales (monotone, bounded) ---------------------------------------------------------------
def spatial_scale(n: int) -> float:
    """Height of a map side of ``n`` pixels: 6 + 6√n, between 12 and 200 (7 → 22, 224 → 96)."""
    return min(200.0, max(12.0, 6.0 + 6.0 * math.sqrt(n)))


def channel_scale(c: int) -> float:
    """Thickness of ``c`` channels: 4 + 5·log2(c), between 4 and 70 (3 → 12, 512 → 49)."""
    return min(70.0, max(4.0, 4.0 + 5.0 * math.log2(max(c, 1))))


def feature_scale(n: int) -> float:
    """Length of a bar of ``n`` features: 8 + 9·log2(n), between 8 and 150 (10 → 38, 4096 → 116)."""
    return min(150.0, max(8.0, 8.0 + 9.0 * math.log2(max(n, 1))))


DEPTH = 0.4  # perspective depth per unit of W's scale
BAR_W = 10.0


def box_size(shape: tuple[int, ...] | None, flat: bool) -> tuple[str, float, float, float]:
    """(kind, w, h, depth) of a stage's box for its output shape (batch excluded)."""
    if shape is None:
        return "fail", 24.0, 48.0, 0.0
    if len(shape) <= 1:
        return "bar", BAR_W, feature_scale(shape[0] if shape else 1), 0.0
    spatial = shape[1:]
    h = spatial_scale(spatial[-2] if len(spatial) >= 2 else spatial[0])
    d = 0.0 if flat or len(spatial) < 2 else DEPTH * spatial_scale(spatial[-1])
    return "map", channel_scale(shape[0]), h, d


# -- layered style ----------------------------------------------------------------------------
COLUMN_GAP = 22.0


def layered(items: Sequence[Item], options: Options = Options()) -> Diagram:
    """The classic CNN picture: stages left to right, labelled below, branches as arcs above."""
    stages = fold(items, options.all_layers)
    sizes = [box_size(s.out.shape, options.flat) for s in stages]
    texts = [_stage_texts(s) for s in stages]
    widths = []
    for (kind, w, h, d), lines in zip(sizes, texts):
        text_w = max(text_width(t, size) for t, size, _, _ in lines)
        widths.append(max(w + d, text_w, 24.0))

    # the kernel of the layer that makes a box, written over the arrow that comes into it
    windows = [window_text(s.head) if i and i - 1 in s.parents else "" for i, s in enumerate(stages)]

    # columns, left to right; a gap wide enough for its kernel label
    xs: list[float] = []
    cursor = float(MARGIN)
    for i, width in enumerate(widths):
        if i:
            slack = (widths[i - 1] - sizes[i - 1][1] - sizes[i - 1][3]) / 2 + (width - sizes[i][1] - sizes[i][3]) / 2
            need = text_width(windows[i], KERNEL_SIZE) + 12 - slack if windows[i] else 0.0
            cursor += max(COLUMN_GAP, need)
        xs.append(cursor)
        cursor += width
    content_right = cursor

    # arcs: every input that is not the stage just before
    arcs = [(p, i) for i, s in enumerate(stages) for p in s.parents if p != i - 1]
    levels = _levels(arcs)
    n_levels = max(levels, default=-1) + 1

    labels, top = _title(options, gap=6.0)
    arc_top = top + 4
    top += n_levels * 10.0 + (10.0 if n_levels else 0.0)
    up = max(h / 2 + d for _, _, h, d in sizes)
    down = max(h / 2 for _, _, h, _ in sizes)
    yc = top + up
    boxes: list[Box] = []
    for i, (stage, (kind, w, h, d)) in enumerate(zip(stages, sizes)):
        bx = xs[i] + (widths[i] - (w + d)) / 2
        boxes.append(
            Box(
                bx,
                yc - h / 2,
                w,
                h,
                "failed" if stage.failed else stage.head.family,
                kind,
                d,
                d,
                stage.failed,
                stage.out.name,
            )
        )

    label_top = yc + down + 10
    bottom = label_top
    for i, lines in enumerate(texts):
        y = label_top
        centre = xs[i] + widths[i] / 2
        for text, size, bold, role in lines:
            y += size * LINE
            labels.append(Label(centre, y - DESCENT * size, text, size, "middle", bold, role))
        bottom = max(bottom, y)

    arrows = []
    for i in range(1, len(stages)):
        if i - 1 in stages[i].parents:
            a, b = boxes[i - 1], boxes[i]
            arrows.append(Arrow(((a.x + a.w + a.dx + 2, yc), (b.x - 3, yc))))
            if windows[i]:
                labels.append(Label((a.x + a.w + a.dx + b.x) / 2, yc - 4, windows[i], KERNEL_SIZE, "middle", role="kernel"))
    used: Counter[int] = Counter()
    for (p, i), level in zip(arcs, levels):
        a, b = boxes[p], boxes[i]
        y = arc_top + (n_levels - 1 - level) * 10.0
        ax = a.x + a.w / 2 + a.dx / 2 + 3 * used[p]
        bx = b.x + b.w / 2 + b.dx / 2 - 3 * used[i]
        used[p] += 1
        used[i] += 1
        arrows.append(Arrow(((ax, a.y - a.dy), (ax, y), (bx, y), (bx, b.y - b.dy - 3)), "skip"))

    width = max(content_right + MARGIN, 360.0)
    bottom = _footer(labels, boxes, stages, options, bottom + 8, width)
    width = max(width, *(l.bbox()[2] + MARGIN for l in labels))
    return Diagram(width, bottom + MARGIN, boxes, labels, arrows, "layered")


def _stage_texts(stage: Stage) -> list[tuple[str, float, bool, str]]:
    """(text, size, bold, role) of the lines under a stage: its shape, then each member."""
    lines: list[tuple[str, float, bool, str]] = [(shape_text(stage.out.shape), SHAPE_SIZE, True, "shape")]
    if stage.head.name == INPUT:
        lines.append(("input", TEXT_SIZE, False, "text"))
    for member in stage.members:
        if member.name == INPUT:
            continue
        for text in member_lines(member, split=True):
            lines.append((text, TEXT_SIZE, False, "error" if member.failed else "text"))
    return lines



def _title(options: Options, *, gap: float) -> tuple[list[Label], float]:
    """The title label (if any) and the y where the drawing starts below it."""
    top = float(MARGIN)
    if not options.title:
        return [], top
    title = Label(MARGIN, top + TITLE_SIZE * ASCENT, clip(options.title, 120), TITLE_SIZE, bold=True, role="title")
    return [title], top + TITLE_SIZE * LINE + gap

def _levels(arcs: Sequence[tuple[int, int]]) -> list[int]:
    """A height per arc so that arcs whose spans overlap never share one (shortest lowest)."""
    order = sorted(range(len(arcs)), key=lambda k: (arcs[k][1] - arcs[k][0], arcs[k][0]))
    taken: list[list[tuple[int, int]]] = []
    levels = [0] * len(arcs)
    for k in order:
        a, b = arcs[k]
        for level, spans in enumerate(taken):
            if all(b < lo or a > hi for lo, hi in spans):
                spans.append((a, b))
                levels[k] = level
                break
        else:
            taken.append([(a, b)])
            levels[k] = len(taken) - 1
    return levels


def _footer(
    labels: list[Label],
    boxes: list[Box],
    stages: Sequence[Stage],
    options: Options,
    y: float,
    width: float,
) -> float:
    """The error (if any) and the legend under the drawing; returns the new bottom."""
    if options.error:
        for line in _wrap(options.error, max(40, int((width - 2 * MARGIN) / (CHAR_EM * TEXT_SIZE)))):
            y += TEXT_SIZE * LINE
            labels.append(Label(MARGIN, y - DESCENT * TEXT_SIZE, line, TEXT_SIZE, role="error"))
        y += 4
    families = list(dict.fromkeys(("failed" if s.failed else s.head.family) for s in stages))
    x = float(MARGIN)
    y += 6
    row_h = LEGEND_SIZE * LINE + 2
    for family in families:
        text = FAMILY_NAMES.get(family, family)
        item_w = 12 + 5 + text_width(text, LEGEND_SIZE) + 16
        if x > MARGIN and x + item_w > width - MARGIN:
            x = float(MARGIN)
            y += row_h
        boxes.append(Box(x, y, 12, 12, family, "swatch", failed=family == "failed"))
        labels.append(Label(x + 17, y + 10, text, LEGEND_SIZE, role="legend"))
        x += item_w
    return y + row_h


def _wrap(text: str, width: int, limit: int = 4) -> list[str]:
    """``text`` in lines of at most ``width`` characters, at most ``limit`` lines."""
    text = clip(text, width * limit)
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines[:limit]


# -- graph style ------------------------------------------------------------------------------
NODE_PAD = 7.0
RANK_GAP = 34.0
LANE_GAP = 26.0
CHANNEL_STEP = 7.0


def graph(items: Sequence[Item], options: Options = Options()) -> Diagram:
    """A box per layer (activations and norms folded in unless ``all_layers``) with its output
    shape; ranks along ``options.direction``, branches in lanes of their own."""
    stages = fold(items, options.all_layers)
    tb = options.direction != "lr"
    texts = [_node_texts(s) for s in stages]
    sizes = []
    for lines in texts:
        w = max(text_width(t, s) for t, s, _, _ in lines) + 2 * NODE_PAD
        h = sum(s * LINE for _, s, _, _ in lines) + 2 * NODE_PAD - 2
        sizes.append((w, h))

    rank = [0] * len(stages)
    for i, s in enumerate(stages):
        rank[i] = 1 + max((rank[p] for p in s.parents), default=-1)
    lane = [0] * len(stages)
    taken: set[tuple[int, int]] = set()
    for i, s in enumerate(stages):
        wanted = [lane[p] for p in s.parents]
        choice = next((ln for ln in wanted if (ln, rank[i]) not in taken), None)
        if choice is None:
            choice = wanted[0] + 1 if wanted else 0
            while (choice, rank[i]) in taken:
                choice += 1
        lane[i] = choice
        taken.add((choice, rank[i]))

    # main axis = along the ranks, cross axis = across the lanes
    main_of = [(h if tb else w) for w, h in sizes]
    cross_of = [(w if tb else h) for w, h in sizes]
    n_ranks, n_lanes = max(rank) + 1, max(lane) + 1
    rank_size = [0.0] * n_ranks
    lane_size = [0.0] * n_lanes
    for i in range(len(stages)):
        rank_size[rank[i]] = max(rank_size[rank[i]], main_of[i])
        lane_size[lane[i]] = max(lane_size[lane[i]], cross_of[i])

    # edges: which need a channel, and their slots in it
    occupied = {(lane[i], rank[i]) for i in range(len(stages))}
    edges = [(p, i) for i, s in enumerate(stages) for p in s.parents]
    routed: list[tuple[int, int, int]] = []  # (p, i, channel lane, or -1/-2: turn after p / before i)
    for p, i in edges:
        between = range(rank[p] + 1, rank[i])
        if all((lane[i], r) not in occupied for r in between):
            routed.append((p, i, -1))
        elif all((lane[p], r) not in occupied for r in between):
            routed.append((p, i, -2))
        else:
            routed.append((p, i, max(lane[p], lane[i])))
    channel_edges: dict[int, list[tuple[int, int]]] = {}
    for p, i, ch in routed:
        if ch >= 0:
            channel_edges.setdefault(ch, []).append((rank[p], rank[i]))
    slots = {ch: _levels(spans) for ch, spans in channel_edges.items()}
    n_slots = {ch: max(v) + 1 for ch, v in slots.items()}

    labels, top = _title(options, gap=10.0)
    # positions along each axis
    lane_start = []
    cursor = float(MARGIN) if tb else top
    for ln in range(n_lanes):
        lane_start.append(cursor)
        cursor += lane_size[ln] + LANE_GAP + CHANNEL_STEP * n_slots.get(ln, 0)
    cross_end = cursor
    rank_start = []
    cursor = top if tb else float(MARGIN)
    for r in range(n_ranks):
        rank_start.append(cursor)
        cursor += rank_size[r] + RANK_GAP
    main_end = cursor - RANK_GAP

    def place(i: int) -> tuple[float, float, float, float]:
        """(x, y, w, h) of stage i's node: centred in its lane, at the start of its rank."""
        w, h = sizes[i]
        c0 = lane_start[lane[i]] + (lane_size[lane[i]] - cross_of[i]) / 2
        m0 = rank_start[rank[i]] + (rank_size[rank[i]] - main_of[i]) / 2
        return (c0, m0, w, h) if tb else (m0, c0, w, h)

    boxes: list[Box] = []
    for i, stage in enumerate(stages):
        x, y, w, h = place(i)
        family = "failed" if stage.failed else stage.head.family
        boxes.append(Box(x, y, w, h, family, "node", failed=stage.failed, name=stage.out.name))
        line_y = y + NODE_PAD
        for text, size, bold, role in texts[i]:
            line_y += size * LINE
            labels.append(
                Label(
                    x + w / 2,
                    line_y - DESCENT * size - 2,
                    text,
                    size,
                    "middle",
                    bold,
                    role,
                )
            )

    arrows = []
    slot_of = {ch: iter(v) for ch, v in slots.items()}
    for p, i, ch in routed:
        arrows.append(
            _route(
                p,
                i,
                ch,
                next(slot_of[ch]) if ch >= 0 else 0,
                boxes,
                rank,
                rank_start,
                rank_size,
                lane_start,
                lane_size,
                tb,
            )
        )

    right, bottom = (cross_end, main_end) if tb else (main_end, cross_end)
    width = max(right + MARGIN, 360.0)
    bottom = _footer(labels, boxes, stages, options, bottom + 8, width)
    width = max(width, *(l.bbox()[2] + MARGIN for l in labels))
    return Diagram(width, bottom + MARGIN, boxes, labels, arrows, "graph")


def _node_texts(stage: Stage) -> list[tuple[str, float, bool, str]]:
    head = stage.head
    if head.name == INPUT:
        return [
            ("input", SHAPE_SIZE, True, "node"),
            (shape_text(head.shape), TEXT_SIZE, False, "shape"),
        ]
    lines: list[tuple[str, float, bool, str]] = [
        (
            clip(stage.out.name if len(stage.members) == 1 else head.name),
            SHAPE_SIZE,
            True,
            "node",
        )
    ]
    for member in stage.members:
        for text in member_lines(member, split=False):
            lines.append((text, TEXT_SIZE, False, "error" if member.failed else "node"))
    lines.append(
        (
            shape_text(stage.out.shape),
            TEXT_SIZE,
            True,
            "error" if stage.failed else "shape",
        )
    )
    return lines


def _route(
    p: int,
    i: int,
    channel: int,
    slot: int,
    boxes: Sequence[Box],
    rank: Sequence[int],
    rank_start: Sequence[float],
    rank_size: Sequence[float],
    lane_start: Sequence[float],
    lane_size: Sequence[float],
    tb: bool,
) -> Arrow:
    """An orthogonal path from node p's far side to node i's near side. ``channel`` -1: along i's
    lane (free between them), turning in the gap after p; -2: along p's lane, turning in the gap
    before i; else through that lane's channel (at ``slot``), turning in both gaps."""
    a, b = boxes[p], boxes[i]

    def pt(main: float, cross: float) -> tuple[float, float]:
        return (cross, main) if tb else (main, cross)

    a_cross = a.x + a.w / 2 if tb else a.y + a.h / 2
    b_cross = b.x + b.w / 2 if tb else b.y + b.h / 2
    a_end = a.y + a.h if tb else a.x + a.w
    b_start = (b.y if tb else b.x) - 3
    gap_after = rank_start[rank[p]] + rank_size[rank[p]] + RANK_GAP / 2
    gap_before = rank_start[rank[i]] - RANK_GAP / 2
    a_room = (a.w if tb else a.h) / 2 - 6
    b_room = (b.w if tb else b.h) / 2 - 6
    if channel < 0:
        if abs(a_cross - b_cross) < 0.5:
            return Arrow((pt(a_end, a_cross), pt(b_start, b_cross)), "flow")
        # arrive beside the middle of b (where the arrow from the rank before arrives)
        b_cross += math.copysign(min(12.0, b_room), a_cross - b_cross)
        turn = gap_after if channel == -1 else gap_before
        return Arrow(
            (
                pt(a_end, a_cross),
                pt(turn, a_cross),
                pt(turn, b_cross),
                pt(b_start, b_cross),
            ),
            "skip",
        )
    a_cross += min(12.0, a_room)
    b_cross += min(12.0, b_room)
    lane_x = lane_start[channel] + lane_size[channel] + LANE_GAP / 2 + CHANNEL_STEP * slot
    shift = 3.0 * slot % 9
    return Arrow(
        (
            pt(a_end, a_cross),
            pt(gap_after - shift, a_cross),
            pt(gap_after - shift, lane_x),
            pt(gap_before + shift, lane_x),
            pt(gap_before + shift, b_cross),
            pt(b_start, b_cross),
        ),
        "skip",
    )


def draw_layout(items: Sequence[Item], style: str = "layered", options: Options = Options()) -> Diagram:
    """The diagram of ``items`` in ``style`` (``layered`` or ``graph``)."""
    if style == "graph":
        return graph(items, options)
    return layered(items, options)


def overlaps(labels: Sequence[Label], pad: float = 0.0) -> list[tuple[Label, Label]]:
    """Pairs of labels whose text boxes intersect (a sweep over x; for tests and self-checks)."""
    boxes = sorted(((l.bbox(), l) for l in labels), key=lambda t: t[0][0])
    found = []
    active: list[tuple[tuple[float, float, float, float], Label]] = []
    for box, label in boxes:
        active = [(b, l) for b, l in active if b[2] + pad > box[0]]
        for other, other_label in active:
            if other[1] < box[3] + pad and box[1] < other[3] + pad:
                found.append((other_label, label))
        active.append((box, label))
    return found
