"""Token: a learned (1, tokens, *features) tensor repeated along the batch (``token.expand(n, -1, -1)``), where
the expanded parameter is used as a tensor of its own — CaiT's class token, updated by class-attention blocks
(``x_cls = x_cls + attn(torch.cat((x_cls, x), dim=1))``, copied as timm writes it), then put before the patch
tokens. The engine against torch's expand; emit-spec writes a Token row (and the cats then Concats) and the
spec round-trips; an expand only put first by a cat stays a ClassToken."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from test_verify_emit_channels_last import kinds, round_trip

import convcalc
from convcalc import SpecError


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_token_is_its_weight_repeated_along_the_input_s_batch(rest, input_shape) -> None:
    from convcalc.verify.specs import torch_twin

    shape = [1, *rest]
    layer = convcalc.layer("Token", shape=shape)
    x = torch.randn(input_shape)
    twin = torch_twin(torch, layer)
    torch.nn.init.normal_(twin.weight)
    expected = twin.weight.expand(input_shape[0], *(-1,) * len(rest))
    assert layer.output_shape(tuple(input_shape)) == tuple(expected.shape)
    assert layer.num_params == twin.weight.numel() and layer.macs(tuple(input_shape)) == 0
    assert torch.equal(twin(x), expected)


@pytest.mark.parametrize("shape, words", [([2, 1, 8], "must start with 1"), ([8], "(1, tokens, *features)"), ("1,1,8", "(1, tokens, *features)")])
def test_token_shape_must_be_1_tokens_features(shape, words) -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.layer("Token", shape=shape)
    assert words in caught.value.message, caught.value.message


MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class ClassAttn(nn.Module):  # timm.models.cait.ClassAttn (unfused path)
        def __init__(self, dim, num_heads=2, qkv_bias=False):
            super().__init__()
            self.num_heads = num_heads
            head_dim = dim // num_heads
            self.scale = head_dim ** -0.5
            self.q = nn.Linear(dim, dim, bias=qkv_bias)
            self.k = nn.Linear(dim, dim, bias=qkv_bias)
            self.v = nn.Linear(dim, dim, bias=qkv_bias)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            q = self.q(x[:, 0]).unsqueeze(1).reshape(B, 1, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
            k = self.k(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
            q = q * self.scale
            v = self.v(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
            attn = q @ k.transpose(-2, -1)
            attn = attn.softmax(dim=-1)
            x_cls = (attn @ v).transpose(1, 2).reshape(B, 1, C)
            return self.proj(x_cls)


    class ClassBlock(nn.Module):  # timm's LayerScaleBlockClassAttn, reduced
        def __init__(self, dim):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim)
            self.attn = ClassAttn(dim)
            self.gamma_1 = nn.Parameter(0.1 * torch.ones(dim))

        def forward(self, x, x_cls):
            u = torch.cat((x_cls, x), dim=1)
            return x_cls + self.gamma_1 * self.attn(self.norm1(u))


    class CaiTLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 8, 4, stride=4)
            self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
            self.blocks = nn.ModuleList([ClassBlock(8), ClassBlock(8)])
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            cls_tokens = self.cls_token.expand(x.shape[0], -1, -1)
            for block in self.blocks:
                cls_tokens = block(x, cls_tokens)
            x = torch.cat((cls_tokens, x), dim=1)
            return self.head(x[:, 0])
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "token_models.py"
    path.write_text(MODELS)
    return path


def test_cait_class_attention_round_trips_with_a_token_row(models: Path, tmp_path: Path, cli) -> None:
    """The class token is updated before it is put first: a Token row (it was refused: 'uses the parameter
    cls_token expanded … other than before the tokens'), read by Concats and the residual Adds."""
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "CaiTLike", "3x8x8")
    found = kinds(spec["layers"])
    assert found.count("Token") == 1 and "ClassToken" not in found and found.count("Concat") == 3, found
    token = next(e for e in spec["layers"] if isinstance(e, dict) and "Token" in e)
    assert token["Token"] == {"shape": [1, 1, 8]} and token.get("from") == "input", token
    assert tuple(summary.output_shape) == (1, 3)
    assert summary.totals.params == sum(r.params for r in summary.rows)
