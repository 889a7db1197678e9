"""Swin Transformer's layers (torchvision.models.swin_transformer), on channels-last N×H×W×C maps.

``PatchMerge``: torchvision's ``_patch_merging_pad``: H and W padded to even with zeros, then the four
interleaved halves ``x[..., 0::2, 0::2, :]``, ``x[..., 1::2, 0::2, :]``, ``x[..., 0::2, 1::2, :]``,
``x[..., 1::2, 1::2, :]`` joined on the last axis: (…, H, W, C) → (…, ⌈H/2⌉, ⌈W/2⌉, 4C). No parameters, no
MACs (PatchMerging's norm and reduction are ordinary LayerNorm and Linear rows around it).

``ShiftedWindowAttention`` / ``ShiftedWindowAttentionV2``: torchvision's modules of those names, which
call ``shifted_window_attention``: the map padded with zeros (right, bottom) to whole windows, shifted
cyclically by ``shift_size`` (no shift along an axis the one window covers: torchvision's rule), cut into
windows of ``window_size``, multi-head self-attention inside each window (qkv projection, scaled — V2:
cosine — attention plus a relative position bias, the shift's mask, softmax, projection), then back and
cropped to N×H×W×C. V1's bias is a learned table of (2w₀−1)(2w₁−1)×heads; V2's comes from a small MLP
(Linear 2→512, ReLU, Linear 512→heads without bias) run once per forward on the fixed table of relative
coordinates, with a learned ``logit_scale`` per head. Parameters are exactly those of torchvision's modules
(V2's qkv bias keeps its k third, zeroed in forward, and counts). MACs are what FlopCounterMode counts (÷ 2):
the two projections and both attention products over every padded window, and V2's MLP once per forward,
whatever the batch.

torch.nn has no class for either (``OWN_MODULE``): verify builds its own modules (``convcalc.verify.swin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind
from .base import (
    REQUIRED,
    Layer,
    Shape,
    as_bool,
    as_float,
    as_int,
    as_tuple,
    register,
    table,
)
from .dims import near_divisor, shape_text

#: The hidden width of V2's continuous position bias MLP (torchvision's ``cpb_mlp``).
CPB_HIDDEN = 512


@register("PatchMerge")
@dataclass(frozen=True)
class PatchMerge(Layer):
    """(…, H, W, C) → (…, ⌈H/2⌉, ⌈W/2⌉, 4C): each 2×2 patch of positions as one position of 4C channels."""

    PARAMS: ClassVar[dict[str, Any]] = {}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> PatchMerge:
        return cls(type_name=type_name)

    def _output(self, shape: Shape) -> Shape:
        if len(shape) < 3:
            raise self.error(f"expects a channels-last input (…, H, W, C) of 3 or more dimensions, got {len(shape)}-D {shape_text(shape)}",
                             ErrorKind.RANK)
        *lead, h, w, c = shape
        return (*lead, -(-h // 2), -(-w // 2), 4 * c)

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        rank = len(shape)
        return (rank - 3, rank - 2, rank - 1)  # a 2×2 patch of H and W becomes channels

    def describe(self) -> str:
        return "2×2 patches → channels"


@register("ShiftedWindowAttention", "ShiftedWindowAttentionV2")
@dataclass(frozen=True)
class ShiftedWindowAttention(Layer):
    """Window multi-head self-attention of torchvision's Swin (V1, or V2 by its type name), N×H×W×C → N×H×W×C."""

    dim: int | None = None
    window_size: tuple[int, int] = (7, 7)
    shift_size: tuple[int, int] = (0, 0)
    num_heads: int = 1
    qkv_bias: bool = True
    proj_bias: bool = True
    attention_dropout: float = 0.0
    dropout: float = 0.0

    PARAMS: ClassVar[dict[str, Any]] = {
        "dim": None,
        "window_size": REQUIRED,
        "shift_size": 0,
        "num_heads": REQUIRED,
        "qkv_bias": True,
        "proj_bias": True,
        "attention_dropout": 0.0,
        "dropout": 0.0,
    }
    RANKS: ClassVar[tuple[int, ...] | None] = (4,)
    PRESERVES_SHAPE: ClassVar[bool] = True
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> ShiftedWindowAttention:
        dim = kw["dim"]
        return cls(
            type_name=type_name,
            dim=None if dim is None else as_int(type_name, "dim", dim),
            window_size=as_tuple(type_name, "window_size", kw["window_size"], 2),  # type: ignore[arg-type]
            shift_size=as_tuple(type_name, "shift_size", kw["shift_size"], 2, minimum=0),  # type: ignore[arg-type]
            num_heads=as_int(type_name, "num_heads", kw["num_heads"]),
            qkv_bias=as_bool(type_name, "qkv_bias", kw["qkv_bias"]),
            proj_bias=as_bool(type_name, "proj_bias", kw["proj_bias"]),
            attention_dropout=as_float(type_name, "attention_dropout", kw["attention_dropout"], low=0.0, high=1.0),
            dropout=as_float(type_name, "dropout", kw["dropout"], low=0.0, high=1.0),
        )

    @property
    def v2(self) -> bool:
        return self.type_name.endswith("V2")

    def torch_kwargs(self) -> dict[str, Any]:
        kwargs = super().torch_kwargs()
        kwargs["window_size"], kwargs["shift_size"] = list(self.window_size), list(self.shift_size)
        return kwargs

    def _rank_message(self, shape: Shape) -> str:
        return f"expects a channels-last 4-D input (N, H, W, C), got {len(shape)}-D {shape_text(shape)}"

    def bind(self, shape: Any) -> ShiftedWindowAttention:
        shape = self.check_input(shape)
        channels = shape[-1]
        if self.dim is not None and self.dim != channels:
            raise self.error(f"expects dim = {channels} (the last dimension of the input {shape_text(shape)}), but the spec says {self.dim};"
                             f" use dim: {channels}", ErrorKind.CHANNELS)
        if channels % self.num_heads:
            near = near_divisor(channels, self.num_heads)
            raise self.error(f"expects num_heads to divide the channels: the {channels} channels do not split into num_heads={self.num_heads} heads of equal size;"
                             f" use a num_heads that divides {channels}, such as {near}", ErrorKind.CHANNELS)
        return self if self.dim is not None else self.with_values(dim=channels)

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        return shape

    def windows(self, shape: Shape) -> tuple[tuple[int, int], tuple[int, int], int]:
        """((padded H, padded W), the shift torchvision applies, the number of windows over the batch)."""
        n, h, w, _ = self.check_input(shape)
        padded = tuple(-(-size // win) * win for size, win in zip((h, w), self.window_size))
        # torchvision: no shift along an axis the one window covers (the window is larger than the padded map)
        shift = tuple(0 if win >= size else s for win, size, s in zip(self.window_size, padded, self.shift_size))
        count = n * (padded[0] // self.window_size[0]) * (padded[1] // self.window_size[1])
        return padded, shift, count  # type: ignore[return-value]

    @property
    def _table(self) -> int:
        """Rows of the relative position bias table: every offset between two positions of a window."""
        return (2 * self.window_size[0] - 1) * (2 * self.window_size[1] - 1)

    @property
    def num_params(self) -> int:
        if self.dim is None:
            raise self.error("dim is not known yet: give dim or an input shape")
        c, heads = self.dim, self.num_heads
        params = 3 * c * c + (3 * c if self.qkv_bias else 0) + c * c + (c if self.proj_bias else 0)
        if self.v2:  # logit_scale (heads×1×1) and cpb_mlp: Linear(2, 512) with bias, Linear(512, heads) without
            return params + heads + 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads
        return params + self._table * heads

    def macs(self, shape: Any) -> int:
        shape = self.check_input(shape)
        self.output_shape(shape)
        c = shape[-1]
        _, _, count = self.windows(shape)
        tokens = self.window_size[0] * self.window_size[1]
        rows = count * tokens  # every position of every padded window
        projections = rows * c * 3 * c + rows * c * c  # qkv and proj
        attention = 2 * count * tokens * tokens * c  # q·kᵀ and attn·v, all heads together
        cpb = self._table * (2 * CPB_HIDDEN + CPB_HIDDEN * self.num_heads) if self.v2 else 0  # once per forward
        return projections + attention + cpb

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        return (1, 2, 3)  # a position attends to the others of its window, over all channels

    def describe(self) -> str:
        window = "×".join(map(str, self.window_size))
        shift = f" shift {'×'.join(map(str, self.shift_size))}" if any(self.shift_size) else ""
        return f"window {window}{shift}, {self.num_heads} heads" + (", cosine" if self.v2 else "")


LAYERS = table(PatchMerge, ShiftedWindowAttention)
