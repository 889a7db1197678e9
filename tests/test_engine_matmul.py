"""MatMul (``torch.matmul``) and ScaledDotProductAttention (``F.scaled_dot_product_attention``) against
torch: convcalc refuses exactly where torch raises (and a product of two vectors, one number, which it
does not calculate with: said so), otherwise gives torch's shape and FlopCounterMode's MACs as verify
counts them; verify's own module computes what torch computes."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")
F = torch.nn.functional

SOME = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
dims = st.integers(1, 4)


def counted(call: Any, xs: list[Any]) -> Any:
    """(output shape, MACs as verify counts them: FlopCounterMode with its fused-kernel formulas), or what torch raises."""
    from convcalc.verify.runtime import _flop_counter

    try:
        with warnings.catch_warnings(), torch.no_grad(), _flop_counter(torch) as counter:
            warnings.simplefilter("ignore")
            out = call(*xs)
    except (RuntimeError, IndexError, ValueError) as error:
        return error
    return tuple(out.shape), counter.get_total_flops() // 2, out


def engine(kind: str, shapes: list[tuple[int, ...]], **kwargs: Any) -> Any:
    try:
        layer = convcalc.layer(kind, **kwargs)
        return layer.merge_shapes(shapes), layer.merge_macs(shapes), layer
    except (ShapeError, SpecError) as error:
        assert "\n" not in str(error) and str(error).startswith(kind), str(error)
        return error


def twin(layer: Any) -> Any:
    from convcalc.verify.specs import torch_twin

    return torch_twin(torch, layer)


def agree(kind: str, shapes: list[tuple[int, ...]], call: Any, **kwargs: Any) -> str:
    xs = [torch.randn(s) for s in shapes]
    theirs = counted(call, xs)
    mine = engine(kind, shapes, **kwargs)
    where = f"{kind}({kwargs}) of {shapes}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises {theirs!r}, convcalc answers {mine[:2]}: {where}"
        return "error"
    if isinstance(mine, Exception) and theirs[0] == ():
        assert "one number" in str(mine), mine
        return "scalar"
    assert not isinstance(mine, Exception), f"convcalc refuses ({mine}) what torch computes: {where}"
    assert mine[:2] == theirs[:2], f"convcalc {mine[:2]} != torch {theirs[:2]}: {where}"
    with torch.no_grad():
        assert torch.allclose(twin(mine[2])(*xs), theirs[2], atol=1e-5), where
    return "ok"


@st.composite
def matmul_shapes(draw):
    n, k, m = draw(dims), draw(dims), draw(dims)
    a = [*draw(st.lists(dims, max_size=2)), n, k][draw(st.integers(0, 1)) if draw(st.booleans()) else 0:]
    b = [*draw(st.lists(dims, max_size=2)), k, m]
    if draw(st.booleans()):
        b = b[-2:-1] if draw(st.booleans()) else b  # a vector
    if draw(st.integers(0, 4)) == 0:  # anything
        a, b = draw(st.lists(dims, min_size=1, max_size=4)), draw(st.lists(dims, min_size=1, max_size=4))
    if len(a) == 1 and not draw(st.booleans()):
        a = [k]
    return [tuple(a), tuple(b)]


@SOME
@given(matmul_shapes())
def test_matmul_matches_torch(shapes) -> None:
    agree("MatMul", shapes, torch.matmul)


@st.composite
def attention_shapes(draw):
    lead = draw(st.lists(dims, max_size=2))
    L, S, E, Ev = draw(dims), draw(dims), draw(dims), draw(dims)
    q, k, v = [*lead, L, E], [*lead, S, E], [*lead, S, Ev]
    if lead and draw(st.booleans()):  # broadcasting: 1 in a batch dimension of one of them
        which = draw(st.sampled_from([q, k, v]))
        which[draw(st.integers(0, len(lead) - 1))] = 1
    if draw(st.integers(0, 4)) == 0:  # anything
        q, k, v = (draw(st.lists(dims, min_size=1, max_size=4)) for _ in range(3))
    return [tuple(q), tuple(k), tuple(v)]


@SOME
@given(attention_shapes(), st.booleans(), st.sampled_from([None, 0.5]))
@example([(1, 1), (1, 1), (2, 1, 1)], False, None)  # q·kᵀ over q's and k's batch (1), the weights times v over v's (2)
@example([(2, 1, 3), (1, 4, 3), (1, 4, 5)], True, None)
@example([(2, 2, 3, 2), (2, 2, 2, 2), (2, 2, 3, 2)], False, None)  # keys 2, values 3: torch's CPU flash kernel computes it
def test_scaled_dot_product_attention_matches_torch(shapes, causal, scale) -> None:
    q, k, v = shapes
    if min(map(len, shapes)) >= 2 and k[-2] != v[-2]:
        # attention weights (…, L, S) times values (…, S', Ev) need S = S'; torch's math path raises, but its CPU flash
        # kernel (4-D inputs) does not check and computes something: convcalc refuses, naming the rule
        mine = engine("ScaledDotProductAttention", shapes, is_causal=causal, scale=scale)
        assert isinstance(mine, Exception), mine
        if len(q) == len(k) == len(v) and q[-1] == k[-1] and broadcast_ok(shapes):
            assert "must have the same positions" in str(mine), mine
        return
    agree("ScaledDotProductAttention", shapes, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale),
          is_causal=causal, scale=scale)



@st.composite
def grouped_attention_shapes(draw):
    """enable_gqa: the query's, key's and value's heads (dimension -3) each drawn, often dividing; any rank."""
    lead = draw(st.lists(dims, max_size=1))
    L, S, E, Ev = draw(dims), draw(dims), draw(dims), draw(dims)
    heads = draw(st.sampled_from([1, 2, 4, 6]))
    kv = [draw(st.sampled_from([h for h in (1, 2, 3, 4, 6) if heads % h == 0] if draw(st.integers(0, 3)) else [1, 2, 3, 4]))
          for _ in range(2)]
    q, k, v = [*lead, heads, L, E], [*lead, kv[0], S, E], [*lead, kv[1], S, Ev]
    if draw(st.integers(0, 3)) == 0:  # a rank below 3, or any
        which = draw(st.sampled_from([q, k, v]))
        del which[: len(which) - draw(st.integers(2, len(which)))]
    return [tuple(q), tuple(k), tuple(v)]


