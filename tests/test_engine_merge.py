"""The merges against torch: Add, Subtract, Multiply, Divide (torch's broadcasting, inputs in order: a - b - c)
and Concat (torch.cat along dim). convcalc refuses exactly where torch raises, otherwise gives torch's
shape, 0 params and FlopCounterMode's MACs; verify's own module computes what torch computes."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")

SOME = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
OPS = {"Add": torch.add, "Subtract": torch.sub, "Multiply": torch.mul, "Divide": torch.div}


@st.composite
def shapes_to_join(draw):
    base = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    shapes = []
    for _ in range(draw(st.integers(2, 3))):
        if draw(st.booleans()):  # broadcastable: a suffix of the base with some sizes 1
            cut = draw(st.integers(0, len(base) - 1))
            shapes.append(tuple(1 if draw(st.booleans()) else s for s in base[cut:]))
        else:  # anything
            shapes.append(tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))))
    return shapes


def engine(kind: str, shapes: list[tuple[int, ...]], **kwargs: Any) -> Any:
    try:
        layer = convcalc.layer(kind, **kwargs)
        return layer.merge_shapes(shapes), layer.num_params, layer.macs(shapes[0]), layer
    except (ShapeError, SpecError) as error:
        assert "\n" not in str(error) and str(error).startswith(kind), str(error)
        return error


def twin(layer: Any) -> Any:
    from convcalc.verify.specs import torch_twin

    return torch_twin(torch, layer)


@SOME
@given(shapes_to_join(), st.sampled_from(sorted(OPS)))
def test_elementwise_merges_match_torch(shapes, kind) -> None:
    xs = [torch.randn(s) for s in shapes]
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        with warnings.catch_warnings(), counter:
            warnings.simplefilter("ignore")
            expected = functools.reduce(OPS[kind], xs)
    except RuntimeError:
        expected = None
    mine = engine(kind, shapes)
    where = f"{kind} of {shapes}"
    if expected is None:
        assert isinstance(mine, Exception), f"torch raises, convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc refuses ({mine}) what torch computes: {where}"
    assert mine[:3] == (tuple(expected.shape), 0, counter.get_total_flops() // 2), where
    assert torch.equal(twin(mine[3])(*xs), expected), where  # in order: a - b is not b - a


@SOME
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), st.floats(-4, 4, allow_nan=False), st.floats(-4, 4, allow_nan=False))
def test_rescale_is_x_times_scale_plus_shift(shape, scale, shift) -> None:
    """Rescale (a number times a tensor, plus a number): the shape kept, 0 params, FlopCounterMode's 0 MACs."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(shape)
    counter = FlopCounterMode(display=False)
    with counter:
        expected = x * scale + shift
    layer = convcalc.layer("Rescale", scale=scale, shift=shift)
    assert (layer.output_shape(shape), layer.num_params, layer.macs(shape)) == (tuple(expected.shape), 0, counter.get_total_flops() // 2)
    assert torch.allclose(twin(layer)(x), expected)
    assert layer.window(shape) == "identity"


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "0.5", True, 10**400])
def test_rescale_takes_finite_numbers(value) -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.layer("Rescale", scale=value)
    assert caught.value.message.startswith("Rescale: scale"), caught.value.message


@SOME
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(-5, 4), st.lists(st.integers(1, 3), min_size=1, max_size=3), st.data())
def test_concat_matches_torch(base, dim, extra, data) -> None:
    shapes = [tuple(base)]
    for size in extra:  # another size along dim, or (sometimes) another size elsewhere
        other = list(base)
        axis = dim % len(base) if -len(base) <= dim < len(base) and data.draw(st.integers(0, 3)) else data.draw(st.integers(0, len(base) - 1))
        other[axis] = size
        shapes.append(tuple(other))
    xs = [torch.randn(s) for s in shapes]
    try:
        expected = torch.cat(xs, dim=dim)
    except (RuntimeError, IndexError):
        expected = None
    mine = engine("Concat", shapes, dim=dim)
    where = f"Concat(dim={dim}) of {shapes}"
    if expected is None:
        assert isinstance(mine, Exception), f"torch raises, convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc refuses ({mine}) what torch computes: {where}"
    assert mine[:3] == (tuple(expected.shape), 0, 0), where
    assert torch.equal(twin(mine[3])(*xs), expected), where
