"""Torch as the oracle for Bias (``x + weight``, a learned position embedding) and ClassToken
(``torch.cat([token.expand(n, -1, -1), x], dim=1)``), the two families a Vision Transformer needs
besides attention, which torch.nn has no class for.

As in ``test_engine_permute_scale.py``: convcalc refuses (ShapeError/SpecError) exactly when torch
raises, and otherwise gives torch's output shape, parameter count and MACs (FlopCounterMode's
flops // 2); a refusal is one line starting with the type name, and the value it suggests works.
Each layer is bound to its input first, as the model walk binds it (ClassToken infers ``features``),
and rebuilt through ``torch_kwargs()`` as the module ``verify`` builds, which must compute what
torch's own call computes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_engine_permute_scale import (
    SOME,
    scale_cases,
    shapes,
    suggested,
    torch_answer,
    verify_module,
)

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")


def engine_answer(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """(output shape, params, MACs, the bound layer) as the model walk computes them, or the refusal."""
    try:
        layer = convcalc.layer(type_name, **kwargs).bind(shape)
        out = layer.output_shape(shape)
        params, macs = layer.num_params, layer.macs(shape)
    except (ShapeError, SpecError) as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(type_name), f"message not one line: {message!r}"
        return exc
    layer.window(shape)
    layer.touched_axes(shape)
    layer.describe()
    (line,) = layer.explain(shape)  # one line, whose numbers are the answer's
    assert str(list(out)) in line or f"= {out[1]};" in line, line
    assert f"{params} parameters" in line, line
    return out, params, macs, layer


def agree(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...], call: Any, params: int) -> str:
    """convcalc and ``call`` (torch) agree on ``shape``; the module verify builds computes ``call`` with the same weight."""
    where = f"{type_name}(**{kwargs!r}) on input {shape}"
    mine = engine_answer(type_name, kwargs, shape)
    theirs = torch_answer(call, shape, params)
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises but convcalc answers {mine[:3]}: {where}\n  torch: {theirs}"
        return "error"
    assert not isinstance(mine, Exception), f"convcalc raises but torch gives {theirs[0]}: {where}\n  convcalc: {mine}"
    assert mine[:3] == theirs, f"convcalc {mine[:3]} ≠ torch {theirs}: {where}"
    module = verify_module(type_name, mine[3])
    assert sum(p.numel() for p in module.parameters()) == theirs[1], where
    return "ok"


# -- Bias ------------------------------------------------------------------------------------------


@SOME
@given(scale_cases(), st.sampled_from(["x + w", "w + x", "torch.add(x, w)", "x.add(w)"]))
def test_bias_matches_torch(case, form):
    shape, weight = case
    w = torch.nn.Parameter(torch.randn(weight))
    call = {
        "x + w": lambda x: x + w,
        "w + x": lambda x: w + x,
        "torch.add(x, w)": lambda x: torch.add(x, w),
        "x.add(w)": lambda x: x.add(w),
    }[form]
    verdict = agree("Bias", {"shape": weight}, shape, call, params=w.numel())
    if verdict == "error":
        message = str(engine_answer("Bias", {"shape": weight}, shape))
        fix = suggested(message, "shape")
        assert engine_answer("Bias", {"shape": fix}, shape)[0] == tuple(torch.broadcast_shapes(tuple(fix), shape)), message
        return
    module = verify_module("Bias", convcalc.layer("Bias", shape=weight))
    module.load_state_dict({"weight": w.detach()})
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(module(x), call(x))  # the very same sum, bit for bit


def test_a_position_embedding_is_a_bias_of_numel_parameters_and_no_macs():
    """torchvision's ViT-B/16: x + self.pos_embedding of 1×197×768. FlopCounterMode counts 0 for the add."""
    from torch.utils.flop_counter import FlopCounterMode

    p = torch.nn.Parameter(torch.zeros(1, 197, 768))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = torch.zeros(2, 197, 768) + p
    assert counter.get_total_flops() == 0
    layer = convcalc.layer("Bias", shape=[1, 197, 768])
    assert layer.output_shape((2, 197, 768)) == tuple(out.shape)
    assert layer.num_params == p.numel() == 151_296 and layer.macs((2, 197, 768)) == 0
    assert layer.describe() == "bias 1×197×768"


