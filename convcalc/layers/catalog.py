"""Which module defines each layer type, so that a family is imported only when it is used.

``tests/test_structure.py`` proves this table and the family modules' ``LAYERS`` tables name the same layers.
"""

from __future__ import annotations

_FAMILIES: dict[str, tuple[str, ...]] = {
    "conv": ("Conv1d", "Conv2d", "Conv3d"),
    "tconv": ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "pool": (
        "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
        "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    ),
    "unpool": ("MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"),
    "narrow": ("Narrow", "Slice"),
    "fold": ("Unfold", "Fold"),
    "std_conv": ("StdConv2d", "ScaledStdConv2d"),
    "attention_bias": ("AttentionBias",),
    "linear": ("Linear", "Identity", "Flatten", "Unflatten", "Permute"),
    "norm": (
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm",
        "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm", "LocalResponseNorm",
    ),
    "activation": (
        "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
        "Hardswish", "Hardsigmoid", "Hardtanh", "Sigmoid", "Tanh", "Softplus", "Softsign",
        "Tanhshrink", "Threshold", "Softmax", "LogSoftmax", "Softmin",
        "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
        "RReLU", "LogSigmoid", "Hardshrink", "Softshrink", "Softmax2d", "GLU", "FeatureAlphaDropout",
    ),
    "resize": (
        "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
        "ChannelShuffle",
    ),
    "padding": (
        "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
        "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
        "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
        "CircularPad1d", "CircularPad2d", "CircularPad3d",
    ),
    "merge": ("Add", "Subtract", "Multiply", "Divide", "Concat"),
    "scale": ("Scale", "Bias"),
    "tokens": ("ClassToken", "Token"),
    "reduce": ("Sum", "Mean", "Amax", "Norm"),
    "constant": ("Rescale",),
    "matmul": ("MatMul", "ScaledDotProductAttention"),
    "attention": ("MultiheadAttention",),
    "relative_attention": ("RelativePositionalMultiHeadAttention",),
    "swin": ("PatchMerge", "ShiftedWindowAttention", "ShiftedWindowAttentionV2"),
}  # fmt: skip

#: Every layer type as torch spells it → the module under ``convcalc.layers`` that defines it.
CATALOG: dict[str, str] = {name: module for module, names in _FAMILIES.items() for name in names}
_LOWER = {name.lower(): module for name, module in CATALOG.items()}


def module_of(type_name: str) -> str | None:
    """The defining module of a layer type (any case), or None if convcalc does not know it."""
    return _LOWER.get(type_name.lower())


def family_modules() -> list[str]:
    return list(_FAMILIES)
