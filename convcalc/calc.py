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
from .layers.base import AXES, layer_names, lookup, suggest
from .layers.catalog import module_of
from .numbers import decimal, is_decimal, is_whole, shorten, whole
from .sizes import format_size

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
    """One layer applied to spatial sizes (a NamedTuple: cheap to define on the start-up path).

    ``input``/``output`` are the spatial sizes (a flat output, after Flatten or Linear, is its
    feature count); ``in_channels``/``out_channels`` are the channels when they are known
    (None: the chain was not told). ``params``/``macs`` are None where the channels are unknown.
    """

    layer: Layer
    input: tuple[int, ...]
    output: tuple[int, ...]
    explain: list[str]
    warnings: list[str]
    params: int | None = None
    macs: int | None = None
    channels: int = 1  # output channels (1 when unknown)
    in_channels: int | None = None
    out_channels: int | None = None
    flat: bool = False  # the output is a feature vector (Flatten, Linear)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "layer": self.layer.type_name,
            "input": list(self.input),
            "output": list(self.output),
            "arguments": jsonable(self.layer.torch_kwargs()),
            "explain": self.explain,
            "warnings": self.warnings,
        }
        if self.in_channels is not None:
            data["input_channels"] = self.in_channels
        if self.out_channels is not None:
            data["output_channels"] = self.out_channels
        if self.params is not None:
            data["params"] = self.params
            data["macs"] = self.macs
        return data


class Reading(NamedTuple):
    """How a calculator size was read: the spatial sizes, the channels written in front (or
    None), whether one number stood for a square, and a warning when the text is ambiguous."""

    spatial: tuple[int, ...]
    channels: int | None
    square: bool
    warning: str | None = None


def read_size(
    size: Sequence[int], dims: int | None = None, *, in_channels: int | None = None, layer: str = "conv",
    flags: tuple[str, str | None] = ("--dims ", "--in-channels "),
) -> Reading:
    """Read ``--in`` of a calculator: ``227``, ``HxW``, ``DxHxW``, or channels first (``--dims``).

    One more number than ``dims`` is channels first (C×L, C×H×W). Without ``--dims``, two numbers
    are H×W and three D×H×W, unless ``in_channels`` equals the first (then C×L, C×H×W). The
    channels-first reading is what ``model --input`` gives the same text, so where it is the
    likelier one the reading comes with a warning that names both readings and how to pick one:
    three numbers always (C×H×W is what images are), two numbers when the first looks like a
    signal's channel count (:func:`looks_like_channels`: ``3x224``, ``1x28``; not ``32x64``).
    ``layer`` is the calculator's word (conv, tconv, maxpool …) and ``flags`` how the user sets
    dims and in_channels (None: there is no such option), for the message. Raises SpecError (a
    usage error).
    """
    size = tuple(size)
    if len(size) == 1:
        return Reading(size * (dims or 2), None, True)
    if dims is None:
        if len(size) > 3:
            raise SpecError(f"{format_size(size)} has {len(size)} sizes; convolutions have 1 to 3 spatial axes (C×D×H×W needs --dims 3)")
        if in_channels == size[0]:
            return Reading(size[1:], size[0], False)
        if in_channels is not None or (len(size) == 2 and not looks_like_channels(size)):
            return Reading(size, None, False)
        return Reading(size, None, False, _both_readings(size, layer, flags))
    if len(size) == dims:
        return Reading(size, None, False)
    text = format_size(size)
    if len(size) == dims + 1:
        if in_channels is not None and in_channels != size[0]:
            raise SpecError(
                f"{text} with --dims {dims} is C×{'×'.join(AXES[dims])} with {size[0]} channels, but --in-channels says {in_channels};"
                f" drop one of them, or write --in {format_size(size[1:])}"
            )
        return Reading(size[1:], size[0], False)
    raise SpecError(
        f"{text} has {len(size)} sizes, but the layer is {dims}-D; give 1 or {dims} sizes (or {dims + 1}: channels first)"
    )


#: A first number at most this, and at most a quarter of the second, looks like a channel count
#: (grey, stereo, RGB, RGBA) in front of a length: ``3x224`` is more likely C×L than 3 rows.
CHANNEL_LIKE = 4


def looks_like_channels(size: Sequence[int]) -> bool:
    """Whether two numbers read as H×W look more like C×L (``3x224``, ``1x28``; not ``32x64``, ``4x3``)."""
    return size[0] <= CHANNEL_LIKE and size[1] >= CHANNEL_LIKE * size[0]


