"""MatMul and ScaledDotProductAttention: products of two (or three) tensors, as hand-written attention
computes them (``q @ k.transpose(-2, -1)``, ``F.scaled_dot_product_attention(q, k, v)``).

Both take their inputs in order (``from: [a, b]``, ``from: [q, k, v]``), with torch's rules:
``torch.matmul``'s for one- and two-dimensional operands and the broadcasting of the leading (batch)
dimensions, and scaled_dot_product_attention's (query (…, L, E), key (…, S, E), value (…, S, Ev) →
(…, L, Ev)). No parameters. MACs are what FlopCounterMode counts: ``batch·n·k·m`` for a matrix
product — 0 for a matrix times a vector, which torch runs as ``mv`` and FlopCounterMode does not
count, and for a vector of length 1 times a batch of matrices — and ``batch·L·S·(E + Ev)`` for attention (q·kᵀ, then the weights times v; the softmax and
the scaling count 0). torch.nn has no such classes: verify builds its own modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import SpecError
from .base import UNKNOWN, Roles, Shape, as_bool, as_float, register, table
from .dims import Mismatch, broadcast, shape_text
from .merge import Merge


def _batch(layer: Merge, shapes: Sequence[Shape], what: str) -> Shape:
    """The broadcast of the leading (batch) dimensions, or the refusal naming them."""
    out = broadcast(shapes)
    if isinstance(out, Mismatch):
        sizes = " vs ".join(map(str, sorted(set(out.sizes) - {1})))
        raise layer.error(
            f"the batch dimensions {' and '.join(shape_text(s) for s in shapes)} of {what} differ in dimension {out.dim} ({sizes})"
            " and neither is 1, so they cannot be broadcast"
        )
    return out


@register("MatMul")
@dataclass(frozen=True)
class MatMul(Merge):
    """``torch.matmul(a, b)`` (``a @ b``) of two inputs, in order."""

    OWN_MODULE: ClassVar[bool] = True
    ALIGNED: ClassVar[bool] = False

    def _merge(self, shapes: list[Shape]) -> Shape:
        if len(shapes) != 2:
            raise self.error(f"multiplies two inputs (from: [a, b]), got {len(shapes)}")
        a, b = shapes
        if len(a) == 1 and len(b) == 1:
            raise self.error(
                f"the inputs {shape_text(a)} and {shape_text(b)} are vectors: their product is one number, which convcalc does not"
                " calculate with"
            )
        inner_a = a[-1]
        inner_b = b[0] if len(b) == 1 else b[-2]
        if inner_a != inner_b:
            side = "its only dimension" if len(b) == 1 else "dimension -2"
            raise self.error(
                f"a {shape_text(a)} times b {shape_text(b)}: the last dimension of a ({inner_a}) must equal {side} of b"
                f" ({inner_b}) (torch: mat1 and mat2 shapes cannot be multiplied)"
            )
        if len(b) == 1:
            return a[:-1]
        if len(a) == 1:
            return (*_batch(self, [b[:-2]], "b"), b[-1]) if len(b) > 2 else (b[-1],)
        batch = _batch(self, [a[:-2], b[:-2]], "a and b") if len(a) > 2 or len(b) > 2 else ()
        return (*batch, a[-2], b[-1])

    def merge_macs(self, shapes: Sequence[Sequence[int]]) -> int:
        """``batch·n·k·m``; a matrix times a vector (``mv``), and a vector of length 1 times a batch of
        matrices (torch multiplies elementwise), count 0, as FlopCounterMode counts them."""
        out = self.merge_shapes(shapes)
        a, b = (tuple(s) for s in shapes)
        if len(b) == 1 or (len(a) == 1 and len(b) >= 3 and a[0] == 1):
            return 0
        return math.prod(out) * a[-1]

    def window(self, shape: Shape) -> None:
        return None

    def merge_roles(self, shapes: Sequence[Shape], out: Shape, roles: Sequence[Roles]) -> Roles:
        return (UNKNOWN,) * len(out)

    def torch_kwargs(self) -> dict[str, Any]:
        return {}


@register("ScaledDotProductAttention")
@dataclass(frozen=True)
class ScaledDotProductAttention(Merge):
    """``F.scaled_dot_product_attention(q, k, v, is_causal=…, scale=…, enable_gqa=…)`` of three inputs, in order."""

    is_causal: bool = False
    scale: float | None = None
    enable_gqa: bool = False

    OWN_MODULE: ClassVar[bool] = True
    ALIGNED: ClassVar[bool] = False

    PARAMS: ClassVar[dict[str, Any]] = {"is_causal": False, "scale": None, "enable_gqa": False}

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> ScaledDotProductAttention:
        scale = kw["scale"]
        if scale is not None:
            scale = as_float(type_name, "scale", scale)
            if scale == 0:
                raise SpecError(f"{type_name}: scale 0 makes every weight equal; leave it out for 1 / sqrt(E)", layer=type_name)
        return cls(type_name=type_name, is_causal=as_bool(type_name, "is_causal", kw["is_causal"]), scale=scale,
                   enable_gqa=as_bool(type_name, "enable_gqa", kw["enable_gqa"]))

    def _merge(self, shapes: list[Shape]) -> Shape:
        if len(shapes) != 3:
            raise self.error(f"takes query, key and value (from: [q, k, v]), got {len(shapes)} inputs")
        q, k, v = shapes
        if min(len(q), len(k), len(v)) < 2:
            raise self.error(
                f"query, key and value must be at least 2-D (…, positions, features), got {shape_text(q)}, {shape_text(k)}, {shape_text(v)}"
            )
        if q[-1] != k[-1]:
            raise self.error(f"query {shape_text(q)} and key {shape_text(k)} must have the same features (last dimension): {q[-1]} vs {k[-1]}")
        if k[-2] != v[-2]:
            raise self.error(f"key {shape_text(k)} and value {shape_text(v)} must have the same positions (dimension -2): {k[-2]} vs {v[-2]}")
        if self.enable_gqa:
            k, v = self._grouped(q, k, v)
        kv = _batch(self, [k[:-2], v[:-2]], "key and value")
        batch = _batch(self, [q[:-2], kv], "query and key")
        return (*batch, q[-2], v[-1])

    def merge_macs(self, shapes: Sequence[Sequence[int]]) -> int:
        """q·kᵀ over the batch of q and k broadcast (L·S·E each), then the weights times v over that batch and v's
        (L·S·Ev each): ``batch·L·S·(E + Ev)`` where the three share a batch. With enable_gqa, k and v count with the
        query's heads (torch repeats them)."""
        self.merge_shapes(shapes)
        q, k, v = (tuple(s) for s in shapes)
        kb, vb = (self._heads_of_query(q, t[:-2]) for t in (k, v))
        products = broadcast([q[:-2], kb])
        assert not isinstance(products, Mismatch)  # merge_shapes has checked that they broadcast
        weighted = broadcast([products, vb])
        assert not isinstance(weighted, Mismatch)
        return math.prod(products) * q[-2] * k[-2] * q[-1] + math.prod(weighted) * q[-2] * k[-2] * v[-1]

    def _heads_of_query(self, q: Shape, batch: Shape) -> Shape:
        """A key's or value's batch dimensions with enable_gqa: its heads (dimension -3) counted as the query's."""
        if self.enable_gqa and len(q) >= 3 and batch and batch[-1] != q[-3]:
            return (*batch[:-1], q[-3])
        return batch

    def window(self, shape: Shape) -> None:
        return None

    def merge_roles(self, shapes: Sequence[Shape], out: Shape, roles: Sequence[Roles]) -> Roles:
        return (UNKNOWN,) * len(out)

    def _grouped(self, q: Shape, k: Shape, v: Shape) -> tuple[Shape, Shape]:
        """Key and value with their heads (dimension -3) repeated to the query's, each on its own, as torch's
        enable_gqa does: both must divide the query's heads (or all three be equal)."""
        if min(len(q), len(k), len(v)) < 3:
            raise self.error(
                "with enable_gqa, query, key and value must be at least 3-D (…, heads, positions, features): torch reads"
                f" each one's heads at dimension -3, got {shape_text(q)}, {shape_text(k)}, {shape_text(v)}"
            )
        heads = q[-3]
        if not heads == k[-3] == v[-3] and (heads % k[-3] or heads % v[-3]):
            raise self.error(
                f"with enable_gqa the query's {heads} heads (dimension -3) must be a multiple of the key's {k[-3]} and of the"
                f" value's {v[-3]} (torch: number of heads in key and value must divide the number of heads in query)"
            )
        return (*k[:-3], heads, *k[-2:]), (*v[:-3], heads, *v[-2:])

    def describe(self) -> str:
        parts = ["causal"] if self.is_causal else []
        if self.scale is not None:
            parts.append(f"scale={self.scale:g}")
        if self.enable_gqa:
            parts.append("gqa")
        return " ".join(parts)


LAYERS = table(MatMul, ScaledDotProductAttention)
