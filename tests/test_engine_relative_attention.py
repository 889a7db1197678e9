"""RelativePositionalMultiHeadAttention (MaxViT's window attention) against torchvision's own class,
copied below as torchvision 0.28 writes it (torchvision is not needed): output shape, parameters
(``sum(p.numel())``), MACs (FlopCounterMode / 2, as verify counts) and the inputs it refuses; and
verify's own module, which must compute what torchvision's does with the same state dict."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.nn import functional as F

import convcalc
from convcalc.errors import ShapeError, SpecError

TYPE = "RelativePositionalMultiHeadAttention"


# -- torchvision.models.maxvit, as written there ---------------------------------------------------
def _get_relative_position_index(height: int, width: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid([torch.arange(height), torch.arange(width)], indexing="ij"))
    coords_flat = torch.flatten(coords, 1)
    relative_coords = coords_flat[:, :, None] - coords_flat[:, None, :]
    relative_coords = relative_coords.permute(1, 2, 0).contiguous()
    relative_coords[:, :, 0] += height - 1
    relative_coords[:, :, 1] += width - 1
    relative_coords[:, :, 0] *= 2 * width - 1
    return relative_coords.sum(-1)


class RelativePositionalMultiHeadAttention(nn.Module):
    def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int) -> None:
        super().__init__()
        if feat_dim % head_dim != 0:
            raise ValueError(f"feat_dim: {feat_dim} must be divisible by head_dim: {head_dim}")
        self.n_heads = feat_dim // head_dim
        self.head_dim = head_dim
        self.size = int(math.sqrt(max_seq_len))
        self.max_seq_len = max_seq_len
        self.to_qkv = nn.Linear(feat_dim, self.n_heads * self.head_dim * 3)
        self.scale_factor = feat_dim**-0.5
        self.merge = nn.Linear(self.head_dim * self.n_heads, feat_dim)
        self.relative_position_bias_table = nn.parameter.Parameter(
            torch.empty(((2 * self.size - 1) * (2 * self.size - 1), self.n_heads), dtype=torch.float32),
        )
        self.register_buffer("relative_position_index", _get_relative_position_index(self.size, self.size))
        torch.nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def get_relative_positional_bias(self) -> torch.Tensor:
        bias_index = self.relative_position_index.view(-1)
        relative_bias = self.relative_position_bias_table[bias_index].view(self.max_seq_len, self.max_seq_len, -1)
        relative_bias = relative_bias.permute(2, 0, 1).contiguous()
        return relative_bias.unsqueeze(0)

    def forward(self, x: Tensor) -> Tensor:
        B, G, P, D = x.shape
        H, DH = self.n_heads, self.head_dim
        qkv = self.to_qkv(x)
        q, k, v = torch.chunk(qkv, 3, dim=-1)
        q = q.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        v = v.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        dot_prod = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        pos_bias = self.get_relative_positional_bias()
        dot_prod = F.softmax(dot_prod + pos_bias, dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", dot_prod, v)
        out = out.permute(0, 1, 3, 2, 4).reshape(B, G, P, D)
        out = self.merge(out)
        return out


# -- helpers ---------------------------------------------------------------------------------------
def torch_answer(module: Any, shape: tuple[int, ...]) -> Any:
    """(output shape, params, MACs as verify counts them) of ``module`` on ``shape``, or what it raises."""
    from convcalc.verify.runtime import _flop_counter

    try:
        with warnings.catch_warnings(), torch.no_grad(), _flop_counter(torch) as counter:
            warnings.simplefilter("ignore")
            out = module(torch.randn(shape))
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
    side = draw(st.integers(1, 4))
    head_dim = draw(st.integers(1, 6))
    heads = draw(st.integers(1, 3))
    feat = head_dim * heads
    positions = side * side
    if draw(st.integers(0, 4)) == 0:  # an input the module cannot take: other window sizes or features
        positions = draw(st.integers(1, 17))
        feat = draw(st.integers(1, 18))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), positions, feat)
    return {"head_dim": head_dim, "max_seq_len": side * side}, shape


@settings(max_examples=60, deadline=None)
@given(cases())
def test_relative_attention_matches_torchvision(case) -> None:
    kwargs, shape = case
    feat = shape[-1]
    mine = engine_answer(kwargs, shape)
    try:
        module = RelativePositionalMultiHeadAttention(feat, **kwargs)
    except ValueError:  # torchvision refuses feat_dim not divisible by head_dim
        assert isinstance(mine, ShapeError) and "divisible" in str(mine), mine
        return
    theirs = torch_answer(module, shape)
    where = f"{kwargs} on {shape}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torchvision raises {theirs!r}, convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc refuses ({mine}) what torchvision computes: {where}"
    assert mine == theirs, f"convcalc {mine} != torchvision {theirs}: {where}"


@settings(max_examples=25, deadline=None)
@given(cases())
def test_verify_s_module_computes_what_torchvision_s_does(case) -> None:
    kwargs, shape = case
    if engine_answer(kwargs, shape) is None or isinstance(engine_answer(kwargs, shape), Exception):
        return
    from convcalc.verify.specs import torch_twin

    layer = convcalc.layer(TYPE, **kwargs).bind(shape)
    theirs = RelativePositionalMultiHeadAttention(shape[-1], **kwargs)
    for p in theirs.parameters():
        nn.init.normal_(p)  # every weight matters, the bias table included
    mine = torch_twin(torch, layer)
    mine.load_state_dict(theirs.state_dict())  # the same names: a model's weights load as they are
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.allclose(mine(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert torch_answer(mine, shape) == torch_answer(theirs, shape)


def test_max_seq_len_must_be_a_square_and_the_features_divisible_by_head_dim() -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.layer(TYPE, head_dim=8, max_seq_len=50)
    assert "max_seq_len 50 is no square" in caught.value.message and "use max_seq_len: 49 or 64" in caught.value.message
    with pytest.raises(SpecError) as caught:
        convcalc.layer(TYPE, feat_dim=20, head_dim=8, max_seq_len=49)
    assert "not divisible by head_dim 8" in caught.value.message and "use head_dim: " in caught.value.message
    fix = int(caught.value.message.rsplit("use head_dim: ", 1)[1])
    assert 20 % fix == 0 and RelativePositionalMultiHeadAttention(20, fix, 49)(torch.randn(1, 1, 49, 20)).shape == (1, 1, 49, 20)
    with pytest.raises(ShapeError) as caught:
        convcalc.layer(TYPE, head_dim=8, max_seq_len=49).output_shape((1, 4, 16, 32))
    assert "16 positions per window" in caught.value.message and "max_seq_len: 16" in caught.value.message
    with pytest.raises(ShapeError):
        convcalc.layer(TYPE, feat_dim=64, head_dim=8, max_seq_len=49).output_shape((1, 4, 49, 32))
    with pytest.raises(ShapeError) as caught:
        convcalc.layer(TYPE, head_dim=8, max_seq_len=49).output_shape((4, 49, 32))
    assert "4-D" in caught.value.message


def test_maxvit_t_s_first_attention_numbers() -> None:
    """maxvit_t's first block: 64 features, head_dim 32, 7×7 windows of a 56×56 map (64 windows)."""
    shape = (1, 64, 49, 64)
    layer = convcalc.layer(TYPE, head_dim=32, max_seq_len=49).bind(shape)
    assert (layer.output_shape(shape), layer.num_params, layer.macs(shape)) == torch_answer(
        RelativePositionalMultiHeadAttention(64, 32, 49), shape)
    assert layer.num_params == 3 * 64 * 64 + 3 * 64 + 64 * 64 + 64 + 13 * 13 * 2


def test_a_max_seq_len_near_the_limit_suggests_squares_within_it() -> None:
    """max_seq_len 10¹⁵ (no square) suggested 1000000025191729, beyond convcalc's limit of 10¹⁵."""
    with pytest.raises(SpecError) as caught:
        convcalc.layer("RelativePositionalMultiHeadAttention", head_dim=32, max_seq_len=10**15)
    assert "use max_seq_len: 999999961946176" in caught.value.message and "1000000025191729" not in caught.value.message
