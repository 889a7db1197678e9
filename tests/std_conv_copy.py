"""A copy of timm's weight-standardised convolutions as timm 1.0.31 writes them (timm/layers/std_conv.py and
get_padding from timm/layers/padding.py, Apache-2.0, Copyright 2021 Ross Wightman), minus the device/dtype
arguments, for the tests that run without timm (CI has none); then a small normaliser-free net around them,
written like timm's NF-ResNet block (x * beta before the convs, out * alpha + shortcut)."""

# ruff: noqa
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F


def get_padding(kernel_size: int, stride: int = 1, dilation: int = 1, **_) -> Union[int, list]:
    if any([isinstance(v, (tuple, list)) for v in [kernel_size, stride, dilation]]):
        kernel_size, stride, dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        return [get_padding(*a) for a in zip(kernel_size, stride, dilation)]
    padding = ((stride - 1) + dilation * (kernel_size - 1)) // 2
    return padding


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class StdConv2d(nn.Conv2d):
    """Conv2d with Weight Standardization. Used for BiT ResNet-V2 models."""
    def __init__(
            self,
            in_channel: int,
            out_channels: int,
            kernel_size: Union[int, Tuple[int, int]],
            stride: Union[int, Tuple[int, int]] = 1,
            padding: Optional[Union[int, Tuple[int, int]]] = None,
            dilation: Union[int, Tuple[int, int]] = 1,
            groups: int = 1,
            bias: bool = False,
            eps: float = 1e-6,
    ):
        if padding is None:
            padding = get_padding(kernel_size, stride, dilation)
        super().__init__(
            in_channel, out_channels, kernel_size, stride=stride,
            padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.eps = eps

    def forward(self, x):
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,  # running_mean
            None,  # running_var
            training=True,
            momentum=0.,
            eps=self.eps,
        ).reshape_as(self.weight)
        x = F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return x


class ScaledStdConv2d(nn.Conv2d):
    """Conv2d layer with Scaled Weight Standardization."""

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: Union[int, Tuple[int, int]],
            stride: Union[int, Tuple[int, int]] = 1,
            padding: Optional[Union[int, Tuple[int, int], str]] = None,
            dilation: Union[int, Tuple[int, int]] = 1,
            groups: int = 1,
            bias: bool = True,
            gamma: float = 1.0,
            eps: float = 1e-6,
            gain_init: float = 1.0,
    ):
        if padding is None:
            padding = get_padding(kernel_size, stride, dilation)
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, bias=bias)
        self.scale = gamma * self.weight[0].numel() ** -0.5  # gamma * 1 / sqrt(fan-in)
        self.eps = eps
        self.gain_init = gain_init

        self.gain = nn.Parameter(torch.empty((self.out_channels, 1, 1, 1)))

        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Only initialize gain if it exists (for the second call)
        if hasattr(self, 'gain'):
            torch.nn.init.constant_(self.gain, self.gain_init)
            # Also reset parent parameters if needed
            super().reset_parameters()
        # On first call (from super().__init__), do nothing

    def forward(self, x):
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,  # running_mean
            None,  # running_var
            weight=(self.gain * self.scale).view(-1),
            training=True,
            momentum=0.,
            eps=self.eps,
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class NormFreeLike(nn.Module):
    """A stem and one NF-ResNet-like block: ScaledStdConv2d (gamma of a ReLU, 1.7139) and StdConv2d."""

    def __init__(self):
        super().__init__()
        self.stem = ScaledStdConv2d(3, 8, 3, stride=2, gamma=1.7139)
        self.conv1 = ScaledStdConv2d(8, 8, 3, groups=2, gamma=1.7139)
        self.conv2 = StdConv2d(8, 8, 1, bias=True)
        self.beta, self.alpha = 0.9, 0.2
        with torch.no_grad():
            for m in (self.stem, self.conv1):
                m.gain.uniform_(0.5, 1.5)

    def forward(self, x):
        x = self.stem(x)
        out = self.conv1(F.relu(x) * self.beta)
        out = self.conv2(F.relu(out))
        return out * self.alpha + x