def _both_readings(size: tuple[int, ...], layer: str, flags: tuple[str, str | None]) -> str:
    """The warning of a size read as spatial that may be channels first: both readings, and how to pick."""
    rank = len(size)
    spatial, first = ("H×W", "C×L") if rank == 2 else ("D×H×W", "C×H×W")
    rest = f"length {size[1]}" if rank == 2 else format_size(size[1:])
    channels = flags[1]
    also = f" (or {channels}{size[0]})" if channels else ""
    return (
        f"{format_size(size)} is read as {spatial}, the input of a {layer_type(layer, rank)}; if it is {first}"
        f" ({size[0]} channel{'s' if size[0] != 1 else ''} of {rest}, a {layer_type(layer, rank - 1)}), add {flags[0]}{rank - 1}{also};"
        f" {flags[0]}{rank} keeps the {rank}-D reading without this warning"
    )


def layer_type(word: str, dims: int) -> str:
    """``("conv", 2)`` → ``"Conv2d"``; a torch class name is returned as torch spells it."""
    template = WORDS.get(word.lower().replace("_", "").replace("-", ""))
    if template is not None:
        return template.format(dims)
    if module_of(word) is None:
        raise SpecError(f"unknown layer {shorten(word, 40)!r}{suggest(word, [*WORDS, *layer_names()])}")
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
    return apply(calculator_layer(type_name, in_channels, kwargs), size, channels=in_channels)


def calculate_output(type_name: str, size: Sequence[int], *, in_channels: int = 1, **kwargs: Any) -> tuple[int, ...]:
    """The output ``(channels, *spatial)`` that :func:`calculate` finds, without its explanation,
    warnings and costs: the same layer and rules, the hot path of ``convcalc batch``."""
    return calculator_layer(type_name, in_channels, kwargs).output_shape((in_channels, *size))


def calculator_layer(type_name: str, in_channels: int, kwargs: dict[str, Any]) -> Layer:
    """The calculators' layer: torch's arguments, with ``in_channels`` (default 1) and
    ``out_channels`` (default 1) filled in where the layer takes them."""
    if takes(type_name, "in_channels"):
        kwargs["in_channels"] = in_channels
    if takes(type_name, "out_channels") and "out" not in kwargs:
        kwargs.setdefault("out_channels", 1)
    return one_input(make_layer(type_name, **kwargs))


def one_input(layer: Layer) -> Layer:
    """``layer``, or the refusal of a merge where one tensor is followed (a chain step, a calculator or batch row)."""
    if layer.MANY_INPUTS:
        raise SpecError(
            f"{layer.type_name} joins two or more tensors, and a chain or a calculator follows one; write the model as a spec"
            " (name: and from: on its entries) for convcalc model"
        )
    return layer


def takes(type_name: str, name: str) -> bool:
    return name in lookup(type_name)[1].PARAMS


def parse_step(text: str, dims: int) -> tuple[str, dict[str, Any]]:
    """``"conv:k=5,s=2"`` → ``("Conv2d", {"k": 5, "s": 2})``. Values: ints, ``3x5``, same/valid, true/false.

    A step in torch's call syntax, ``"Conv2d(1, 16, 3)"`` or ``"nn.MaxPool2d(2)"``, is read by
    :mod:`convcalc.torchcall` (with ``ast``, never ``eval``).
    """
    if "(" in text:
        from .torchcall import parse_call

        return parse_call(text)
    word, _, rest = text.partition(":")
    if not word:
        raise SpecError(f"chain step {shorten(text, 60)!r} has no layer name; write it like conv:k=5 or maxpool:k=2")
    type_name = layer_type(word, dims)
    kwargs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.replace(":", ",").split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SpecError(f"chain step {shorten(text, 60)!r}: {shorten(item, 40)!r} is not key=value (e.g. k=3)")
        if key in kwargs:
            raise SpecError(f"chain step {shorten(text, 60)!r} sets {key} twice; keep one {key}=")
        kwargs[key] = parse_value(value.strip())
    return type_name, kwargs


def parse_value(text: str) -> Any:
    """A chain value: ``5`` → 5, ``3x5`` → [3, 5], ``0.5`` → 0.5, ``true`` → True, ``none`` → None, else the text.

    Numbers follow numbers.py's rule (digits 0-9): ``٣`` and ``1_1`` stay text, which the layer refuses.
    """
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    parts = text.replace("×", "x").split("x")
    if all(is_whole(p) for p in parts):
        numbers = [whole(p) for p in parts]
        return numbers[0] if len(numbers) == 1 else numbers
    return decimal(text) if is_decimal(text) else text


