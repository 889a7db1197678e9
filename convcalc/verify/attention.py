"""verify's side of the engine's ``MultiheadAttention`` (self-attention around ``nn.MultiheadAttention``).

- :func:`attention_class`: the module a spec's row is built as, a subclass of ``nn.MultiheadAttention``
  called with the one input (``forward(x) = super().forward(x, x, x, need_weights=False)[0]``); it keeps
  torch's parameter names, so a model's state dict loads into it as it is.
- :func:`attention_call`: what a user's ``nn.MultiheadAttention`` was called with, and why the engine cannot
  judge the call where it cannot (cross-attention, masks): such a call is "not judged", never a ✓.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

from ..layers import Layer


@functools.cache
def attention_class(torch: Any) -> Any:
    class MultiheadAttention(torch.nn.MultiheadAttention):  # type: ignore[misc,name-defined]
        """Self-attention: query = key = value = the one input; returns the attention output only."""

        def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, add_bias_kv: bool = False,
                     add_zero_attn: bool = False, kdim: int | None = None, vdim: int | None = None, batch_first: bool = True) -> None:
            super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn,
                             kdim=kdim, vdim=vdim, batch_first=batch_first)

        def forward(self, x: Any) -> Any:  # type: ignore[override]
            return super().forward(x, x, x, need_weights=False)[0]

    return MultiheadAttention


@dataclass(frozen=True)
class AttentionCall:
    """One call of a user's ``nn.MultiheadAttention``: why the engine cannot judge it ("" where it can), and
    which outputs it returns."""

    reason: str
    need_weights: bool = False
    average_attn_weights: bool = True


def is_called_as_torch(torch: Any, module: Any) -> bool:
    """A module computing as ``nn.MultiheadAttention.forward`` does (query, key, value in; a pair out)."""
    return isinstance(module, torch.nn.MultiheadAttention) and type(module).forward is torch.nn.MultiheadAttention.forward


def is_leaf(torch: Any, module: Any) -> bool:
    """A leaf of verify's walk although it has a child (out_proj, whose weight its forward uses, never calling it):
    torch's nn.MultiheadAttention as torch computes it, and verify's own module for a spec's row."""
    return is_called_as_torch(torch, module) or type(module) is attention_class(torch)


def attention_call(torch: Any, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> AttentionCall:
    """Read a call of ``nn.MultiheadAttention.forward``: self-attention without masks is judged, anything else is not."""
    try:
        bound = inspect.signature(torch.nn.MultiheadAttention.forward).bind(module, *args, **kwargs)
    except TypeError as error:
        return AttentionCall(f"called with arguments MultiheadAttention.forward does not take ({error})")
    bound.apply_defaults()
    given = bound.arguments
    need = bool(given["need_weights"])
    average = bool(given["average_attn_weights"])
    query, key, value = given["query"], given["key"], given["value"]
    if not (query is key and key is value):
        return AttentionCall("cross-attention: query, key and value are not the same tensor, and the engine's MultiheadAttention is"
                             " self-attention (attn(x, x, x)); shapes, parameters and MACs are shown, not compared", need, average)
    masks = [name for name in ("key_padding_mask", "attn_mask") if given[name] is not None]
    if masks or given["is_causal"]:
        what = " and ".join(masks) if masks else "is_causal=True"
        return AttentionCall(f"called with {what}: the engine's MultiheadAttention takes no mask; shown, not compared", need, average)
    return AttentionCall("", need, average)


def expected_outputs(layer: Layer, shape: tuple[int, ...], call: AttentionCall) -> Any:
    """What torch returns for ``call`` on ``shape``, as the engine computes it: the output's shape, and the
    attention weights' too where ``need_weights`` asks for them ((N, L, S), per head (N, heads, L, S); unbatched
    without the N)."""
    out = layer.output_shape(shape)
    if not call.need_weights:
        return out
    lay: Any = layer
    batched = len(shape) == 3
    positions = shape[1 if batched and lay.batch_first else 0]
    batch = (shape[0 if lay.batch_first else 1],) if batched else ()
    heads = () if call.average_attn_weights else (lay.num_heads,)
    return out, (*batch, *heads, positions, lay.keys(positions))
