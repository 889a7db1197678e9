"""The calculator behind ``conv``, ``tconv``, ``pool`` and ``chain``: spatial sizes in, a report out.

Calculator inputs are spatial sizes only (``227`` or ``32x64``); a layer sees them as one
unbatched channel ``(C, *spatial)``. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .errors import ConvcalcError, SpecError
from .jsonable import jsonable
from .layers import Layer, make_layer
from .layers.base import layer_names, lookup, suggest
from .layers.catalog import module_of

#: Short layer words of the calculator and chain, per number of spatial dimensions.
WORDS = {
    "conv": "Conv{}d",
    "tconv": "ConvTranspose{}d",
    "deconv": "ConvTranspose{}d",
    "maxpool": "MaxPool{}d",
    "pool": "MaxPool{}d",
    "avgpool": "AvgPool{}d",
    "adaptiveavgpool": "AdaptiveAvgPool{}d",
    "adaptivemaxpool": "AdaptiveMaxPool{}d",
}


class Step(NamedTuple):
    """One layer applied to spatial sizes (a NamedTuple: cheap to define on the start-up path)."""

    layer: Layer
    input: tuple[int, ...]
    output: tuple[int, ...]
    explain: list[str]
    warnings: list[str]
    params: int | None = None
    macs: int | None = None
    channels: int = 1  # output channels

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "layer": self.layer.type_name,
            "input": list(self.input),
            "output": list(self.output),
            "arguments": jsonable(self.layer.torch_kwargs()),
            "explain": self.explain,
            "warnings": self.warnings,
        }
        if self.params is not None:
            data["params"] = self.params
            data["macs"] = self.macs
        return data


def layer_type(word: str, dims: int) -> str:
    """``("conv", 2)`` → ``"Conv2d"``; a torch class name is returned as torch spells it."""
    template = WORDS.get(word.lower().replace("_", "").replace("-", ""))
    if template is not None:
        return template.format(dims)
    if module_of(word) is None:
        raise SpecError(f"unknown layer {word!r}{suggest(word, [*WORDS, *layer_names()])}")
    return lookup(word)[0]


def apply(layer: Layer, size: Sequence[int], *, channels: int = 1) -> Step:
    """Run ``layer`` on spatial ``size`` with ``channels`` input channels (unbatched)."""
    shape = (channels, *size)
    bound = layer.bind(shape)
    out = bound.output_shape(shape)
    try:
        params: int | None = bound.num_params
    except ConvcalcError:
        params = None
    return Step(
        layer=bound,
        input=tuple(size),
        output=tuple(out[1:]),
        explain=bound.explain(shape),
        warnings=bound.warnings(shape),
        params=params,
        macs=bound.macs(shape) if params is not None else None,
        channels=out[0],
    )


def calculate(type_name: str, size: Sequence[int], *, in_channels: int = 1, **kwargs: Any) -> Step:
    """One layer on spatial ``size``: ``calculate("Conv2d", (227, 227), kernel_size=11, stride=4)``."""
    if _takes(type_name, "in_channels"):
        kwargs["in_channels"] = in_channels
    if _takes(type_name, "out_channels") and "out" not in kwargs:
        kwargs.setdefault("out_channels", 1)
    return apply(make_layer(type_name, **kwargs), size, channels=in_channels)


def _takes(type_name: str, name: str) -> bool:
    return name in lookup(type_name)[1].PARAMS


def parse_step(text: str, dims: int) -> tuple[str, dict[str, Any]]:
    """``"conv:k=5,s=2"`` → ``("Conv2d", {"k": 5, "s": 2})``. Values: ints, ``3x5``, same/valid, true/false."""
    word, _, rest = text.partition(":")
    if not word:
        raise SpecError(f"chain step {text!r} has no layer name; write it like conv:k=5 or maxpool:k=2")
    type_name = layer_type(word, dims)
    kwargs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.replace(":", ",").split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SpecError(f"chain step {text!r}: {item!r} is not key=value (e.g. k=3)")
        kwargs[key.strip()] = parse_value(value.strip())
    return type_name, kwargs


def parse_value(text: str) -> Any:
    """A chain value: ``5`` → 5, ``3x5`` → [3, 5], ``true`` → True, ``none`` → None, else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    parts = text.replace("×", "x").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
    return numbers[0] if len(numbers) == 1 else numbers


def chain(size: Sequence[int], steps: Sequence[str], *, dims: int | None = None) -> list[Step]:
    """Apply chain steps one after another: ``chain((28, 28), ["conv:k=5", "maxpool:k=2"])``."""
    dims = dims or len(size)
    results: list[Step] = []
    current = tuple(size)
    channels = 1
    for number, text in enumerate(steps, start=1):
        try:
            type_name, kwargs = parse_step(text, dims)
            if _takes(type_name, "out_channels") and "out" not in kwargs:
                kwargs.setdefault("out_channels", channels)
            step = apply(make_layer(type_name, **kwargs), current, channels=channels)
        except ConvcalcError as error:
            error.message = f"step {number} ({text}): {error.message}"
            raise
        results.append(step)
        current = step.output
        channels = step.channels
    return results
