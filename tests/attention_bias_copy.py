"""timm's attention biases as timm 1.0.31 writes them (Apache-2.0, Copyright Ross Wightman and the LeViT / EfficientFormer
authors), for the tests that run without timm (CI has none): ``ndgrid`` (timm/layers/grid.py), the index of LeViT's
``Attention`` and ``AttentionDownsample`` (timm/models/levit.py ``_compute_attention_bias_idxs``, as functions of
resolution and stride), and EfficientFormer's ``Attention`` (timm/models/efficientformer.py, minus device/dtype),
in a small model of tokens."""

# ruff: noqa
from typing import Dict

import torch
import torch.nn as nn


def to_2tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def ndgrid(*tensors):
    try:
        return torch.meshgrid(*tensors, indexing='ij')
    except TypeError:
        return torch.meshgrid(*tensors)


def levit_attention_idxs(resolution, device=None):
    """levit.Attention._compute_attention_bias_idxs"""
    pos = torch.stack(ndgrid(
        torch.arange(resolution[0], device=device, dtype=torch.long),
        torch.arange(resolution[1], device=device, dtype=torch.long),
    )).flatten(1)
    rel_pos = (pos[..., :, None] - pos[..., None, :]).abs()
    rel_pos = (rel_pos[0] * resolution[1]) + rel_pos[1]
    return rel_pos


def levit_downsample_idxs(resolution, stride, device=None):
    """levit.AttentionDownsample._compute_attention_bias_idxs"""
    k_pos = torch.stack(ndgrid(
        torch.arange(resolution[0], device=device, dtype=torch.long),
        torch.arange(resolution[1], device=device, dtype=torch.long),
    )).flatten(1)
    q_pos = torch.stack(ndgrid(
        torch.arange(0, resolution[0], step=stride, device=device, dtype=torch.long),
        torch.arange(0, resolution[1], step=stride, device=device, dtype=torch.long),
    )).flatten(1)
    rel_pos = (q_pos[..., :, None] - k_pos[..., None, :]).abs()
    rel_pos = (rel_pos[0] * resolution[1]) + rel_pos[1]
    return rel_pos


class Attention(torch.nn.Module):
    attention_bias_cache: Dict[str, torch.Tensor]

    def __init__(
            self,
            dim: int = 384,
            key_dim: int = 32,
            num_heads: int = 8,
            attn_ratio: float = 4,
            resolution: int = 7,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.scale = key_dim ** -0.5
        self.key_dim = key_dim
        self.key_attn_dim = key_dim * num_heads
        self.val_dim = int(attn_ratio * key_dim)
        self.val_attn_dim = self.val_dim * num_heads
        self.attn_ratio = attn_ratio

        self.qkv = nn.Linear(dim, self.key_attn_dim * 2 + self.val_attn_dim)
        self.proj = nn.Linear(self.val_attn_dim, dim)

        resolution = to_2tuple(resolution)
        pos = torch.stack(ndgrid(torch.arange(resolution[0]), torch.arange(resolution[1]))).flatten(1)
        rel_pos = (pos[..., :, None] - pos[..., None, :]).abs()
        rel_pos = (rel_pos[0] * resolution[1]) + rel_pos[1]
        self.attention_biases = torch.nn.Parameter(torch.zeros(num_heads, resolution[0] * resolution[1]))
        self.register_buffer('attention_bias_idxs', rel_pos)
        self.attention_bias_cache = {}  # per-device attention_biases cache (data-parallel compat)

    @torch.no_grad()
    def train(self, mode=True):
        super().train(mode)
        if self.attention_bias_cache:
            self.attention_bias_cache = {}  # clear ab cache

    def _apply(self, fn, *args, **kwargs):
        self.attention_bias_cache = {}
        return super()._apply(fn, *args, **kwargs)

    def get_attention_biases(self, device: torch.device) -> torch.Tensor:
        if torch.jit.is_tracing() or self.training:
            return self.attention_biases[:, self.attention_bias_idxs]
        else:
            device_key = str(device)
            if device_key not in self.attention_bias_cache:
                self.attention_bias_cache[device_key] = self.attention_biases[:, self.attention_bias_idxs]
            return self.attention_bias_cache[device_key]

    def forward(self, x):  # x (B,N,C)
        B, N, C = x.shape
        qkv = self.qkv(x)
        qkv = qkv.reshape(B, N, self.num_heads, -1).permute(0, 2, 1, 3)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.val_dim], dim=3)

        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn + self.get_attention_biases(x.device)

        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, self.val_attn_dim)
        x = self.proj(x)
        return x


class EfficientFormerLike(nn.Module):
    """Tokens of a 3×4 grid through two of EfficientFormer's attention blocks (residual), the second sharing nothing."""

    def __init__(self):
        super().__init__()
        self.attn1 = Attention(dim=16, key_dim=4, num_heads=2, attn_ratio=2, resolution=(3, 4))
        self.attn2 = Attention(dim=16, key_dim=4, num_heads=3, attn_ratio=1, resolution=(3, 4))
        with torch.no_grad():
            for m in (self.attn1, self.attn2):
                m.attention_biases.normal_()

    def forward(self, x):
        x = x + self.attn1(x)
        return x + self.attn2(x)
