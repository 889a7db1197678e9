"""The diagram's pure parts: bounded monotone scales, folding, graph lanes, the palette in grey."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcalc import load_model
from convcalc.draw.layout import (
    Options,
    channel_scale,
    feature_scale,
    fold,
    graph,
    spatial_scale,
)
from convcalc.draw.model import items_from_summary
from convcalc.draw.svg import PALETTE

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


@given(st.integers(1, 10**12), st.integers(1, 10**12))
def test_scales_are_monotone_and_bounded(a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    for scale, lo, hi in ((spatial_scale, 12, 200), (channel_scale, 4, 70), (feature_scale, 8, 150)):
        assert lo <= scale(low) <= scale(high) <= hi


def test_vgg_ends_differ_visibly() -> None:
    assert spatial_scale(224) > 4 * spatial_scale(7) > 0
    assert channel_scale(512) > channel_scale(64) > channel_scale(3)


def test_a_pool_read_by_a_skip_is_not_folded() -> None:
    """U-Net: enc1's output feeds pool1 and cat1, so pool1 keeps its own box (the skip reads the
    pre-pool map); a pool read only by the next layer joins the conv before it."""
    stages = fold(items_from_summary(load_model(str(MODELS / "unet.yaml")).summary()))
    heads = {s.head.name: [m.name for m in s.members] for s in stages}
    assert heads["pool1"] == ["pool1"]
    assert heads["enc1.conv2"] == ["enc1.conv2", "enc1.bn2", "enc1.relu2"]
    vgg = fold(items_from_summary(load_model(str(MODELS / "vgg16.yaml")).summary()))
    assert any([m.type for m in s.members] == ["Conv2d", "ReLU", "MaxPool2d"] for s in vgg)
    everything = fold(items_from_summary(load_model(str(MODELS / "vgg16.yaml")).summary()), all_layers=True)
    assert all(len(s.members) == 1 for s in everything)


def test_graph_nodes_never_overlap_and_branches_take_their_own_lane() -> None:
    summary = load_model(str(MODELS / "resnet18.yaml")).summary()
    for direction in ("tb", "lr"):
        diagram = graph(items_from_summary(summary), Options(direction=direction))
        nodes = [b for b in diagram.boxes if b.kind == "node"]
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y, (a.name, b.name)
        down = next(b for b in nodes if b.name == "layer2.0.downsample.1")
        main = next(b for b in nodes if b.name == "layer2.0.relu")  # conv1 + bn1 + relu, the same rank
        if direction == "tb":  # same rank: same row; its own lane: another column
            assert down.y + down.h / 2 == pytest.approx(main.y + main.h / 2) and down.x >= main.x + main.w
        else:
            assert down.x + down.w / 2 == pytest.approx(main.x + main.w / 2) and down.y >= main.y + main.h


def _lightness(colour: str) -> float:
    def linear(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    y = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    return 116 * y ** (1 / 3) - 16 if y > 0.008856 else 903.3 * y


def test_families_stay_apart_in_grey() -> None:
    """Printed in greyscale, every two families differ by at least 5 in CIELAB lightness."""
    values = sorted(_lightness(c) for c in PALETTE.values())
    assert all(b - a >= 5 for a, b in zip(values, values[1:])), values
