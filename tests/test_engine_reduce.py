"""Sum, Mean, Amax and Norm (``x.sum(dim, keepdim)``, ``x.mean(dim, keepdim)``, ``torch.amax``, ``x.norm(2, dim, keepdim)``) against torch: convcalc refuses
exactly where torch raises (and where torch would give a 0-d scalar, which convcalc does not calculate
with: said so), otherwise gives torch's shape, 0 params and FlopCounterMode's MACs; the value a refusal
suggests works; verify's own module computes torch's reduction."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")

SOME = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
CALLS = {"Sum": torch.sum, "Mean": torch.mean, "Amax": torch.amax,
         "Norm": lambda x, dim, keepdim=False: torch.linalg.vector_norm(x, 2, dim, keepdim=keepdim)}


@st.composite
def cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=5)))
    rank = len(shape)
    dims = draw(st.lists(st.integers(-rank - 1, rank), min_size=1, max_size=rank + 1))
    one = draw(st.booleans()) and len(dims) == 1
    return draw(st.sampled_from(sorted(CALLS))), shape, dims[0] if one else dims, draw(st.booleans())


def torch_answer(kind: str, shape: tuple[int, ...], dim: Any, keepdim: bool) -> Any:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        with warnings.catch_warnings(), counter:
            warnings.simplefilter("ignore")
            out = CALLS[kind](torch.randn(shape), dim, keepdim=keepdim)
    except (RuntimeError, IndexError) as error:
        return error
    return tuple(out.shape), 0, counter.get_total_flops() // 2


@SOME
@given(cases())
def test_reductions_match_torch(case) -> None:
    kind, shape, dim, keepdim = case
    where = f"{kind}(dim={dim}, keepdim={keepdim}) on {shape}"
    theirs = torch_answer(kind, shape, dim, keepdim)
    try:
        layer = convcalc.layer(kind, dim=dim, keepdim=keepdim)
        mine: Any = (layer.output_shape(shape), layer.num_params, layer.macs(shape))
    except (ShapeError, SpecError) as error:
        mine = error
        assert "\n" not in str(error) and str(error).startswith(kind), str(error)
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises {theirs!r}, convcalc answers {mine}: {where}"
    elif isinstance(mine, Exception):
        assert theirs[0] == () and "to a single number" in str(mine), f"convcalc refuses ({mine}) what torch computes: {where}"
    else:
        assert mine == theirs, f"convcalc {mine} != torch {theirs}: {where}"
        module = _module(kind, layer)
        x = torch.randn(shape)
        assert torch.allclose(module(x), CALLS[kind](x, dim, keepdim=keepdim))
        layer.window(shape), layer.describe(), layer.touched_axes(shape)
    if isinstance(mine, Exception) and "use dim: " in str(mine):
        fix = re.search(r"use dim: (\[[-0-9, ]+\]|-?\d+)", str(mine)).group(1)
        fixed = [int(v) for v in fix.strip("[]").split(",")] if fix.startswith("[") else int(fix)
        keep = keepdim or "with keepdim: true" in str(mine)
        assert convcalc.layer(kind, dim=fixed, keepdim=keep).output_shape(shape) == tuple(CALLS[kind](torch.zeros(shape), fixed, keepdim=keep).shape)


def _module(kind: str, layer: Any) -> Any:
    from convcalc.verify.specs import torch_twin

    return torch_twin(torch, layer)


@pytest.mark.parametrize("dim", [[], "1", 1.5, True, [0, None]])
def test_dim_must_name_dimensions(dim: Any) -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.layer("Sum", dim=dim)
    assert caught.value.message.startswith("Sum: dim"), caught.value.message


def test_resnest_s_radix_sum_and_a_token_mean() -> None:
    assert convcalc.layer("Sum", dim=1).output_shape((2, 2, 32, 8, 8)) == (2, 32, 8, 8)
    assert convcalc.layer("Mean", dim=1).output_shape((2, 197, 768)) == (2, 768)
    assert convcalc.layer("Mean", dim=[2, 3], keepdim=True).output_shape((1, 8, 5, 5)) == (1, 8, 1, 1)
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("Sum", dim=[1, -2]).output_shape((1, 4, 5))
    assert "names dimension 1 twice" in caught.value.message and "use dim: 1" in caught.value.message


def test_norm_takes_infinity_as_torch_spells_it_and_names_what_p_can_be() -> None:
    """torch's spelling of the max-norm, ord=float('inf'), was refused from Python ('p must be a finite number,
    got inf') while the spec's string 'inf' worked; 'fro' (torch.norm's, the 2-norm here) was told the same."""
    import math

    import torch

    for p in (math.inf, -math.inf, "inf", "-inf"):
        layer = convcalc.layer("Norm", dim=1, p=p)
        assert layer.output_shape((2, 3)) == tuple(torch.linalg.vector_norm(torch.ones(2, 3), float(p), 1).shape)
        assert layer.p == float(p)
    for p, words in (("fro", "use p: 2"), (math.nan, "a number, inf or -inf"), ("x", "a number, inf or -inf"), (None, "a number, inf or -inf")):
        with pytest.raises(SpecError, match=words) as caught:
            convcalc.layer("Norm", dim=1, p=p)
        assert "finite" not in caught.value.message
