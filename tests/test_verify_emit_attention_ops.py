"""emit-spec of attention written by hand: timm's ``Attention`` (qkv Linear, reshape, permute, ``unbind``,
``F.scaled_dot_product_attention``, transpose, reshape, proj — copied as timm 1.0 writes it) becomes
Linear, Unflatten, Permute, Narrow/Flatten per piece, ScaledDotProductAttention, Permute, Flatten,
Linear rows and round-trips; ``a @ b``/``torch.bmm`` are MatMul rows; a mask is refused by name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from test_verify_emit_channels_last import kinds, round_trip

MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Attention(nn.Module):  # timm.layers.attention.Attention (fused path)
        def __init__(self, dim, num_heads=8, qkv_bias=False, qk_norm=False, proj_bias=True, attn_drop=0., proj_drop=0.,
                     norm_layer=nn.LayerNorm):
            super().__init__()
            self.num_heads = num_heads
            self.head_dim = dim // num_heads
            self.scale = self.head_dim ** -0.5
            self.fused_attn = True
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
            self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
            self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
            self.attn_drop = nn.Dropout(attn_drop)
            self.norm = nn.Identity()
            self.proj = nn.Linear(dim, dim, bias=proj_bias)
            self.proj_drop = nn.Dropout(proj_drop)

        def forward(self, x, attn_mask=None):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            q, k = self.q_norm(q), self.k_norm(k)
            if self.fused_attn:
                x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop.p if self.training else 0.)
            else:
                q = q * self.scale
                attn = q @ k.transpose(-2, -1)
                attn = attn.softmax(dim=-1)
                attn = self.attn_drop(attn)
                x = attn @ v
            x = x.transpose(1, 2).reshape(B, N, C)
            x = self.norm(x)
            x = self.proj(x)
            x = self.proj_drop(x)
            return x


    class TinyViT(nn.Module):
        """Patches → tokens, two pre-norm blocks with timm's Attention (one with q/k norms), a mean-pooled head."""

        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 16, 4, stride=4)
            self.norm1 = nn.LayerNorm(16)
            self.attn1 = Attention(16, num_heads=4, qkv_bias=True)
            self.norm2 = nn.LayerNorm(16)
            self.attn2 = Attention(16, num_heads=2, qk_norm=True)
            self.head = nn.Linear(16, 5)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = x + self.attn1(self.norm1(x))
            x = x + self.attn2(self.norm2(x))
            return self.head(x.mean(dim=1))


    class Products(nn.Module):
        """Gram matrices: x @ xᵀ with the operator, torch.bmm and torch.matmul."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            f = self.conv(x).flatten(2)  # N, C, HW
            g = f @ f.transpose(1, 2)  # N, C, C
            h = torch.bmm(g, f)  # N, C, HW
            return torch.matmul(h.transpose(1, 2), g)  # N, HW, C


    class Unfused(nn.Module):
        """timm's Attention on its other path (fused_attn False): q * scale, q @ kᵀ, softmax, @ v; and arithmetic
        with numbers each way: 16 * sigmoid (Swin V2), x / 8, 1 - x, x + 3, x - 0.5, and a tensor divided by a tensor."""

        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 8, 4, stride=4)
            self.attn = Attention(8, num_heads=2)
            self.attn.fused_attn = False
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            t = t + self.attn(t)
            t = 16 * torch.sigmoid(t) / 8
            t = (1 - t) + 3 - 0.5
            t = t / (torch.sigmoid(t) + 1)
            return self.head(t.mean(dim=1))


    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24)
            self.register_buffer("mask", torch.ones(5, 5, dtype=torch.bool).tril())

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "attention_models.py"
    path.write_text(MODELS)
    return path


def test_timm_attention_round_trips_as_rows_of_primitives(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "TinyViT", "3x8x8")
    found = kinds(spec["layers"])
    assert found.count("ScaledDotProductAttention") == 2 and found.count("Mean") == 1, found
    sdpa = [e for e in spec["layers"] if isinstance(e, dict) and "ScaledDotProductAttention" in e]
    assert all(isinstance(e["ScaledDotProductAttention"], list) and len(e["ScaledDotProductAttention"]) == 3 for e in sdpa), sdpa
    assert found.count("LayerNorm") == 4  # the two pre-norms and attn2's q and k norms
    assert tuple(summary.output_shape) == (1, 5)
    # 4 tokens of 16 features, 4 then 2 heads: q·kᵀ and weights·v, 4·4·(4+4) per head, and the Linears
    attention = sum(r.macs for r in summary.rows if r.type == "ScaledDotProductAttention")
    assert attention == 4 * 4 * 4 * 8 + 2 * 4 * 4 * 16


def test_matrix_products_are_matmul_rows(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "Products", "3x3x3")
    assert kinds(spec["layers"]).count("MatMul") == 3
    assert tuple(summary.output_shape) == (1, 9, 4)
    assert [r.macs for r in summary.rows if r.type == "MatMul"] == [4 * 9 * 4, 4 * 4 * 9, 9 * 4 * 4]


def test_attention_with_a_mask_is_refused_by_name(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "masked.yaml"
    code, _, err = cli("verify", f"{models}:Masked", "--input", "5x8", "--emit-spec", str(out))
    assert code == 1 and not out.exists(), err
    assert "attn_mask" in err and "nothing written" in err, err


def test_arithmetic_with_numbers_is_rescale_rows(models: Path, tmp_path: Path, cli) -> None:
    """q * scale (hand-written attention was refused as 'multiplies the constant'), 16 * x, x / 8, 1 - x, x + 3,
    x - 0.5 are Rescale rows; a tensor divided by a tensor is a Divide; the spec computes the model's output."""
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "Unfused", "3x8x8")
    rescales = [e["Rescale"] for e in spec["layers"] if isinstance(e, dict) and "Rescale" in e]
    head_dim = 4
    assert rescales == [{"scale": head_dim**-0.5}, {"scale": 16.0}, {"scale": 0.125}, {"scale": -1.0, "shift": 1.0},
                        {"shift": 3.0}, {"shift": -0.5}, {"shift": 1.0}], rescales
    assert kinds(spec["layers"]).count("MatMul") == 2 and kinds(spec["layers"]).count("Divide") == 1
    assert tuple(summary.output_shape) == (1, 3)
