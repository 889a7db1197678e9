"""verify's own torch modules for the Swin families (``convcalc.layers.swin``), and how emission reads
torchvision's Swin modules onto them — without importing torchvision.

The computation is a reimplementation, with plain torch ops, of torchvision's ``_patch_merging_pad``,
``_get_relative_position_bias``, ``shifted_window_attention`` and the position bias of
``ShiftedWindowAttention``/``ShiftedWindowAttentionV2`` (torchvision/models/swin_transformer.py,
BSD-3-Clause, Copyright (c) Soumith Chintala 2016, and the torchvision contributors), op for op, so
that the values and FlopCounterMode's count agree with torchvision's.

The attention modules hold their weights as flat parameters (``qkv_weight`` for torchvision's
``qkv.weight``: a dot becomes ``_``), not as child Linear modules: verify judges a spec's rows by the
calls of leaf modules, and a module with children is no leaf. The relative position index and V2's
table of relative coordinates are fixed, computed in forward from the window size (as buffers,
verify's uninitialised storage would scramble them).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ..layers import Layer, make_layer
from ..layers.swin import CPB_HIDDEN

#: torchvision's module and class names of the attention modules emission maps (no subclass: its forward may differ).
TORCHVISION_SWIN = "torchvision.models.swin_transformer"
ATTENTION_CLASSES = {"ShiftedWindowAttention": "ShiftedWindowAttention", "ShiftedWindowAttentionV2": "ShiftedWindowAttentionV2"}
#: torchvision's function that PatchMerging calls (fx-wrapped: one call_function node).
PATCH_MERGING_PAD = "_patch_merging_pad"


def is_torchvision_attention(module: Any) -> bool:
    """Whether ``module`` is one of torchvision's Swin attention modules itself (by qualified class name)."""
    cls = type(module)
    return cls.__module__ == TORCHVISION_SWIN and cls.__qualname__ in ATTENTION_CLASSES


def is_patch_merging_pad(target: Any) -> bool:
    """Whether an fx call_function target is torchvision's ``_patch_merging_pad`` (by qualified name)."""
    return getattr(target, "__module__", None) == TORCHVISION_SWIN and getattr(target, "__qualname__", None) == PATCH_MERGING_PAD


def attention_layer(module: Any) -> Layer:
    """The engine layer of a torchvision Swin attention module, from its attributes (dim is inferred)."""
    return make_layer(
        ATTENTION_CLASSES[type(module).__qualname__],
        window_size=[int(v) for v in module.window_size],
        shift_size=[int(v) for v in module.shift_size],
        num_heads=int(module.num_heads),
        qkv_bias=module.qkv.bias is not None,
        proj_bias=module.proj.bias is not None,
        attention_dropout=float(module.attention_dropout),
        dropout=float(module.dropout),
    )


def attention_state(module: Any) -> dict[str, Any]:
    """The torchvision module's parameters under verify's module's names (``qkv.weight`` → ``qkv_weight``);
    buffers are not taken: verify's module computes them."""
    return {name.replace(".", "_"): p.detach() for name, p in module.named_parameters()}


