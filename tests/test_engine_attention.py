"""MultiheadAttention (self-attention around ``nn.MultiheadAttention``) against the real module: output
shape, parameters (``sum(p.numel())``), MACs (FlopCounterMode / 2 as verify counts, fused fast path and
ordinary path), and the arguments and inputs torch refuses; and verify's module, which must compute what
torch's does as ``attn(x, x, x)[0]`` with the same state dict."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import convcalc
from convcalc.errors import ShapeError, SpecError

TYPE = "MultiheadAttention"


def torch_answer(module: Any, shape: tuple[int, ...], *, need_weights: bool = False, training: bool = False) -> Any:
    """(output shape, params, MACs as verify counts them) of ``module(x, x, x)`` on ``shape``, or what it raises.
    Eval under no_grad takes torch's fused fast path where it can (verify runs so); ``need_weights`` or
    ``training`` the ordinary one."""
    from convcalc.verify.runtime import _flop_counter

    module.train(training)
    x = torch.randn(shape)
    try:
        with warnings.catch_warnings(), torch.no_grad(), _flop_counter(torch) as counter:
            warnings.simplefilter("ignore")
            out = module(x, x, x, need_weights=need_weights)[0]
    except Exception as error:  # noqa: BLE001  the oracle's refusal
        return error
    return tuple(out.shape), sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


def engine_answer(kwargs: dict[str, Any], shape: tuple[int, ...]) -> Any:
    try:
        layer = convcalc.layer(TYPE, **kwargs).bind(shape)
        return layer.output_shape(shape), layer.num_params, layer.macs(shape)
    except (ShapeError, SpecError) as error:
        message = str(error)
        assert "\n" not in message and message.startswith(TYPE), message
        return error


@st.composite
def cases(draw):
    heads = draw(st.integers(1, 4))
    embed = heads * draw(st.integers(1, 4))
    if draw(st.integers(0, 5)) == 0:  # perhaps not divisible by the heads
        embed = draw(st.integers(1, 12))
    kwargs: dict[str, Any] = {
        "num_heads": heads,
        "bias": draw(st.booleans()),
        "add_bias_kv": draw(st.booleans()),
        "add_zero_attn": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "dropout": draw(st.sampled_from([0.0, 0.0, 0.25])),
    }
    for name in ("kdim", "vdim"):  # mostly absent; embed_dim (self-attention) or another size
        kwargs[name] = draw(st.sampled_from([None, None, None, embed, draw(st.integers(1, 12))]))
    written = draw(st.booleans())
    if written:
        kwargs["embed_dim"] = embed
    rank = draw(st.sampled_from([2, 3, 3, 3, 1, 4]))
    features = embed if written and draw(st.integers(0, 5)) else (embed if not written else draw(st.integers(1, 12)))
    shape = (*(draw(st.integers(1, 4)) for _ in range(rank - 1)), features)
    path = draw(st.sampled_from(["fused", "weights", "training"]))
    return kwargs, shape, path


@settings(max_examples=300, deadline=None)
@given(cases())
def test_multihead_attention_matches_torch(case) -> None:
    kwargs, shape, path = case
    mine = engine_answer(kwargs, shape)
    embed = kwargs.get("embed_dim", shape[-1])  # not written: read from the input, as bind does
    torch_kwargs = {k: v for k, v in kwargs.items() if k != "embed_dim"}
    where = f"{kwargs} on {shape}, {path}"
    try:
        module = nn.MultiheadAttention(embed, **torch_kwargs)
    except (AssertionError, ValueError):  # torch refuses embed_dim not divisible by num_heads
        assert isinstance(mine, Exception), f"torch refuses, convcalc answers {mine}: {where}"
        if len(shape) in (2, 3) and shape[-1] == embed:  # nothing else wrong: the rule is named
            assert "divisible by num_heads" in str(mine), mine
        return
    theirs = torch_answer(module, shape, need_weights=path == "weights", training=path == "training")
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises {theirs!r}, convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc refuses ({mine}) what torch computes: {where}"
    assert mine == theirs, f"convcalc {mine} != torch {theirs}: {where}"


@pytest.mark.parametrize("path", ["fused", "weights", "training"])
@pytest.mark.parametrize("extras", [{}, {"add_bias_kv": True}, {"add_zero_attn": True}, {"add_bias_kv": True, "add_zero_attn": True}, {"bias": False}])
def test_every_path_and_longer_keys(path: str, extras: dict[str, Any]) -> None:
    """The fused kernel (eval, no_grad, batch first, even heads, no bias_kv / zero_attn) and the ordinary path
    count alike; a learned bias_k and a zero key make the keys L + 1 or L + 2. Each case checked by name, so a
    hypothesis run that happens to miss one cannot hide it."""
    shape = (2, 7, 24)
    layer = convcalc.layer(TYPE, num_heads=4, **extras).bind(shape)
    module = nn.MultiheadAttention(24, 4, batch_first=True, **extras)
    assert (layer.output_shape(shape), layer.num_params, layer.macs(shape)) == torch_answer(
        module, shape, need_weights=path == "weights", training=path == "training")
    keys = 7 + extras.get("add_bias_kv", False) + extras.get("add_zero_attn", False)
    assert layer.macs(shape) == 2 * 7 * 4 * 24 * 24 + 2 * 2 * 7 * keys * 24


def test_the_fused_kernel_is_what_the_fused_case_runs() -> None:
    """The 'fused' case really takes torch's fast path (aten._native_multi_head_attention), counted by verify's
    own formula: without it FlopCounterMode would see none of the work."""
    from torch.utils.flop_counter import FlopCounterMode

    module = nn.MultiheadAttention(24, 4, batch_first=True).eval()
    x = torch.randn(2, 7, 24)
    with torch.no_grad(), FlopCounterMode(display=False) as plain:
        module(x, x, x, need_weights=False)
    counted = torch_answer(module, (2, 7, 24))
    assert plain.get_total_flops() == 0 and counted[2] == convcalc.layer(TYPE, num_heads=4).macs((2, 7, 24)) > 0


def test_params_are_torchs_keywords_with_batch_first_true() -> None:
    """PARAMS: torch's keyword names in torch's order and torch's defaults, but for embed_dim (read from the
    input) and batch_first, true in a spec (a spec's tensors are batch first); verify passes it explicitly."""
    from convcalc.layers.base import REQUIRED, lookup

    theirs = {n: p.default for n, p in inspect.signature(nn.MultiheadAttention.__init__).parameters.items()
              if n not in ("self", "device", "dtype")}
    family = lookup(TYPE)[1]
    assert list(family.PARAMS) == list(theirs)
    for name, default in family.PARAMS.items():
        if name == "embed_dim":
            assert default is None and theirs[name] is inspect.Parameter.empty
        elif name == "batch_first":
            assert default is True and theirs[name] is False
        elif default is REQUIRED:
            assert theirs[name] is inspect.Parameter.empty
        else:
            assert default == theirs[name], name
    layer = convcalc.layer(TYPE, num_heads=2).bind((1, 3, 8))
    assert layer.torch_kwargs()["batch_first"] is True
    assert convcalc.layer(TYPE, heads=2).num_heads == 2  # the friendlier alias


@settings(max_examples=40, deadline=None)
@given(cases())
def test_verify_s_module_computes_what_torch_s_does(case) -> None:
    kwargs, shape, _ = case
    if isinstance(engine_answer(kwargs, shape), Exception):
        return
    from convcalc.verify.specs import torch_twin

    layer = convcalc.layer(TYPE, **kwargs).bind(shape)
    theirs = nn.MultiheadAttention(**layer.torch_kwargs())
    for p in theirs.parameters():
        nn.init.normal_(p)  # every weight matters, bias_k and bias_v included
    mine = torch_twin(torch, layer)
    assert isinstance(mine, nn.MultiheadAttention)
    mine.load_state_dict(theirs.state_dict())  # the same names: a model's weights load as they are
    mine.eval(), theirs.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.allclose(mine(x), theirs(x, x, x)[0], rtol=1e-4, atol=1e-5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from convcalc.verify.runtime import _flop_counter

            with _flop_counter(torch) as counter:
                mine(x)
    assert counter.get_total_flops() // 2 == layer.macs(shape)


def _fix(message: str, key: str) -> int:
    return int(message.rsplit(f"use {key}: ", 1)[1].split()[0])


def test_refusals_name_a_value_that_works() -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.layer(TYPE, embed_dim=10, num_heads=4)
    message = caught.value.message
    assert "not divisible by num_heads 4" in message and "\n" not in message
    nn.MultiheadAttention(10, _fix(message, "num_heads"))  # the suggestion works in torch
    with pytest.raises(ShapeError) as caught:
        convcalc.layer(TYPE, num_heads=4).output_shape((1, 5, 10))  # inferred, then refused
    assert _fix(caught.value.message, "num_heads") in (2, 5)
    with pytest.raises(ShapeError) as caught:
        convcalc.layer(TYPE, embed_dim=16, num_heads=4).output_shape((1, 5, 12))
    assert "use embed_dim: 12" in caught.value.message
    with pytest.raises(AssertionError, match="expecting embedding dimension of 16"):  # torch refuses it too
        x = torch.randn(1, 5, 12)
        nn.MultiheadAttention(16, 4, batch_first=True)(x, x, x)
    for name in ("kdim", "vdim"):
        with pytest.raises(SpecError) as caught:
            convcalc.layer(TYPE, embed_dim=16, num_heads=4, **{name: 8})
        assert f"use {name}: 16" in caught.value.message and "self-attention" in caught.value.message
        with pytest.raises(ShapeError):
            convcalc.layer(TYPE, num_heads=4, **{name: 8}).output_shape((1, 5, 16))
        x = torch.randn(1, 5, 16)
        with pytest.raises(Exception):  # noqa: B017  torch cannot use it as self-attention either
            nn.MultiheadAttention(16, 4, batch_first=True, **{name: 8})(x, x, x)
    assert convcalc.layer(TYPE, embed_dim=16, num_heads=4, kdim=16, vdim=16).kdim is None  # what None means
    with pytest.raises(ShapeError) as caught:
        convcalc.layer(TYPE, num_heads=2).output_shape((1, 2, 5, 8))
    assert "2-D" in caught.value.message and "3-D" in caught.value.message
    with pytest.raises(SpecError):
        convcalc.layer(TYPE, num_heads=0)
    with pytest.raises(SpecError):
        convcalc.layer(TYPE, num_heads=2, dropout=1.5)


def test_receptive_field_axes_and_roles() -> None:
    """Every output mixes every position (and feature); the batch stays apart."""
    first = convcalc.layer(TYPE, num_heads=2)
    assert first.touched_axes((2, 5, 8)) == (1, 2)
    assert convcalc.layer(TYPE, num_heads=2, batch_first=False).touched_axes((5, 2, 8)) == (0, 2)
    assert first.touched_axes((5, 8)) == (0, 1)
    roles = ("N", "S", "C")
    assert first.axis_roles((2, 5, 8), (2, 5, 8), roles) == roles


def test_vit_b_16_s_attention_numbers() -> None:
    """ViT-B/16 at 224: 197 tokens of 768 features, 12 heads."""
    shape = (1, 197, 768)
    layer = convcalc.layer(TYPE, num_heads=12).bind(shape)
    assert layer.num_params == 4 * 768 * 768 + 4 * 768 == 2_362_368
    assert layer.macs(shape) == 197 * 4 * 768 * 768 + 2 * 197 * 197 * 768
    assert (layer.output_shape(shape), layer.num_params, layer.macs(shape)) == torch_answer(
        nn.MultiheadAttention(768, 12, batch_first=True), shape)


def test_an_argument_given_under_its_name_and_an_alias_names_both() -> None:
    """'num_heads is given twice (as 'heads' and another alias)': the other was num_heads itself, no alias."""
    with pytest.raises(SpecError) as caught:
        convcalc.layer("MultiheadAttention", num_heads=2, heads=5)
    assert caught.value.message == "MultiheadAttention: num_heads is given twice (as 'num_heads' and as 'heads'); keep one"
