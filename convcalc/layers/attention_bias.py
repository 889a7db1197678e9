"""AttentionBias: LeViT's and EfficientFormer's learned relative position bias, added to attention scores.

``x + table[:, index]`` (timm's ``attn + self.attention_biases[:, self.attention_bias_idxs]``): ``table`` is a
learned (num_heads, h·w) parameter, one value per head and per offset (|Δrow|, |Δcolumn|) on an h×w
``resolution`` grid of keys; ``index`` (queries × keys) picks, for each query and key, the entry of their
offset, |Δrow|·w + |Δcolumn|. With ``stride`` s the queries are every s-th row and column of the grid (LeViT's
``AttentionDownsample``): ⌈h/s⌉·⌈w/s⌉ queries. The biases, (num_heads, queries, keys), broadcast against the
input as torch broadcasts (scores of (N, num_heads, queries, keys)). Parameters: num_heads·h·w; MACs 0 (an
addition). torch.nn has no such class: verify builds its own module (``weight``: the table; the index it
computes as timm does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import (
    REQUIRED,
    UNKNOWN,
    Layer,
    Roles,
    Shape,
    as_int,
    as_tuple,
    register,
    table,
)
from .dims import Mismatch, broadcast, shape_text, times


@register("AttentionBias")
@dataclass(frozen=True)
class AttentionBias(Layer):
    """``x + table[:, index]``: a learned bias per head and relative offset of a query and a key on a grid."""

    num_heads: int = 1
    resolution: tuple[int, ...] = (1, 1)
    stride: int = 1

    PARAMS: ClassVar[dict[str, Any]] = {"num_heads": REQUIRED, "resolution": REQUIRED, "stride": 1}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: Mapping[str, Any]) -> AttentionBias:
        return cls(type_name=type_name, num_heads=as_int(type_name, "num_heads", kw["num_heads"]),
                   resolution=as_tuple(type_name, "resolution", kw["resolution"], 2), stride=as_int(type_name, "stride", kw["stride"]))

    @property
    def queries(self) -> int:
        """⌈h/s⌉·⌈w/s⌉: the grid's every stride-th row and column (``torch.arange(0, h, step=s)``)."""
        h, w = self.resolution
        return -(-h // self.stride) * -(-w // self.stride)

    @property
    def keys(self) -> int:
        return self.resolution[0] * self.resolution[1]

    @property
    def biases(self) -> Shape:
        """The shape of ``table[:, index]``: (num_heads, queries, keys)."""
        return (self.num_heads, self.queries, self.keys)

    def torch_kwargs(self) -> dict[str, Any]:
        return {"num_heads": self.num_heads, "resolution": list(self.resolution), "stride": self.stride}

    def _output(self, shape: Shape) -> Shape:
        out = broadcast([self.biases, shape])
        if isinstance(out, Mismatch):
            raise self.error(
                f"the biases {shape_text(self.biases)} (num_heads, queries, keys) and the input {shape_text(shape)} differ in dimension"
                f" {out.dim} ({out.sizes[0]} vs {out.sizes[1]}) and neither is 1, so they cannot be broadcast; use an input of"
                f" (N, {self.num_heads}, {self.queries}, {self.keys}) (attention scores: batch, heads, queries, keys)"
            )
        return out

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        return (UNKNOWN,) * (len(out) - len(shape)) + tuple(roles)

    @property
    def num_params(self) -> int:
        return self.num_heads * self.keys

    def describe(self) -> str:
        return f"heads={self.num_heads} grid {times(self.resolution)}" + (f" s={self.stride}" if self.stride != 1 else "")

    def explain(self, shape: Any) -> list[str]:
        shape = self.check_input(shape)
        out = self.output_shape(shape)
        h, w = self.resolution
        return [
            f"table: num_heads × h·w = {self.num_heads} × {h}·{w} = {self.num_params} parameters (one per head and offset)",
            (f"biases: (num_heads, queries, keys) = ({self.num_heads}, ⌈{h}/{self.stride}⌉·⌈{w}/{self.stride}⌉, {h}·{w})"
             f" = {shape_text(self.biases)}, broadcast against {shape_text(shape)}: {shape_text(out)}"),
        ]


LAYERS = table(AttentionBias)
