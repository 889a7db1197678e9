"""The rows emit-spec makes from fx nodes (:class:`Entry`), shared by the mapping (fx_emission), the writing of
the spec (fx_text) and its proof (fx_proof)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..layers import Layer

INPUT = "input"
#: Exactly these container classes are never a block (their subclasses, like torchvision's
#: Conv2dNormActivation, are); they hold structure, not a computation of their own.
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


@dataclass
class Entry:
    """One spec row made from one fx node."""

    name: str  # the row's name in a flat spec (a word)
    type: str
    args: dict[str, Any]
    inputs: list[str]  # entry names or INPUT
    node: str  # the fx node it comes from
    scopes: tuple[tuple[str, str], ...]  # (module path, class path) of the non-leaf modules around it
    module: Any = None  # whose state the row loads (call_module); None for functional forms
    tie: str | None = None
    again: str | None = None  # the entry of this module's first call (a module called again)
    tied: bool = False  # another module's parameters (tied weights)
    trainable: bool = True
    layer: Layer | None = None
    target: str = ""  # the module path it calls (call_module), else the function's name
    row: str = ""  # its row name in the emitted spec
    state: dict[str, Any] | None = None  # the weights the proof loads, where no module of its own holds them
    owns: tuple[Any, ...] = ()  # the model's parameters it uses without their module (layer_scale, F.layer_norm's)


def _first(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _dims(shape: Any) -> str:
    return "×".join(map(str, shape)) if isinstance(shape, tuple) else repr(shape)


def _scopes(node: Any) -> tuple[tuple[str, str], ...]:
    """The non-leaf modules whose forward made ``node``, outermost first: (path, class path)."""
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    if node.op == "call_module" and stack and stack[-1][0] == node.target:
        stack = stack[:-1]
    out = []
    for path, cls in stack:
        name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
        if path:
            out.append((str(path), name))
    return tuple(out)


def _refusal_text(model: str, node: Any, reason: str) -> str:
    scopes = _scopes(node) if node is not None else ()
    where = f" in '{scopes[-1][0]}' ({scopes[-1][1]}), in its own forward," if scopes else f" in {model}'s own forward"
    name = getattr(node, "name", "?")
    return f"--emit-spec: cannot write {model} as a spec: fx node '{name}'{where} {reason}; nothing written"