def test_bias_refusal_names_the_dimension_and_a_shape_that_works():
    """ViT at another image size: 196 patches + the class token is 197, not the 50 the embedding was made for."""
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("Bias", shape=[1, 50, 768]).output_shape((1, 197, 768))
    message = caught.value.message
    assert "the bias [1, 50, 768]" in message and "dimension -2 (50 vs 197)" in message, message
    assert "use shape: [1, 197, 768]" in message, message


@pytest.mark.parametrize("shape", ["768", [0, 1], [1, 197.0], True])
def test_bias_shape_must_be_sizes(shape):
    with pytest.raises(SpecError) as caught:
        convcalc.layer("Bias", shape=shape)
    assert caught.value.message.startswith("Bias: shape must be"), caught.value.message
    if not isinstance(shape, list):
        assert "the bias's sizes, such as [1, 197, 768]" in caught.value.message, caught.value.message


def test_bias_and_scale_share_one_rule():
    """One broadcasting rule for both (layers/dims.broadcast via scale.Broadcast): the same shapes, the same refusals."""
    from convcalc.layers.scale import Bias, Broadcast, Scale

    assert issubclass(Bias, Broadcast) and issubclass(Scale, Broadcast)
    assert "_output" not in vars(Bias) and "_output" not in vars(Scale)


def test_a_bias_that_varies_along_the_spatial_axes_keeps_the_receptive_field():
    """x + b with b of C×H×W: each output value reads its own input value only (torch's gradient says so)."""
    text = (
        "name: b\ninput: [4, 9, 9]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - Bias: {shape: [4, 7, 7]}\n"
        "  - Permute: {dims: [0, 2, 3, 1]}\n  - Bias: {shape: [7, 7, 1]}\n  - Permute: {dims: [0, 3, 1, 2]}\n"
    )
    from convcalc.graph import model_from_text

    rows = model_from_text(text).summary().rows
    assert [r.receptive_field for r in rows[1:]] == [rows[0].receptive_field] * 4
    b = torch.randn(4, 7, 7)
    x = torch.randn(1, 4, 7, 7, requires_grad=True)
    (grad,) = torch.autograd.grad((x + b)[0, :, 3, 2].sum(), x)
    assert grad.abs().sum(dim=(0, 1)).nonzero().tolist() == [[3, 2]]


# -- ClassToken ------------------------------------------------------------------------------------


@st.composite
def token_cases(draw):
    shape = draw(shapes(1, 5))
    tokens = draw(st.integers(1, 3))
    choice = draw(st.sampled_from(["inferred", "right", "any"]))
    if choice == "inferred":
        features = None
    elif choice == "right":
        features = list(shape[2:])
    else:
        features = draw(st.lists(st.integers(1, 4), max_size=4))
    return shape, tokens, features


def class_token_call(token: Any) -> Any:
    """torchvision's and timm's: ``torch.cat([token.expand(n, -1, -1), x], dim=1)`` (one -1 per dimension after the batch)."""
    return lambda x: torch.cat([token.expand(x.shape[0], *(-1,) * (token.dim() - 1)), x], dim=1)


@SOME
@given(token_cases())
def test_class_token_matches_torch(case):
    shape, tokens, features = case
    kwargs: dict[str, Any] = {"tokens": tokens} if features is None else {"tokens": tokens, "features": features}
    token = torch.nn.Parameter(torch.randn(1, tokens, *(shape[2:] if features is None else features)))
    call = class_token_call(token)
    verdict = agree("ClassToken", kwargs, shape, call, params=token.numel())
    if verdict == "error":
        message = str(engine_answer("ClassToken", kwargs, shape))
        found = re.search(r"use features: (\[[0-9, ]*\]|\d+)", message)
        if len(shape) < 2:  # no dimension 1 to put the tokens in: no value of features helps
            assert found is None and "at least 2 dimensions" in message, message
            return
        assert found, message
        fix = json.loads(found.group(1))
        assert not isinstance(engine_answer("ClassToken", {"tokens": tokens, "features": fix}, shape), Exception), message
        return
    bound = engine_answer("ClassToken", kwargs, shape)[3]
    module = verify_module("ClassToken", bound)
    module.load_state_dict({"weight": token.detach()})
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(module(x), call(x))


def test_a_vit_class_token_has_768_parameters_and_no_macs():
    from torch.utils.flop_counter import FlopCounterMode

    token = torch.nn.Parameter(torch.zeros(1, 1, 768))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = class_token_call(token)(torch.zeros(2, 196, 768))
    assert counter.get_total_flops() == 0
    layer = convcalc.layer("ClassToken").bind((2, 196, 768))
    assert layer.output_shape((2, 196, 768)) == tuple(out.shape) == (2, 197, 768)
    assert layer.num_params == 768 and layer.macs((2, 196, 768)) == 0
    assert layer.features == (768,) and layer.describe() == "1 token of 768"
    assert convcalc.layer("ClassToken", tokens=2, features=768).bind((2, 196, 768)).num_params == 2 * 768  # DeiT's two


