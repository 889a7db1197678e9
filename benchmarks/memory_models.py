"""Matmul-heavy models for benchmarks/verify_memory.py (``memory_models:linear`` with ``--kwargs``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear(features: int = 4096, out: int = 4096, layers: int = 1) -> nn.Module:
    """``layers`` Linear layers of ``features → out`` (then ``out → out``)."""
    sizes = [features] + [out] * layers
    return nn.Sequential(*(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])))


class Attention(nn.Module):
    """Multi-head self-attention on (batch, tokens, dim) written out: qkv, q @ kᵀ, softmax, @ v, proj."""

    def __init__(self, dim: int = 512, heads: int = 8, fused: bool = False) -> None:
        super().__init__()
        self.heads, self.fused = heads, fused
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


def attention(dim: int = 512, heads: int = 8, fused: bool = False) -> nn.Module:
    return Attention(dim, heads, fused)


def mha(dim: int = 512, heads: int = 8) -> nn.Module:
    """torch's nn.MultiheadAttention as self-attention (its CPU fast path under no_grad)."""

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    return SelfAttention()
