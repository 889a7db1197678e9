"""ClassToken: learned vectors put in front of a sequence of tokens (a Vision Transformer's class token).

``torch.cat([token.expand(n, -1, -1), x], dim=1)`` with ``token`` an ``nn.Parameter`` of shape
``(1, tokens, *features)``: an N×L×C input becomes N×(L+tokens)×C (torchvision's ``class_token``,
timm's ``cls_token``; DeiT's class and distillation tokens are ``tokens: 2``). The input has any rank
from 2 on, (N, L, …), and the tokens are prepended along dimension 1; ``features`` (each token's sizes,
the input's dimensions after the first two: ``[768]`` of N×196×768) is inferred from the input, or
checked where written. The parameters are ``tokens × prod(features)``; MACs count 0 (a copy, as
FlopCounterMode counts ``torch.cat``). torch has no ``nn.ClassToken``: verify builds its own module,
a ``weight`` parameter of ``(1, tokens, *features)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ErrorKind, SpecError
from ..numbers import show
from ..sizes import MAX_SIZE
from .base import (
    CHANNELS,
    IDENTITY,
    REQUIRED,
    SPATIAL,
    Layer,
    Roles,
    Shape,
    as_int,
    product,
    register,
    table,
)
from .dims import shape_text, times


def _features(type_name: str, value: Any) -> tuple[int, ...] | None:
    """``768`` or ``[768]`` (an N×L×768 input), ``[]`` (an N×L one), or None: inferred from the input."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise SpecError(
            f"{type_name}: features must be each token's sizes, such as 768 (of an N×L×768 input), got {show(value)}",
            layer=type_name,
        )
    values = value if isinstance(value, (list, tuple)) else [value]
    return tuple(as_int(type_name, "features", v) for v in values)


@register("ClassToken")
@dataclass(frozen=True)
class ClassToken(Layer):
    """``torch.cat([token.expand(n, -1, -1), x], dim=1)``: ``tokens`` learned vectors before the input's."""

    tokens: int = 1
    features: tuple[int, ...] | None = None

    PARAMS: ClassVar[dict[str, Any]] = {"tokens": 1, "features": None}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> ClassToken:
        # tokens 0 would be torch's cat with an empty tensor, which changes nothing: no layer to write
        return cls(type_name=type_name, tokens=as_int(type_name, "tokens", kw["tokens"]), features=_features(type_name, kw["features"]))

    def torch_kwargs(self) -> dict[str, Any]:
        if self.features is None:
            raise self.error("features is not known yet: give features or an input shape")
        return {"tokens": self.tokens, "features": list(self.features)}

    def bind(self, shape: Sequence[int]) -> ClassToken:
        shape = self.check_input(shape)
        if len(shape) < 2:
            raise self.error(
                f"expects an input of at least 2 dimensions, (N, L, …) with the tokens prepended along dimension 1,"
                f" got {len(shape)}-D {shape_text(shape)}",
                ErrorKind.RANK,
            )
        trailing = tuple(shape[2:])
        if self.features is None:
            return self.with_values(features=trailing)
        if self.features != trailing:
            fix = str(trailing[0]) if len(trailing) == 1 else str(list(trailing))
            raise self.error(
                f"expects features = {list(trailing)} (each token's sizes: the input {shape_text(shape)} after its first two"
                f" dimensions), but the spec says {list(self.features)}; torch.cat needs the sizes of every dimension but 1"
                f" to match; use features: {fix}",
                ErrorKind.FEATURES,
            )
        return self

    def _output(self, shape: Shape) -> Shape:
        self.bind(shape)
        if shape[1] + self.tokens > MAX_SIZE:
            room = MAX_SIZE - shape[1]
            fix = f"use at most {room} tokens" if room >= 1 else f"use a sequence of at most {MAX_SIZE - self.tokens} positions"
            raise self.error(f"{shape[1]} + {self.tokens} tokens is beyond convcalc's limit of {MAX_SIZE:.0e}; {fix}")
        return (shape[0], shape[1] + self.tokens, *shape[2:])

    @property
    def num_params(self) -> int:
        if self.features is None:
            raise self.error("features is not known yet: give features or an input shape")
        return self.tokens * product(self.features)

    def window(self, shape: Shape) -> str:
        """Read as (N, C, *spatial), the tokens are more channels: each spatial position keeps its field."""
        return IDENTITY

    def touched_axes(self, shape: Shape) -> tuple[int, ...]:
        """Along dimension 1 an output position is not its own input position (they move by ``tokens``)."""
        return (1,)

    def explain(self, shape: Sequence[int]) -> list[str]:
        bound = self.bind(shape)
        size, features = shape[1], bound.features or ()
        tokens = f"{self.tokens} token{'s' if self.tokens != 1 else ''}"
        return [f"dimension 1: {size} + {tokens} = {size + self.tokens}; {self.tokens} × {times(features) or 1} = {bound.num_params} parameters"]

    def describe(self) -> str:
        of = "?" if self.features is None else (times(self.features) or "scalar")
        return f"{self.tokens} token{'s' if self.tokens != 1 else ''} of {of}"


@register("Token")
@dataclass(frozen=True)
class Token(Layer):
    """``token.expand(n, -1, …)``: a learned tensor of ``shape`` (1, tokens, *features) repeated along the batch of
    its input, which gives nothing else (CaiT's class token, updated by its class-attention blocks, then put before
    the patch tokens). Output (N, tokens, *features); parameters prod(shape); MACs 0."""

    shape: tuple[int, ...] = (1, 1)

    PARAMS: ClassVar[dict[str, Any]] = {"shape": REQUIRED}
    OWN_MODULE: ClassVar[bool] = True

    @classmethod
    def create(cls, type_name: str, kw: dict[str, Any]) -> Token:
        value = kw["shape"]
        if isinstance(value, bool) or not isinstance(value, (list, tuple)) or len(value) < 2:
            raise SpecError(f"{type_name}: shape must be the parameter's sizes (1, tokens, *features), such as [1, 1, 192], got {show(value)}",
                            layer=type_name)
        shape = tuple(as_int(type_name, "shape", v) for v in value)
        if shape[0] != 1:
            raise SpecError(f"{type_name}: shape {list(shape)} must start with 1, the batch it is repeated along; use shape: {[1, *shape[1:]]}",
                            layer=type_name)
        if len(shape) > 6 and product(shape) > MAX_SIZE:
            raise SpecError(f"{type_name}: shape {list(shape)} is beyond convcalc's limit", layer=type_name)
        return cls(type_name=type_name, shape=shape)

    def torch_kwargs(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def _output(self, shape: Shape) -> Shape:
        return (shape[0], *self.shape[1:])

    @property
    def num_params(self) -> int:
        return product(self.shape)

    def axis_roles(self, shape: Shape, out: Shape, roles: Roles) -> Roles:
        return (roles[0], SPATIAL, *(CHANNELS,) * (len(out) - 2))  # the batch, the tokens, their features

    def describe(self) -> str:
        return f"{self.shape[1]} token{'s' if self.shape[1] != 1 else ''} of {times(self.shape[2:]) or 'scalars'}"


LAYERS = table(ClassToken, Token)
