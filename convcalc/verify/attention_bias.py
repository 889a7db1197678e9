"""verify's module for the AttentionBias family (LeViT's and EfficientFormer's relative position bias), and the
index both it and emit-spec compute: timm's ``_compute_attention_bias_idxs``."""

from __future__ import annotations

from typing import Any


def bias_index(torch: Any, resolution: tuple[int, int], stride: int, device: Any = None) -> Any:
    """(queries, keys) longs: |Δrow|·w + |Δcolumn| of each query (every ``stride``-th row and column of the h×w grid)
    and each key (every position), as timm computes ``attention_bias_idxs``."""
    h, w = resolution
    grid = {"device": device, "dtype": torch.long}
    k_pos = torch.stack(torch.meshgrid(torch.arange(h, **grid), torch.arange(w, **grid), indexing="ij")).flatten(1)
    q_pos = torch.stack(torch.meshgrid(torch.arange(0, h, stride, **grid), torch.arange(0, w, stride, **grid), indexing="ij")).flatten(1)
    rel = (q_pos[..., :, None] - k_pos[..., None, :]).abs()
    return rel[0] * w + rel[1]


def find_grid(torch: Any, table: Any, index: Any) -> tuple[tuple[int, int], int] | None:
    """The (resolution, stride) whose :func:`bias_index` is ``index`` for a (heads, h·w) ``table``, else None."""
    if table.dim() != 2 or index.dim() != 2 or index.dtype != torch.long or index.shape[1] != table.shape[1]:
        return None
    keys, queries = int(table.shape[1]), int(index.shape[0])
    for h in range(1, keys + 1):
        if keys % h:
            continue
        w = keys // h
        for stride in range(1, max(h, w) + 1):
            if -(-h // stride) * -(-w // stride) == queries and torch.equal(bias_index(torch, (h, w), stride, index.device), index):
                return (h, w), stride
    return None


def attention_bias_class(torch: Any) -> Any:
    nn = torch.nn

    class AttentionBias(nn.Module):  # type: ignore[misc,name-defined]
        """``x + weight[:, index]``: ``weight`` the (num_heads, h·w) table; the index computed in forward (a spec's modules
        are built on the meta device, where a buffer would hold nothing)."""

        def __init__(self, num_heads: int, resolution: list[int], stride: int = 1) -> None:
            super().__init__()
            self.resolution, self.stride = (int(resolution[0]), int(resolution[1])), stride
            self.weight = nn.Parameter(torch.empty((num_heads, self.resolution[0] * self.resolution[1])))

        def forward(self, x: Any) -> Any:
            return x + self.weight[:, bias_index(torch, self.resolution, self.stride, self.weight.device)]

        def extra_repr(self) -> str:
            return f"num_heads={self.weight.shape[0]}, resolution={list(self.resolution)}, stride={self.stride}"

    return AttentionBias
