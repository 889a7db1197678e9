"""Hypothesis strategies shared by the engine-vs-torch property tests (conv, tconv, pool), and
``check_cases``, which runs conftest's ``torch_agrees`` on what they draw.

A "wild" case also draws values torch typically refuses; the verdicts must then agree too.
Sizes and channel counts start at 1: convcalc requires them ≥ 1 (torch also accepts empty tensors).
``CONVCALC_EXAMPLES_SCALE`` (default 1) multiplies the number of examples for a deeper run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("CONVCALC_EXAMPLES_SCALE", "1"))
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_axis(dims: int, values: st.SearchStrategy) -> st.SearchStrategy:
    """One int for every axis, or a tuple of one per axis (torch's ``_pair``/``_triple``)."""
    return st.one_of(values, st.tuples(*[values] * dims))


def values(common: list, rare: list, wild: bool) -> st.SearchStrategy:
    """``common`` values; in a ``wild`` case also ``rare`` ones (typically refused by torch)."""
    return st.sampled_from(common + rare if wild else common)


@st.composite
def input_shapes(draw, dims: int, max_size: int, wild: bool, channels: int | None = None) -> tuple[int, ...]:
    """Batched ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, spatial sizes 1..``max_size``;
    in a ``wild`` case maybe a rank the layer does not take.

    With ``channels`` (a layer that checks C), a ``wild`` case may also take another channel count,
    and the rank one short keeps C: ``(C, *spatial[1:])``. Without (pooling takes any C), C is
    drawn from 1..4, and the rank one short is the spatial sizes alone (``(C,)`` in 1-D).
    """
    checked = channels is not None
    if checked and wild and draw(st.booleans()):
        channels = draw(st.integers(1, 6))
    sizes = tuple(draw(st.integers(1, max_size)) for _ in range(dims))
    if channels is None:
        channels = draw(st.integers(1, 4))
    rank = draw(values([dims + 2, dims + 1], [dims, dims + 3], wild))
    if rank == dims + 2:
        return (draw(st.integers(1, 2)), channels, *sizes)
    if rank == dims + 1:
        return (channels, *sizes)
    if rank == dims:
        return (channels, *sizes[1:]) if checked or dims == 1 else sizes
    return (1, 1, channels, *sizes)


def channel_counts(groups: int, wild: bool) -> st.SearchStrategy:
    """A multiple of ``groups``; in a ``wild`` case maybe any count 1..6 (maybe not divisible)."""
    multiple = st.integers(1, 2).map(lambda m: m * max(groups, 1))
    return st.one_of(multiple, st.integers(1, 6)) if wild else multiple


#: No batch axis, or a batch of 1 or 2.
BATCHES = st.sampled_from([(), (1,), (2,)])


def check_cases(
    torch_agrees: Callable[..., str],
    type_name: str,
    cases: st.SearchStrategy,
    max_examples: int,
    expect: str | None = None,
    around: Callable[[], Any] = contextlib.nullcontext,
) -> None:
    """``torch_agrees(type_name, kwargs, shape)`` on ``max_examples`` drawn ``(kwargs, shape)`` cases,
    each inside ``around()``. With ``expect`` every verdict must be it; without, the verdicts
    ("ok", "error") are counted as hypothesis events."""

    @settings(max_examples=max_examples, **SETTINGS)
    @given(cases)
    def check(case):
        kwargs, shape = case
        with around():
            verdict = torch_agrees(type_name, kwargs, shape)
        if expect is None:
            event(verdict)
        else:
            assert verdict == expect

    check()
