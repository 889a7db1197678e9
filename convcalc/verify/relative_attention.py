"""verify's module for the engine's ``RelativePositionalMultiHeadAttention`` (MaxViT's window
attention): torchvision's computation (``torchvision/models/maxvit.py``, BSD-3-Clause), written
again with plain torch so that verify needs no torchvision, with torchvision's parameter and buffer
names (``to_qkv``, ``merge``, ``relative_position_bias_table``, ``relative_position_index``), so a
model's state dict loads into it as it is."""

from __future__ import annotations

import math
from typing import Any


def relative_attention_class(torch: Any) -> Any:
    nn = torch.nn

    def position_index(size: int) -> Any:  # on the current default device
        """For each pair of positions of a size × size window, the row of their offset in the table."""
        coords = torch.stack(torch.meshgrid([torch.arange(size), torch.arange(size)], indexing="ij"))
        flat = torch.flatten(coords, 1)
        relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
        relative[:, :, 0] += size - 1
        relative[:, :, 1] += size - 1
        relative[:, :, 0] *= 2 * size - 1
        return relative.sum(-1)

    class RelativePositionalMultiHeadAttention(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int) -> None:
            super().__init__()
            self.n_heads = feat_dim // head_dim
            self.head_dim = head_dim
            self.size = math.isqrt(max_seq_len)
            self.max_seq_len = max_seq_len
            self.to_qkv = nn.Linear(feat_dim, self.n_heads * head_dim * 3)
            self.scale_factor = feat_dim**-0.5
            self.merge = nn.Linear(head_dim * self.n_heads, feat_dim)
            self.relative_position_bias_table = nn.Parameter(torch.empty((2 * self.size - 1) ** 2, self.n_heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            # kept so that a model's state dict loads as it is; forward computes the index itself, since verify
            # builds a spec's modules with uninitialised tensors (materialize), and an index of those is no index
            self.register_buffer("relative_position_index", position_index(self.size))

        def forward(self, x: Any) -> Any:
            b, g, p, d = x.shape
            h, dh = self.n_heads, self.head_dim
            q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
            q, k, v = (t.reshape(b, g, p, h, dh).permute(0, 1, 3, 2, 4) for t in (q, k, v))
            k = k * self.scale_factor
            logits = torch.einsum("bghid,bghjd->bghij", q, k)
            with torch.device(x.device):
                index = position_index(self.size)  # not the buffer: see above
            bias = self.relative_position_bias_table[index.view(-1)]
            bias = bias.view(self.max_seq_len, self.max_seq_len, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
            attention = torch.nn.functional.softmax(logits + bias, dim=-1)
            out = torch.einsum("bghij,bghjd->bghid", attention, v)
            return self.merge(out.permute(0, 1, 3, 2, 4).reshape(b, g, p, d))

        def extra_repr(self) -> str:
            return f"heads={self.n_heads}, head_dim={self.head_dim}, max_seq_len={self.max_seq_len}"

    return RelativePositionalMultiHeadAttention
