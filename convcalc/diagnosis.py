"""Turn a layer's error inside a model into a diagnosis: what came in, from where, and a fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConvcalcError
from .layers import Shape
from .sizes import format_shape
from .spec import INPUT, Node

if TYPE_CHECKING:
    from .graph import Model

_TOO_SMALL = ("larger than the padded input", "is too small", "wraps around", "must be smaller than the input")


def explain_failure(model: Model, error: ConvcalcError, node: Node, index: int, shapes: dict[str, Shape], full: Shape) -> str:
    """The detail of a model error (the caller prefixes the layer and ``file:line``)."""
    detail = error.detail
    if node.layer.MANY_INPUTS:
        return merge_failure(model, node, index, shapes, detail)
    source = node.inputs[0]
    written = getattr(node.layer, "in_features", None)
    if written is not None and shapes[source][-1] != written:
        actual = shapes[source][-1]
        return (
            f"expects in_features = {actual} ({features_origin(model, source, shapes)}); the spec says {written};"
            f" use in_features: {actual}, or leave it out and convcalc infers it"
        )
    if detail.startswith("expects"):
        return f"{detail}; its input {format_shape(shapes[source])} {origin(model, source)}"
    if any(marker in detail for marker in _TOO_SMALL):
        return f"{detail}; the input here is {format_shape(shapes[source])}{smallest_input_hint(model, index, full)}"
    return detail


def origin(model: Model, name: str) -> str:
    """``"comes from Flatten at line 8"`` or ``"is the model input"``."""
    if name == INPUT:
        return "is the model input"
    node = next(n for n in model.nodes if n.name == name)
    label = node.layer.type_name if node.name.isdigit() else f"{node.layer.type_name} '{node.name}'"
    return f"comes from {label}" + (f" at line {node.line}" if node.line else "")


def features_origin(model: Model, name: str, shapes: dict[str, Shape]) -> str:
    """``"32×6×6 after Flatten at line 8"``: where a Linear's in_features come from."""
    node = next((n for n in model.nodes if n.name == name), None)
    if node is not None and node.layer.type_name == "Flatten":
        before = shapes[node.inputs[0]]
        start = getattr(node.layer, "start_dim", 1) % len(before)
        end = getattr(node.layer, "end_dim", -1) % len(before)
        factors = "×".join(str(v) for v in before[start : end + 1])
        return f"{factors} after Flatten" + (f" at line {node.line}" if node.line else "")
    return f"the last dimension of {format_shape(shapes[name])}, which {origin(model, name)}"


def smallest_input_hint(model: Model, index: int, full: Shape) -> str:
    """``"; the smallest input that gets through this layer is 1×32×32"`` (square inputs)."""
    sample = full[1:]
    spatial = sample[1:]
    if not spatial or len(set(spatial)) != 1:
        return ""
    start = spatial[0]
    for n in range(start + 1, start + 4096):
        candidate = (sample[0], *([n] * len(spatial)))
        if model.fits(candidate, upto=index + 1, batch=full[0]):
            return f"; the smallest model input that gets through this layer is {format_shape(candidate)}"
    return ""


def merge_failure(model: Model, node: Node, index: int, shapes: dict[str, Shape], detail: str) -> str:
    """Name both branches, the dimension that differs and by how much, and concrete fixes."""
    ins = [(name, shapes[name]) for name in node.inputs]
    branches = "; ".join(f"'{name}' gives {format_shape(shape)} ({origin(model, name)})" for name, shape in ins)
    lines = [f"the inputs do not line up: {branches}"]
    ranks = {len(shape) for _, shape in ins}
    if len(ranks) == 1:
        (first_name, first), *others = ins
        concat_dim = _concat_dim(node)
        for name, shape in others:
            for axis, (a, b) in enumerate(zip(first, shape)):
                if a != b and axis != concat_dim and not (node.layer.type_name != "Concat" and 1 in (a, b)):
                    lines.append(f"dimension {axis} differs: {a} vs {b} (by {abs(a - b)})")
                    lines.extend(_tconv_fixes(model, [(first_name, a), (name, b)], axis))
    below, above = model.nearest_sizes(model.input_shape[1:], upto=index + 1)
    sizes = [str(n) for n in (below, above) if n is not None]
    if sizes and len(set(model.input_shape[1:])) == 1:
        lines.append(f"input sizes near {model.input_shape[1]} that line up: {' and '.join(sizes)}")
    return "; ".join(lines) if len(lines) > 1 else f"{lines[0]}; {detail}"


def _concat_dim(node: Node) -> int | None:
    if node.layer.type_name == "Concat":
        return getattr(node.layer, "dim", 1) % 4 if getattr(node.layer, "dim", 1) >= 0 else None
    return None


def _tconv_fixes(model: Model, sides: list[tuple[str, int]], axis: int) -> list[str]:
    """If a branch ends in a ConvTranspose, the output_padding/padding that would match the other."""
    fixes = []
    for (name, have), (_, want) in (sides, sides[::-1]):
        node = _producer(model, name)
        if node is None or not node.layer.type_name.startswith("ConvTranspose"):
            continue
        layer = node.layer
        spatial_axis = axis - (len(model.input_shape) + 1 - layer.dims)  # type: ignore[attr-defined]
        if not 0 <= spatial_axis < layer.dims:  # type: ignore[attr-defined]
            continue
        diff = want - have
        op = layer.output_padding[spatial_axis]  # type: ignore[attr-defined]
        stride = layer.stride[spatial_axis]  # type: ignore[attr-defined]
        dilation = layer.dilation[spatial_axis]  # type: ignore[attr-defined]
        pad = layer.padding[spatial_axis]  # type: ignore[attr-defined]
        where = f"'{node.name}'" + (f" (line {node.line})" if node.line else "")
        if diff > 0 and (op + diff < stride or op + diff < dilation):
            fixes.append(f"fix: output_padding: {op + diff} on {where}")
        elif diff < 0 and diff % 2 == 0:
            fixes.append(f"fix: padding: {pad - diff // 2} on {where}")
        elif diff < 0 and op > 0 and op + diff >= 0:
            fixes.append(f"fix: output_padding: {op + diff} on {where}")
    return fixes


def _producer(model: Model, name: str) -> Node | None:
    """The node that made ``name``'s tensor, looking through shape-preserving layers."""
    nodes = {n.name: n for n in model.nodes}
    node = nodes.get(name)
    while node is not None and not node.layer.MANY_INPUTS and node.layer.window((1,)) == "identity" and node.inputs[0] in nodes:
        node = nodes[node.inputs[0]]
    return node