@SOME
@given(grouped_attention_shapes())
@example([(4, 4, 4, 4), (4, 2, 2, 4), (4, 4, 2, 4)])  # the key's heads repeated, the value's as they are
@example([(2, 1, 3), (2, 1, 3, 3), (3, 1)])  # a 2-D value has no heads: torch raises
@example([(2, 3), (3, 3), (3, 1)])
def test_grouped_query_attention_matches_torch(shapes) -> None:
    """torch repeats the key's heads and the value's each to the query's (both must divide it, or all three be
    equal), reading them at dimension -3 of each: the engine broadcast key and value first, and took a 2-D
    input, both of which torch does not."""
    agree("ScaledDotProductAttention", shapes, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          enable_gqa=True)

def broadcast_ok(shapes) -> bool:
    try:
        torch.broadcast_shapes(*(tuple(s[:-2]) for s in shapes))
    except RuntimeError:
        return False
    return True


def test_grouped_query_attention_and_a_vit_head() -> None:
    agree("ScaledDotProductAttention", [(2, 4, 4, 8), (2, 2, 5, 8), (2, 2, 5, 8)],
          lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), enable_gqa=True)
    assert agree("ScaledDotProductAttention", [(2, 4, 4, 8), (2, 3, 5, 8), (2, 3, 5, 8)],
                 lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), enable_gqa=True) == "error"
    vit = convcalc.layer("ScaledDotProductAttention")  # ViT-B/16: 12 heads of 64 over 197 tokens
    assert vit.merge_macs([(1, 12, 197, 64)] * 3) == 12 * 197 * 197 * 128
