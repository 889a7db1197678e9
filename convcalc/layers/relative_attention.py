"""RelativePositionalMultiHeadAttention: MaxViT's self-attention within windows, with a learned
relative-position bias (torchvision's ``models.maxvit.RelativePositionalMultiHeadAttention``).

The input is (B, G, P, D): G windows (or grid cells) of P = max_seq_len positions, D features
each. ``to_qkv`` (a Linear D → 3D) makes queries, keys and values, split into D / head_dim heads; the
keys are scaled by D^-0.5 (D, not head_dim: torchvision's choice); each head's P × P attention logits
get the bias ``relative_position_bias_table[relative_position_index]`` — one learned number per head
and relative offset of a size × size window, (2·size − 1)² offsets — then softmax, times the values,
and ``merge`` (a Linear D → D). The output has the input's shape.

Parameters: to_qkv 3D·D + 3D, merge D·D + D, the table (2·size − 1)²·heads. MACs (FlopCounterMode
/ 2): the two Linears, 4·D² per position, and the two attention products, P·D per position each
(each head: P·head_dim for q·kᵀ and for attention·v) — torch's einsum runs a product whose contracted
size is 1 (head_dim 1 for q·kᵀ, one position for attention·v) as an elementwise multiply, which counts 0. torch.nn has no such class: verify builds its own
module (``OWN_MODULE``), a copy of torchvision's computation with the same parameter names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from ..sizes import MAX_SIZE
from .base import REQUIRED, Layer, Roles, Shape, as_int, register, table
from .dims import near_divisor, shape_text


@register("RelativePositionalMultiHeadAttention")
@dataclass(frozen=True)
class RelativeAttention(Layer):
    """Window self-attention with a relative-position bias on (B, G, P, D) inputs (MaxViT)."""

    feat_dim: int | None = None
    head_dim: int = 32
    max_seq_len: int = 49

    PARAMS: ClassVar[dict[str, Any]] = {"feat_dim": None, "head_dim": REQUIRED, "max_seq_len": REQUIRED}
    RANKS: ClassVar[tuple[int, ...] | None] = (4,)
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> RelativeAttention:
        feat = kw["feat_dim"]
        layer = cls(
            type_name=type_name,
            feat_dim=None if feat is None else as_int(type_name, "feat_dim", feat),
            head_dim=as_int(type_name, "head_dim", kw["head_dim"]),
            max_seq_len=as_int(type_name, "max_seq_len", kw["max_seq_len"]),
        )
        side = math.isqrt(layer.max_seq_len)
        if side * side != layer.max_seq_len:
            lower, upper = side * side, (side + 1) ** 2
            squares = " or ".join(str(n) for n in dict.fromkeys((lower or upper, upper)) if n <= MAX_SIZE)
            raise SpecError(
                f"{type_name}: max_seq_len {layer.max_seq_len} is no square: the positions of a window are size × size"
                f" (torchvision reads size = int(sqrt(max_seq_len))); use max_seq_len: {squares}",
                layer=type_name,
            )
        if layer.feat_dim is not None and layer.feat_dim % layer.head_dim:
            raise SpecError(f"{type_name}: {layer._heads_rule(layer.feat_dim)}", layer=type_name)
        return layer

    @property
    def size(self) -> int:
        """The window's side: max_seq_len = size²."""
        return math.isqrt(self.max_seq_len)

    def _heads_rule(self, features: int) -> str:
        near = near_divisor(features, self.head_dim)
        return (f"expects head_dim to divide feat_dim: feat_dim {features} is not divisible by head_dim {self.head_dim} (torchvision: feat_dim must be divisible by"
                f" head_dim; the heads are feat_dim / head_dim); use head_dim: {near}")

    def bind(self, shape: Sequence[int]) -> RelativeAttention:
        shape = self.check_input(shape)
        features = shape[-1]
        if self.feat_dim is not None and self.feat_dim != features:
            raise self.error(
                f"expects feat_dim = {features} (the last dimension of the input {shape_text(shape)}), but the spec says"
                f" {self.feat_dim}; use feat_dim: {features} (or leave it out: it is read from the input)",
                ErrorKind.FEATURES,
            )
        if features % self.head_dim:
            raise self.error(self._heads_rule(features), ErrorKind.FEATURES)
        return self if self.feat_dim == features else self.with_values(feat_dim=features)

    def _output(self, shape: Shape) -> Shape:
        bound = self.bind(shape)
        positions = shape[2]
        if positions != bound.max_seq_len and bound.max_seq_len != 1:  # a 1×1 bias broadcasts over any window
            square = math.isqrt(positions) ** 2 == positions
            fix = f"use max_seq_len: {positions}" if square else f"use windows of {self.max_seq_len} positions"
            raise self.error(
                f"the input {shape_text(shape)} has {positions} positions per window (dimension 2), but the bias is made for"
                f" max_seq_len = {self.max_seq_len} ({self.size}×{self.size}) and the two must be equal; {fix}",
            )
        return shape

    @property
    def heads(self) -> int:
        if self.feat_dim is None:
            raise self.error("feat_dim is not known yet: give feat_dim or an input shape")
        return self.feat_dim // self.head_dim

    @property
    def num_params(self) -> int:
        d = self.feat_dim
        if d is None:
            raise self.error("feat_dim is not known yet: give feat_dim or an input shape")
        return (3 * d * d + 3 * d) + (d * d + d) + (2 * self.size - 1) ** 2 * self.heads

    def macs(self, shape: Sequence[int]) -> int:
        shape = self.check_input(shape)
        self.output_shape(shape)
        batch, windows, positions, features = shape
        tokens = batch * windows * positions
        # torch's einsum runs a product whose contracted size is 1 as an elementwise multiply (no MACs):
        # q·kᵀ contracts head_dim, attention·v contracts the positions
        products = (self.head_dim > 1) + (positions > 1)
        return tokens * 4 * features * features + products * tokens * positions * features

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return (2, 3)  # every position of a window, every feature; the windows stay apart

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        return roles

    def describe(self) -> str:
        heads = "" if self.feat_dim is None else f"{self.heads} heads × "
        return f"{heads}{self.head_dim}, window {self.size}×{self.size}"


LAYERS = table(RelativeAttention)
