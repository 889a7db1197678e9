"""MultiheadAttention: ``nn.MultiheadAttention`` used as self-attention, query = key = value = the input.

A spec layer has one input, so the layer is self-attention (``attn(x, x, x, need_weights=False)[0]``,
as torchvision's ViT calls it). The input is (N, L, E) with ``batch_first: true`` — the spec default,
since a spec's tensors are batch first; torch's own default is ``batch_first=False``, (L, N, E), and
verify passes ``batch_first`` to torch explicitly, so the two never disagree — or (L, E) unbatched
(``batch_first`` is then ignored, as in torch). A layer read from a user's module keeps the module's
``batch_first``. The output has the input's shape.

Parameters (``sum(p.numel())`` of torch's module): in_proj 3E·E (+ 3E bias), out_proj E·E (+ E bias),
bias_k and bias_v E each with ``add_bias_kv``. MACs (FlopCounterMode / 2, fused fast path and ordinary
path alike): the projections, 4·E² per position, and the two attention products q·kᵀ and attention·v,
L·S·E each per batch item, where the keys number S = L (+ 1 with ``add_bias_kv``, + 1 with
``add_zero_attn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from .base import BATCH, CHANNELS, REQUIRED, SPATIAL, Layer, Roles, Shape, as_bool, as_float, as_int, product, register, table
from .dims import near_divisor, shape_text


@register("MultiheadAttention")
@dataclass(frozen=True)
class MultiheadAttention(Layer):
    """``nn.MultiheadAttention`` as self-attention on (N, L, E) (``batch_first``), (L, N, E) or (L, E)."""

    embed_dim: int | None = None
    num_heads: int = 1
    dropout: float = 0.0
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    batch_first: bool = True

    PARAMS: ClassVar[dict[str, Any]] = {
        "embed_dim": None, "num_heads": REQUIRED, "dropout": 0.0, "bias": True, "add_bias_kv": False,
        "add_zero_attn": False, "kdim": None, "vdim": None, "batch_first": True,
    }  # fmt: skip
    #: Where torch's module keeps an argument under another name (read by verify's ``layer_as``):
    #: ``bias`` is whether ``in_proj_bias`` is set, ``add_bias_kv`` whether ``bias_k`` is.
    ATTRIBUTES: ClassVar[dict[str, str]] = {"bias": "in_proj_bias", "add_bias_kv": "bias_k"}
    RANKS: ClassVar[tuple[int, ...] | None] = (2, 3)
    #: torch.nn's class takes (query, key, value) and returns (output, weights): verify builds a subclass
    #: that is called with the one input and returns the output (verify/attention.py)
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> MultiheadAttention:
        embed, kdim, vdim = kw["embed_dim"], kw["kdim"], kw["vdim"]
        # kdim = vdim = embed_dim is what None means (torch's module keeps the number): None, so a spec read from
        # a module does not write them
        kdim, vdim = (None if type(value) is int and value == embed else value for value in (kdim, vdim))
        layer = cls(
            type_name=type_name,
            embed_dim=None if embed is None else as_int(type_name, "embed_dim", embed),
            num_heads=as_int(type_name, "num_heads", kw["num_heads"]),
            dropout=as_float(type_name, "dropout", kw["dropout"], low=0.0, high=1.0),
            bias=as_bool(type_name, "bias", kw["bias"]),
            add_bias_kv=as_bool(type_name, "add_bias_kv", kw["add_bias_kv"]),
            add_zero_attn=as_bool(type_name, "add_zero_attn", kw["add_zero_attn"]),
            kdim=None if kdim is None else as_int(type_name, "kdim", kdim),
            vdim=None if vdim is None else as_int(type_name, "vdim", vdim),
            batch_first=as_bool(type_name, "batch_first", kw["batch_first"]),
        )
        if layer.embed_dim is not None:
            problem = layer._problem(layer.embed_dim)
            if problem:
                raise SpecError(f"{type_name}: {problem}", layer=type_name)
        return layer

    def _problem(self, features: int) -> str:
        """Why torch refuses this layer as self-attention on ``features`` features, or ""."""
        if features % self.num_heads:
            return (f"expects num_heads to divide embed_dim: embed_dim {features} is not divisible by num_heads {self.num_heads} (torch: embed_dim must be"
                    f" divisible by num_heads); use num_heads: {near_divisor(features, self.num_heads)}")
        for name in ("kdim", "vdim"):
            value = getattr(self, name)
            if value is not None and value != features:
                return (f"expects {name} = embed_dim: {name} {value} differs from embed_dim {features}, but a spec's attention is self-attention: the"
                        f" keys and values are the input, of {features} features; use {name}: {features} (or leave it out)")
        return ""

    def bind(self, shape: Sequence[int]) -> MultiheadAttention:
        shape = self.check_input(shape)
        features = shape[-1]
        if self.embed_dim is not None and self.embed_dim != features:
            raise self.error(
                f"expects embed_dim = {features} (the last dimension of the input {shape_text(shape)}), but the spec says"
                f" {self.embed_dim} (torch: was expecting embedding dimension of {self.embed_dim}, but got {features});"
                f" use embed_dim: {features} (or leave it out: it is read from the input)",
                ErrorKind.FEATURES,
            )
        problem = self._problem(features)
        if problem:
            raise self.error(problem, ErrorKind.FEATURES)
        return self if self.embed_dim == features else self.with_values(embed_dim=features)

    def _rank_message(self, shape: Shape) -> str:
        return (f"expects an unbatched 2-D (L, E) or a batched 3-D input ({'N, L, E' if self.batch_first else 'L, N, E'}),"
                f" got {len(shape)}-D {list(shape)} (torch: query should be unbatched 2D or batched 3D tensor)")

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        return shape

    def _sequence_axis(self, shape: Shape) -> int:
        return 1 if len(shape) == 3 and self.batch_first else 0

    def keys(self, positions: int) -> int:
        """How many keys each query meets: the positions, a learned bias_k, a zero key."""
        return positions + self.add_bias_kv + self.add_zero_attn

    @property
    def num_params(self) -> int:
        e = self.embed_dim
        if e is None:
            raise self.error("embed_dim is not known yet: give embed_dim or an input shape")
        return 4 * e * e + (4 * e if self.bias else 0) + (2 * e if self.add_bias_kv else 0)

    def macs(self, shape: Sequence[int]) -> int:
        shape = self.check_input(shape)
        self.output_shape(shape)
        features = shape[-1]
        positions = shape[self._sequence_axis(shape)]
        tokens = product(shape[:-1])  # batch × positions
        # in_proj (q, k, v) and out_proj: 4·E² per position; q·kᵀ and attention·v: S·E per position each
        return tokens * 4 * features * features + 2 * tokens * self.keys(positions) * features

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return (self._sequence_axis(shape), len(shape) - 1)  # every position and every feature; the batch stays apart

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        """What attention reads its input as: the sequence (a spatial axis: its positions), the features last,
        the batch. So a Linear after it (a transformer's MLP) acts on the features, and is not taken for a
        Linear on feature maps — also where the spec's input is tokens, read as (N, C, L) by the contract."""
        if len(shape) == 2:
            return (SPATIAL, CHANNELS)
        return (BATCH, SPATIAL, CHANNELS) if self.batch_first else (SPATIAL, BATCH, CHANNELS)

    def describe(self) -> str:
        extras = [name for name in ("add_bias_kv", "add_zero_attn") if getattr(self, name)]
        text = f"{self.num_heads} heads" + ("" if self.embed_dim is None else f" × {self.embed_dim // self.num_heads}")
        return ", ".join([text, *(["no bias"] if not self.bias else []), *extras, *([] if self.batch_first else ["(L, N, E)"])])


LAYERS = table(MultiheadAttention)
