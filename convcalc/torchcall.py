"""Layers written in torch's own call syntax: ``Conv2d(1, 16, 3)``, ``nn.MaxPool2d(2, stride=2)``.

Students copy layers from their code. A call is parsed with :mod:`ast` (never evaluated): the
callee is a layer name, optionally prefixed ``nn.`` or ``torch.nn.``; the arguments are literals
(whole or real numbers, strings, True/False/None, tuples and lists of them). Positional
arguments bind in torch's constructor order (each family's ``PARAMS``), keywords by torch's
names; mistakes are named as torch's constructor names them. Nothing here imports torch.
"""

from __future__ import annotations

import ast
from typing import Any

from .errors import ErrorKind, SpecError

SYNTAX = ErrorKind.SYNTAX
from .layers.base import REQUIRED, lookup, suggest

#: Longest call accepted (characters); a layer call is a line of code, not a file.
MAX_CALL = 1000
#: Deepest nesting of tuples/lists in an argument (``kernel_size=(3, 3)`` is 1).
MAX_DEPTH = 3
#: Keywords torch's parametrised layers take that do not change a shape: accepted and ignored.
IGNORED = ("device", "dtype")
_PREFIXES = (("nn",), ("torch", "nn"))


def is_call(text: str) -> bool:
    """Whether ``text`` looks like a call (``Name(...)``) rather than a chain step or a name."""
    return "(" in text


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """``"nn.Conv2d(1, 16, 3, padding=1)"`` → ``("Conv2d", {"in_channels": 1, "out_channels": 16,
    "kernel_size": 3, "padding": 1})``; a SpecError for anything else."""
    source = str(text).strip()
    if len(source) > MAX_CALL:
        raise SpecError(f"layer call of {len(source):,} characters; convcalc reads calls up to {MAX_CALL:,}", kind=ErrorKind.TOO_LARGE)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        detail = getattr(error, "msg", None) or type(error).__name__
        raise SpecError(f"{_short(source)} is not a layer call like Conv2d(1, 16, 3) ({detail})", kind=SYNTAX) from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise SpecError(f"{_short(source)} is not a layer call like Conv2d(1, 16, 3)", kind=SYNTAX)
    _check_numbers(tree, source)
    name = _callee(call.func, source)
    type_name, cls = lookup(name)
    params = torch_params(type_name, cls.PARAMS)
    shown = f"{type_name}()"
    if len(call.args) > len(params):
        spread = ""  # Permute(0, 2, 3, 1), as x.permute(0, 2, 3, 1) takes them: the family takes one list
        whole = all(_whole_literal(node) for node in call.args)
        if whole and params in (["dims"], ["shape"]):
            values = [str(_literal(node, shown, params[0])) for node in call.args]
            spread = f"; write the list as one argument: {type_name}([{', '.join(values)}])"
        raise SpecError(
            f"{shown} takes at most {len(params)} positional argument{'s' if len(params) != 1 else ''}"
            f"{' (' + ', '.join(params) + ')' if params else ''} but {len(call.args)} were given{spread}",
            layer=type_name,
        )
    kwargs: dict[str, Any] = {}
    for param, node in zip(params, call.args):
        if isinstance(node, ast.Starred):
            raise SpecError(f"{shown}: *arguments are not supported; write the values out", layer=type_name, kind=SYNTAX)
        kwargs[param] = _literal(node, shown, param)
    for keyword in call.keywords:
        key = keyword.arg
        if key is None:
            raise SpecError(f"{shown}: **arguments are not supported; write the keywords out", layer=type_name, kind=SYNTAX)
        if key in IGNORED and params:
            continue
        if key not in cls.PARAMS:
            raise SpecError(
                f"{shown} got an unexpected keyword argument {key!r}{suggest(key, list(cls.PARAMS))}"
                + (f" (it takes {', '.join(cls.PARAMS)})" if cls.PARAMS else " (it takes no arguments)"),
                layer=type_name,
            )
        if key in kwargs:
            raise SpecError(f"{shown} got multiple values for argument {key!r}", layer=type_name)
        kwargs[key] = _literal(keyword.value, shown, key)
    missing = [p for p, default in cls.PARAMS.items() if default is REQUIRED and p not in kwargs and p not in _INFERRED]
    if missing:
        listed = " and ".join(repr(m) for m in missing)
        raise SpecError(
            f"{shown} missing {len(missing)} required positional argument{'s' if len(missing) > 1 else ''}: {listed}",
            layer=type_name,
        )
    return type_name, kwargs


def _whole_literal(node: ast.expr) -> bool:
    """``3`` or ``-1``: a whole number written as one (no bool, no float, no name)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def torch_params(type_name: str, params: Any) -> list[str]:
    """Torch's positional constructor arguments of ``type_name``, in torch's order: the family's
    ``PARAMS`` less the keyword-only ones (the norms' ``bias``, after torch's device and dtype)."""
    from .layers.catalog import module_of

    extra = ("bias",) if module_of(type_name) == "norm" else ()
    return [name for name in params if name not in extra]


#: Required by torch, inferred by convcalc from the incoming shape (convcalc's PARAMS default them).
_INFERRED = ("in_channels", "in_features", "num_features", "num_channels", "normalized_shape")


def _short(source: str) -> str:
    """The call as quoted in messages: at most 60 characters."""
    return repr(source if len(source) <= 60 else source[:57] + "...")


def _callee(node: ast.expr, source: str) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise SpecError(f"{_short(source)}: the layer must be named like Conv2d, nn.Conv2d or torch.nn.Conv2d", kind=SYNTAX)
    parts.append(node.id)
    parts.reverse()
    if len(parts) > 1 and tuple(parts[:-1]) not in _PREFIXES:
        raise SpecError(f"{_short(source)}: {'.'.join(parts[:-1])}. is not torch.nn; write nn.{parts[-1]} or {parts[-1]}", kind=ErrorKind.UNKNOWN_LAYER)
    return parts[-1]


def _check_numbers(tree: ast.AST, source: str) -> None:
    """Numbers follow numbers.py's rule, as everywhere else: Python's ``1_1``, ``0x3``, ``1j`` are refused."""
    from .numbers import DECIMAL_HINT, is_decimal

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex)) and not isinstance(node.value, bool):
            text = ast.get_source_segment(source, node) or ""
            if not is_decimal(text):
                raise SpecError(f"{_short(source)}: {text!r} is not a number convcalc reads: {DECIMAL_HINT}")


def _literal(node: ast.expr, shown: str, param: str, depth: int = 0) -> Any:
    """A literal argument value (no names, calls or operators beyond a sign)."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, int, float, str))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)) and depth < MAX_DEPTH:
        values = [_literal(item, shown, param, depth + 1) for item in node.elts]
        return tuple(values) if isinstance(node, ast.Tuple) else values
    text = ast.unparse(node)
    raise SpecError(f"{shown}: argument {param!r} must be a literal (a number, a string, True/False/None or a tuple of them), got {text[:60]}", kind=SYNTAX)