def relative_position_index(torch: Any, window: tuple[int, int], device: Any) -> Any:
    """For each pair of positions of a window (flattened, row-major), the row of the bias table of their offset."""
    coords = torch.stack(torch.meshgrid(torch.arange(window[0], device=device), torch.arange(window[1], device=device), indexing="ij"))
    flat = torch.flatten(coords, 1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window[0] - 1
    relative[:, :, 1] += window[1] - 1
    relative[:, :, 0] *= 2 * window[1] - 1
    return relative.sum(-1).flatten()


def relative_coords_table(torch: Any, window: tuple[int, int], device: Any) -> Any:
    """V2's 1 × (2w₀−1) × (2w₁−1) × 2 table of log-spaced relative coordinates (float32, as torchvision's buffer)."""
    h = torch.arange(-(window[0] - 1), window[0], dtype=torch.float32, device=device)
    w = torch.arange(-(window[1] - 1), window[1], dtype=torch.float32, device=device)
    table = torch.stack(torch.meshgrid([h, w], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    table[:, :, :, 0] /= window[0] - 1
    table[:, :, :, 1] /= window[1] - 1
    table *= 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0


def patch_merging_pad(torch: Any, x: Any) -> Any:
    F = torch.nn.functional
    h, w, _ = x.shape[-3:]
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)


def shifted_window_attention(torch: Any, x: Any, qkv_weight: Any, proj_weight: Any, bias: Any, window: list[int], heads: int, shift_size: list[int],
                             attention_dropout: float, dropout: float, qkv_bias: Any, proj_bias: Any, logit_scale: Any, training: bool) -> Any:
    """torchvision's ``shifted_window_attention``, op for op."""
    F = torch.nn.functional
    B, H, W, C = x.shape
    pad_r = (window[1] - W % window[1]) % window[1]
    pad_b = (window[0] - H % window[0]) % window[0]
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_H, pad_W, _ = x.shape
    shift = list(shift_size)
    if window[0] >= pad_H:
        shift[0] = 0
    if window[1] >= pad_W:
        shift[1] = 0
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    windows = (pad_H // window[0]) * (pad_W // window[1])
    x = x.view(B, pad_H // window[0], window[0], pad_W // window[1], window[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * windows, window[0] * window[1], C)
    if logit_scale is not None and qkv_bias is not None:
        qkv_bias = qkv_bias.clone()
        length = qkv_bias.numel() // 3
        qkv_bias[length : 2 * length].zero_()
    qkv = F.linear(x, qkv_weight, qkv_bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if logit_scale is not None:  # V2: cosine attention
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(logit_scale, max=math.log(100.0)).exp()
    else:
        q = q * (C // heads) ** -0.5
        attn = q.matmul(k.transpose(-2, -1))
    attn = attn + bias
    if sum(shift) > 0:  # the mask that keeps a shifted window's pieces apart
        mask = x.new_zeros((pad_H, pad_W))
        h_slices = ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None))
        w_slices = ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None))
        count = 0
        for hs in h_slices:
            for ws in w_slices:
                mask[hs[0] : hs[1], ws[0] : ws[1]] = count
                count += 1
        mask = mask.view(pad_H // window[0], window[0], pad_W // window[1], window[1])
        mask = mask.permute(0, 2, 1, 3).reshape(windows, window[0] * window[1])
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, (-100.0)).masked_fill(mask == 0, 0.0)
        attn = attn.view(x.size(0) // windows, windows, heads, x.size(1), x.size(1))
        attn = attn + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    attn = F.dropout(attn, p=attention_dropout, training=training)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
    x = F.linear(x, proj_weight, proj_bias)
    x = F.dropout(x, p=dropout, training=training)
    x = x.view(B, pad_H // window[0], pad_W // window[1], window[0], window[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pad_H, pad_W, C)
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x[:, :H, :W, :].contiguous()


@functools.cache
def swin_classes(torch: Any) -> dict[str, Any]:
    """verify's modules PatchMerge, ShiftedWindowAttention and ShiftedWindowAttentionV2, made once per torch module."""
    nn = torch.nn

    class PatchMerge(nn.Module):  # type: ignore[misc,name-defined]
        """torchvision's ``_patch_merging_pad``: (…, H, W, C) → (…, ⌈H/2⌉, ⌈W/2⌉, 4C)."""

        def forward(self, x: Any) -> Any:
            return patch_merging_pad(torch, x)

    class ShiftedWindowAttention(nn.Module):  # type: ignore[misc,name-defined]
        """torchvision's ShiftedWindowAttention with flat parameters (``qkv_weight`` is its ``qkv.weight``)."""

        V2 = False

        def __init__(self, dim: int, window_size: list[int], shift_size: list[int], num_heads: int, qkv_bias: bool = True,
                     proj_bias: bool = True, attention_dropout: float = 0.0, dropout: float = 0.0) -> None:
            super().__init__()
            self.window_size, self.shift_size, self.num_heads = list(window_size), list(shift_size), num_heads
            self.attention_dropout, self.dropout = attention_dropout, dropout
            self.qkv_weight = nn.Parameter(torch.empty(3 * dim, dim))
            self.qkv_bias = nn.Parameter(torch.empty(3 * dim)) if qkv_bias else None
            self.proj_weight = nn.Parameter(torch.empty(dim, dim))
            self.proj_bias = nn.Parameter(torch.empty(dim)) if proj_bias else None
            self.define_bias()
            self._register_load_state_dict_pre_hook(self._torchvision_names)

        @staticmethod
        def _torchvision_names(state: dict[str, Any], prefix: str, *args: Any) -> None:
            """A torchvision module's state dict loads as it is: ``qkv.weight`` is ``qkv_weight``, and its buffers
            (the relative position index, V2's coordinates table), which this module computes, are dropped."""
            for key in [k for k in state if k.startswith(prefix)]:
                local = key[len(prefix) :]
                if local in ("relative_position_index", "relative_coords_table"):
                    del state[key]
                elif "." in local:
                    state[prefix + local.replace(".", "_")] = state.pop(key)

        def define_bias(self) -> None:
            rows = (2 * self.window_size[0] - 1) * (2 * self.window_size[1] - 1)
            self.relative_position_bias_table = nn.Parameter(torch.empty(rows, self.num_heads))

        def position_bias(self, device: Any) -> Any:
            """torchvision's ``_get_relative_position_bias``: 1 × heads × N × N, N the positions of a window."""
            return self.gather(self.relative_position_bias_table, device)

        def gather(self, table: Any, device: Any) -> Any:
            n = self.window_size[0] * self.window_size[1]
            index = relative_position_index(torch, tuple(self.window_size), device)
            bias = table[index].view(n, n, -1)
            return bias.permute(2, 0, 1).contiguous().unsqueeze(0)

        def forward(self, x: Any) -> Any:
            return shifted_window_attention(torch, x, self.qkv_weight, self.proj_weight, self.position_bias(x.device), self.window_size,
                                            self.num_heads, self.shift_size, self.attention_dropout, self.dropout, self.qkv_bias,
                                            self.proj_bias, self.logit_scale if self.V2 else None, self.training)

        def extra_repr(self) -> str:
            return f"window_size={self.window_size}, shift_size={self.shift_size}, num_heads={self.num_heads}"

    class ShiftedWindowAttentionV2(ShiftedWindowAttention):
        """torchvision's ShiftedWindowAttentionV2: cosine attention, the bias from ``cpb_mlp`` (``cpb_mlp_0_weight`` …)."""

        V2 = True

        def define_bias(self) -> None:
            self.logit_scale = nn.Parameter(torch.empty(self.num_heads, 1, 1))
            self.cpb_mlp_0_weight = nn.Parameter(torch.empty(CPB_HIDDEN, 2))
            self.cpb_mlp_0_bias = nn.Parameter(torch.empty(CPB_HIDDEN))
            self.cpb_mlp_2_weight = nn.Parameter(torch.empty(self.num_heads, CPB_HIDDEN))

        def position_bias(self, device: Any) -> Any:
            F = torch.nn.functional
            coords = relative_coords_table(torch, tuple(self.window_size), device).to(self.cpb_mlp_0_weight.dtype)
            table = F.linear(F.relu(F.linear(coords, self.cpb_mlp_0_weight, self.cpb_mlp_0_bias)), self.cpb_mlp_2_weight)
            return 16 * torch.sigmoid(self.gather(table.view(-1, self.num_heads), device))

    return {"PatchMerge": PatchMerge, "ShiftedWindowAttention": ShiftedWindowAttention, "ShiftedWindowAttentionV2": ShiftedWindowAttentionV2}