#: Layer families whose output shape does not depend on the channel count (a chain may run them
#: before it knows the channels); every other layer needs the channels (Flatten, Linear, GroupNorm …).
_CHANNEL_FREE_MODULES = ("conv", "tconv", "pool", "activation", "padding")
_CHANNEL_FREE_TYPES = ("batchnorm", "instancenorm", "upsampl", "identity")


def _needs_channels(layer: Layer) -> bool:
    name = layer.type_name.lower()
    if module_of(name) in _CHANNEL_FREE_MODULES or name.startswith(_CHANNEL_FREE_TYPES):
        return getattr(layer, "groups", 1) != 1 or name in ("prelu", "glu", "softmax2d")
    return True


def chain(size: Sequence[int], steps: Sequence[str], *, dims: int | None = None, channels: int | None = None, explain: bool = True) -> list[Step]:
    """Apply chain steps one after another: ``chain((28, 28), ["conv:k=5", "maxpool:k=2"])``.

    ``channels`` are the input's channels when known (C×H×W, ``--in-channels``); a step's
    ``out_channels``/``in_channels`` make them known from there on. Each step runs on one
    sample with a batch axis (``(1, C, *spatial)``), as torch would, so that Flatten hands
    Linear channels × spatial features. A layer whose result depends on unknown channels is
    refused with the way to give them. ``explain=False`` leaves each step's worked explanation
    empty (the plain ``28 → 24 → 12`` line does not show it; it is most of a step's cost).
    """
    dims = dims or len(size)
    results: list[Step] = []
    shape: tuple[int, ...] = (channels or 1, *size)  # one sample; shape[0] is the channel count
    known = channels is not None
    flat = False
    for number, text in enumerate(steps, start=1):
        try:
            type_name, kwargs = parse_step(text, dims)
            makes = "out" in kwargs or "out_channels" in kwargs
            if takes(type_name, "out_channels") and not makes:
                kwargs["out_channels"] = shape[0]
            layer = one_input(make_layer(type_name, **kwargs))
            given = getattr(layer, "in_channels", None)
            if not known and isinstance(given, int) and not flat:
                shape, known = (given, *shape[1:]), True
            if not known and _needs_channels(layer):
                raise SpecError(
                    f"{layer.type_name} needs the number of channels, which the chain does not know here;"
                    " give --in-channels N (or the input as C×H×W with --dims), or out= on the layer that makes them"
                )
            step = _run(layer, shape, known, makes, explain)
        except ConvcalcError as error:
            raise error.within(f"step {number} ({shorten(text, 60)})")
        results.append(step)
        flat = step.flat
        shape = (step.output[0],) if flat else (step.channels, *step.output)
        known = known or step.out_channels is not None
    return results


def _run(layer: Layer, shape: tuple[int, ...], known: bool, makes: bool, explain: bool = True) -> Step:
    """One chain step on one sample ``shape`` (channels first, or a flat feature vector);
    ``known``: the channels of ``shape`` are known; ``makes``: the step sets its out_channels."""
    batched = (1, *shape)
    bound = layer.bind(batched)
    out = bound.output_shape(batched)
    if len(out) < 2 or out[0] != 1:  # a Permute moving dimension 0, a Scale or Bias broadcast to a batch, Flatten(0)
        weight = f"a shape of at most {len(shape)} size{'s' if len(shape) != 1 else ''}"
        keep = {"Permute": "dims that start with 0", "Scale": weight, "Bias": weight, "Flatten": "start_dim 1"}
        raise bound.error(
            f"its output {'×'.join(map(str, out))} is no longer the one sample the chain follows (1×{'×'.join(map(str, shape))},"
            f" the batch first); keep dimension 0 in place ({keep.get(bound.type_name, 'leave dimension 0 alone')}),"
            " or write the layers as a spec for convcalc model"
        )
    flat = len(out) == 2
    out_known = known or makes
    params = bound.num_params if known else None
    return Step(
        layer=bound,
        input=tuple(shape) if len(shape) == 1 else tuple(shape[1:]),
        output=tuple(out[1:]) if flat else tuple(out[2:]),
        explain=bound.explain(batched) if explain else [],
        warnings=bound.warnings(batched),
        params=params,
        macs=bound.macs(batched) if params is not None else None,
        channels=1 if flat else out[1],
        in_channels=shape[0] if known and len(shape) > 1 else None,
        out_channels=out[1] if out_known and not flat else None,
        flat=flat,
    )
