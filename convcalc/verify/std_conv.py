"""verify's modules for the StdConv2d / ScaledStdConv2d families (timm's weight-standardised convolutions), computing
as timm's forward does, with timm's parameter names (``weight``, ``bias``, ``gain``) so that a model's weights load."""

from __future__ import annotations

from typing import Any


def std_conv_classes(torch: Any) -> dict[str, Any]:
    nn, F = torch.nn, torch.nn.functional

    class StdConv2d(nn.Conv2d):  # type: ignore[misc,name-defined]
        """``F.conv2d`` with the weight standardised per output channel: ``F.batch_norm`` of (1, out, fan_in), eps."""

        def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1, groups: int = 1, bias: bool = True, eps: float = 1e-6) -> None:
            super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                             groups=groups, bias=bias)
            self.eps = eps

        def gains(self) -> Any:
            return None

        def forward(self, x: Any) -> Any:
            weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, weight=self.gains(), training=True,
                                  momentum=0.0, eps=self.eps).reshape_as(self.weight)
            return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    class ScaledStdConv2d(StdConv2d):
        """StdConv2d times ``gain · gamma / sqrt(fan_in)`` per output channel (``gain``: a learned (out, 1, 1, 1))."""

        def __init__(self, *args: Any, gamma: float = 1.0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.scale = gamma * self.weight[0].numel() ** -0.5
            self.gain = nn.Parameter(torch.ones((self.out_channels, 1, 1, 1)))

        def gains(self) -> Any:
            return (self.gain * self.scale).view(-1)

    return {"StdConv2d": StdConv2d, "ScaledStdConv2d": ScaledStdConv2d}
