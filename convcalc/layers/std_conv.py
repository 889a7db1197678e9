"""StdConv2d and ScaledStdConv2d: timm's convolutions with weight standardisation (BiT's ResNet-V2, the
normaliser-free NF-ResNets and NFNets).

Each computes ``F.conv2d`` with its weight standardised per output channel first (``F.batch_norm`` of the
weight viewed as (1, out_channels, fan_in), over the fan-in, with ``eps``); ScaledStdConv2d then multiplies
each channel by a learned ``gain`` times ``gamma / sqrt(fan_in)``. The shapes, the output sizes and the
multiply-accumulates are the convolution's (:class:`~.conv.Conv`'s, whose rules they are: torch's counter
sees no product in the standardisation); ScaledStdConv2d has ``out_channels`` more parameters (the gain).
torch.nn has neither class (``OWN_MODULE``): verify builds its own, computing as timm's forward does. There is
no ``padding_mode`` (timm calls ``F.conv2d``, which pads with zeros).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Shape, as_float, product, register, table
from .conv import Conv


@register("StdConv2d")
@dataclass(frozen=True)
class StdConv2d(Conv):
    """timm's ``StdConv2d``: a Conv2d whose weight is standardised (zero mean, unit variance per output channel)."""

    eps: float = 1e-6

    PARAMS: ClassVar[dict[str, Any]] = {**{k: v for k, v in Conv.PARAMS.items() if k != "padding_mode"}, "eps": 1e-6}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: Mapping[str, Any]) -> StdConv2d:
        conv = Conv.create(type_name, {**kw, "padding_mode": "zeros"})
        extra = {name: as_float(type_name, name, kw[name]) for name in cls.PARAMS if name not in Conv.PARAMS}
        return cls(**{**conv.__dict__, **extra})

    def _output(self, shape: Shape) -> Shape:
        out = super()._output(shape)
        fan_in = shape[-3] // self.groups * product(self.kernel_size)
        if fan_in < 2:  # F.batch_norm in training mode: "Expected more than 1 value per channel"
            raise self.error(
                f"each output channel's weight has fan_in = in_channels / groups × kh × kw = {fan_in} value, which cannot be"
                " standardised (its variance needs 2); use a kernel_size of at least 2 or 2 input channels per group"
            )
        return out

    def describe(self) -> str:
        return f"{super().describe()} standardised"


@register("ScaledStdConv2d")
@dataclass(frozen=True)
class ScaledStdConv2d(StdConv2d):
    """timm's ``ScaledStdConv2d``: StdConv2d's standardised weight times ``gain · gamma / sqrt(fan_in)`` per output
    channel, ``gain`` learned (out_channels values)."""

    gamma: float = 1.0

    PARAMS: ClassVar[dict[str, Any]] = {**StdConv2d.PARAMS, "gamma": 1.0}

    @property
    def num_params(self) -> int:
        return super().num_params + self.out_channels


LAYERS = table(StdConv2d, ScaledStdConv2d)