def test_class_token_parameters_are_unknown_until_bound():
    layer = convcalc.layer("ClassToken")
    with pytest.raises(ShapeError) as caught:
        _ = layer.num_params
    assert "features is not known yet" in caught.value.message
    assert layer.describe() == "1 token of ?"


def test_class_token_written_features_that_disagree_name_the_value_that_works():
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("ClassToken", features=512).output_shape((1, 196, 768))
    message = caught.value.message
    assert "expects features = [768]" in message and "the spec says [512]" in message and message.endswith("use features: 768"), message


@pytest.mark.parametrize("kwargs", [{"tokens": 0}, {"tokens": 1.5}, {"tokens": True}, {"features": "768"}, {"features": [0]}, {"features": True}])
def test_class_token_arguments_must_be_whole_numbers(kwargs):
    with pytest.raises(SpecError) as caught:
        convcalc.layer("ClassToken", **kwargs)
    assert caught.value.message.startswith(f"ClassToken: {next(iter(kwargs))}"), caught.value.message


def test_more_tokens_than_convcalc_counts_are_refused_naming_the_most_that_work():
    from convcalc.sizes import MAX_SIZE

    with pytest.raises(ShapeError) as caught:
        convcalc.layer("ClassToken", tokens=MAX_SIZE).output_shape((1, 4, 8))
    fix = int(re.search(r"use at most (\d+) tokens", caught.value.message).group(1))
    assert convcalc.layer("ClassToken", tokens=fix).output_shape((1, 4, 8)) == (1, MAX_SIZE, 8)


VIT_SPEC = (
    "name: tiny vit\ninput: [3, 32, 32]\nlayers:\n"
    "  - Conv2d: {{out: 16, k: 8, s: 8}}\n  - Flatten: {{start_dim: 2}}\n  - Permute: {{dims: [0, 2, 1]}}\n"
    "  - ClassToken{features}\n  - Bias: {{shape: [1, 17, 16]}}\n  - LayerNorm: {{normalized_shape: 16}}\n"
    "  - Narrow: {{dim: 1, start: 0, length: 1}}\n  - Flatten\n  - Linear: {{out: 10}}\n"
)


def test_a_vit_stem_as_a_spec_verifies(cli, tmp_path):
    """Patch conv, flatten, permute to N×L×C, class token, position embedding, LayerNorm, the class token's head:
    every row confirmed by torch."""
    spec = tmp_path / "vit.yaml"
    spec.write_text(VIT_SPEC.format(features=""))
    code, out, err = cli("verify", spec, "--json")
    assert code == 0, err
    report = json.loads(out)
    rows = report["layers"]
    assert [r["type"] for r in rows][3:5] == ["ClassToken", "Bias"]
    assert rows[3]["output_shape"] == [1, 17, 16] and rows[3]["params"] == 16 and rows[3]["macs"] == 0
    assert rows[4]["params"] == 17 * 16 and rows[4]["macs"] == 0
    assert all(r["confirmed"] for r in rows) and report["ok"]


def test_a_spec_with_the_wrong_features_is_refused_with_the_value_that_works(cli, tmp_path):
    spec = tmp_path / "vit.yaml"
    spec.write_text(VIT_SPEC.format(features=": {features: 32}"))
    code, _, err = cli("model", spec)
    assert code == 1 and err.count("\n") == 1, err
    assert "ClassToken" in err and "expects features = [16]" in err and "use features: 16" in err, err
    spec.write_text(VIT_SPEC.format(features=": {features: 16, tokens: 2}"))
    code, _, err = cli("model", spec)  # two tokens: 18 rows, and the embedding of 17 no longer fits
    assert code == 1 and "Bias" in err and "use shape: [1, 18, 16]" in err, err


def test_a_sequence_at_the_size_limit_has_no_room_for_a_token() -> None:
    """The refusal suggested 'use at most 0 tokens', a value tokens refuses (at least 1)."""
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("ClassToken", tokens=2).output_shape((2, 10**15, 3))
    message = caught.value.message
    assert "at most 0 tokens" not in message and "a sequence of at most 999999999999998 positions" in message, message
