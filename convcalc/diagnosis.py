"""Turn a layer's error inside a model into a diagnosis: what came in, from where, and a fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .builder import INPUT, Node, Ref
from .errors import INPUT_KINDS, SIZE_KINDS, ConvcalcError, ErrorKind
from .layers import Layer, Shape
from .layers.base import AXES
from .sizes import format_shape

if TYPE_CHECKING:
    from .graph import Model


def explain_failure(model: Model, error: ConvcalcError, node: Node, index: int, shapes: dict[str, Shape], full: Shape) -> tuple[ErrorKind, str]:
    """What went wrong in a model, and its detail (the caller prefixes the layer and ``file:line``).
    Decided by the error's kind, never by its wording."""
    detail = error.detail
    if node.layer.MANY_INPUTS:
        return ErrorKind.MERGE, merge_failure(model, node, index, shapes, detail, full)
    source = node.inputs[0]
    written = getattr(node.layer, "in_features", None)
    if written is not None and shapes[source][-1] != written:
        actual = shapes[source][-1]
        return ErrorKind.FEATURES, (
            f"expects in_features = {actual} ({features_origin(model, source, shapes)}); the spec says {written};"
            f" use in_features: {actual}, or leave it out and convcalc infers it"
        )
    if error.kind in INPUT_KINDS:
        return error.kind, f"{detail}; its input {format_shape(shapes[source])} {origin(model, source)}"
    if error.kind in SIZE_KINDS:
        return error.kind, f"{detail}; the input here is {format_shape(shapes[source])}{smallest_input_hint(model, index, full)}"
    return error.kind, detail


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


def merge_failure(model: Model, node: Node, index: int, shapes: dict[str, Shape], detail: str, full: Shape | None = None) -> str:
    """Name both branches, the dimension that differs and by how much, and concrete fixes."""
    full = full or model.full_input()
    refs = node.refs if len(node.refs) == len(node.inputs) else tuple(_ref_of(model, name) for name in node.inputs)
    ins = [(ref, shapes[name]) for ref, name in zip(refs, node.inputs)]
    described = [f"'{ref.name}' ({ref.what}{f', line {ref.line}' if ref.line else ''}) gives {format_shape(shape)}" for ref, shape in ins]
    head = " but ".join(described) if len(described) == 2 else "the inputs do not line up: " + ", ".join(_few(described, "inputs"))
    parts: list[str] = []
    kind = node.layer.type_name
    if not getattr(node.layer, "ALIGNED", True):
        return f"{head}; {detail}"  # a matrix product's or attention's own rule
    (first_ref, first), *others = ins
    if any(len(shape) != len(first) for _, shape in others):
        if kind != "Concat":  # torch broadcasts other ranks, aligned from the right: the layer says where it fails
            return f"{head}; {detail}"
        ranks = " vs ".join(f"{len(shape)}-D" for _, shape in ins)
        return f"{head}: they differ in rank ({ranks}), and {kind} needs inputs of the same rank"
    names = _axis_names(len(first), len(full))
    concat_dim = _concat_dim(node, len(first))
    fixes: list[str] = []
    spatial_only = True
    differing: set[int] = set()
    causes: list[str] = []
    for position, (ref, shape) in enumerate(others, start=1):
        axes = [
            axis
            for axis, (a, b) in enumerate(zip(first, shape))
            if a != b and axis != concat_dim and not (kind != "Concat" and 1 in (a, b))
        ]
        if not axes:
            continue
        differing.update(axes)
        spatial_only = spatial_only and all(axis >= len(first) - (len(full) - 2) for axis in axes)
        parts.append(_differences(names, axes, first, shape, first_ref.name, ref.name, len(ins) > 2))
        if spatial_only and not causes:
            causes = _rounding_cause(model, shapes, node.inputs[0], node.inputs[position])
        sides = [(first_ref, first, node.inputs[0]), (ref, shape, node.inputs[position])]
        fixes += _padding_fixes(model, shapes, sides, axes)
        fixes += _projection_fixes(model, names, axes, (first_ref, first), (ref, shape), kind)
    if not parts:
        return f"{head}; {detail}"
    parts, fixes = _few(list(dict.fromkeys(parts)), "differences"), _few(list(dict.fromkeys(fixes)), "fixes")
    if concat_dim is not None:
        label = names[concat_dim] if not names[concat_dim].startswith("dimension") else ""
        rule = f"{kind} (on dimension {concat_dim}{f', {label}' if label else ''}) needs every other dimension equal"
    else:
        rule = f"{kind} needs equal sizes (or 1, which broadcasts) in every dimension"
    if spatial_only:
        fixes += _size_fixes(model, index, differing, full)
    text = f"{head}: {'; '.join(parts)}, and {rule}" + "".join(f". Cause: {cause}" for cause in causes)
    return f"{text}. Fix: {'; or '.join(fixes)}" if fixes else text


def _few(items: list[str], what: str, shown: int = 3) -> list[str]:
    """The first ``shown`` of ``items`` and a count of them all: a merge of 100,000 inputs stays one short line."""
    return items if len(items) <= shown else [*items[:shown], f"… ({len(items):,} {what})"]


def _rounding_cause(model: Model, shapes: dict[str, Shape], a: str, b: str) -> list[str]:
    """The layer nearest the merge, on one branch only, whose stride does not divide its input:
    ``"'pool4' (MaxPool2d, line 35) rounds 31×31 down to 15×15"`` — why an up path comes back short."""
    nodes = {n.name: n for n in model.nodes}
    only = _ancestors(nodes, a) ^ _ancestors(nodes, b)
    for candidate in reversed(model.nodes):
        if candidate.name not in only or candidate.layer.MANY_INPUTS or candidate.inputs[0] not in shapes:
            continue
        shape = shapes[candidate.inputs[0]]
        try:
            bound = candidate.layer.bind(shape)
            out = bound.output_shape(shape)
            dropped = bound.SLIDING_WINDOW and any(axis.uncovered for axis in bound.geometry(shape))  # type: ignore[attr-defined]
        except ConvcalcError:
            continue
        if dropped:
            dims = getattr(bound, "dims", len(shape) - 2)
            label = f"{candidate.layer.type_name}" + (f", line {candidate.line}" if candidate.line else "")
            return [
                f"'{candidate.name}' ({label}) rounds {format_shape(shape[-dims:])} down to {format_shape(out[-dims:])}"
            ]
    return []


def _ancestors(nodes: dict[str, Node], name: str) -> set[str]:
    """``name`` and every node it is computed from."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in nodes:
            continue
        seen.add(current)
        todo.extend(nodes[current].inputs)
    return seen


def _ref_of(model: Model, name: str) -> Ref:
    if name == INPUT:
        return Ref(INPUT, "the model input", None)
    node = next(n for n in model.nodes if n.name == name)
    return Ref(name, node.layer.type_name, node.line)


def _axis_names(rank: int, full_rank: int) -> list[str]:
    """``["batch", "channels", "H", "W"]`` for feature maps like the model input, else dimension i."""
    spatial = full_rank - 2
    if rank == full_rank and spatial in AXES:
        return ["batch", "channels", *AXES[spatial]]
    if rank == full_rank - 1 and spatial in AXES:
        return ["channels", *AXES[spatial]]
    return [f"dimension {axis}" for axis in range(rank)]


def _differences(names: list[str], axes: list[int], a: Shape, b: Shape, a_name: str, b_name: str, many: bool) -> str:
    """``"H and W differ by 1 (31 vs 30)"``; axes with the same gap share a clause."""
    groups: dict[tuple[int, int], list[str]] = {}
    for axis in axes:
        groups.setdefault((a[axis], b[axis]), []).append(names[axis])
    which = f" between '{a_name}' and '{b_name}'" if many else ""
    clauses = []
    for (x, y), labels in groups.items():
        joined = " and ".join(labels) if len(labels) <= 2 else ", ".join(labels[:-1]) + " and " + labels[-1]
        verb = "differ" if len(labels) > 1 or labels[0] == "channels" else "differs"
        clauses.append(f"{joined} {verb}{which if not clauses else ''} by {abs(x - y)} ({x} vs {y})")
    return "; ".join(clauses)


def _concat_dim(node: Node, rank: int) -> int | None:
    if node.layer.type_name != "Concat":
        return None
    dim = getattr(node.layer, "dim", 1)
    return dim % rank if -rank <= dim < rank else None


def _padding_fixes(model: Model, shapes: dict[str, Shape], sides: list[tuple[Ref, Shape, str]], axes: list[int]) -> list[str]:
    """If a branch ends in a layer that can be solved for its padding (a ConvTranspose's
    padding/output_padding, a stride-1 Conv's padding), the arguments that make it match the other."""
    fixes = []
    for transposed in (True, False):  # transposed convolutions first, as the message has always listed them
        for (ref, have, name), (_, want, _) in (sides, sides[::-1]):
            producer = _producer(model, name)
            if producer is None or producer.layer.MANY_INPUTS or producer.inputs[0] not in shapes:
                continue
            layer = producer.layer
            if not layer.SLIDING_WINDOW or ("output_padding" in layer.PARAMS) != transposed:
                continue
            first_spatial = len(have) - _spatial(layer, have)
            if any(axis < first_spatial for axis in axes):
                continue  # channels or batch differ: no padding fixes that
            target = [want[axis] if axis in axes else have[axis] for axis in range(first_spatial, len(have))]
            solved = layer.solve_padding(shapes[producer.inputs[0]], target)
            if solved is None:
                continue
            changes = [f"{key}: {_compact(list(value))}" for key, value in solved.items() if tuple(value) != tuple(getattr(layer, key))]
            wanted = "×".join(str(want[axis]) for axis in range(first_spatial, len(want)))
            where = f"'{_written(producer, ref)}'" + (f" (line {producer.line})" if producer.line else "")
            fixes.append(f"{', '.join(changes)} on {where} makes it {wanted}")
    return fixes


def _spatial(layer: Layer, shape: Shape) -> int:
    """How many trailing axes of ``shape`` a sliding-window layer slides over."""
    return len(layer.geometry(shape))  # type: ignore[attr-defined]


def _compact(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(values)


def _written(node: Node, ref: Ref) -> str:
    """The name the user wrote for ``node`` when the branch is that very entry, else its full name."""
    return ref.name if node.name == ref.name or node.name.endswith(f".{ref.name}") else node.name


def _projection_fixes(model: Model, names: list[str], axes: list[int], a: tuple[Ref, Shape], b: tuple[Ref, Shape], kind: str) -> list[str]:
    """For Add/Multiply with different channels: a 1×1 conv on the thinner branch, like ResNet's downsample."""
    if kind == "Concat" or "channels" not in names:
        return []
    channel = names.index("channels")
    if channel not in axes:
        return []
    (small_ref, small), (_, big) = (a, b) if a[1][channel] < b[1][channel] else (b, a)
    spatial = list(range(channel + 1, len(small)))
    strides = set()
    for axis in spatial:
        x, y = small[axis], big[axis]
        if x == y:
            strides.add(1)
        elif y and x > y and -(-x // y) >= 2 and -(-x // -(-x // y)) == y:
            strides.add(-(-x // y))
        else:
            return []
    if len(strides) != 1:
        return []
    (stride,) = strides
    conv = f"Conv{len(spatial)}d" if 1 <= len(spatial) <= 3 else None
    if conv is None:
        return []
    args = f"out: {big[channel]}, k: 1" + (f", s: {stride}" if stride > 1 else "")
    return [f"project '{small_ref.name}' with {conv}: {{{args}}} (+ a BatchNorm), as ResNet's downsample does"]


def _size_fixes(model: Model, index: int, axes: set[int], full: Shape, reach: int = 256) -> list[str]:
    """The nearest square input sizes for which the whole model (else this merge) lines up, with
    the merge's inputs equal on the axes that differ now (broadcasting a 1 is no fix)."""
    sample = full[1:]
    spatial = sample[1:]
    if not spatial or len(set(spatial)) != 1:
        return []
    walk = model.walker()
    sources = walk.sources[index]

    def lines_up(n: int, upto: int | None) -> bool:
        shapes = walk.shapes((full[0], sample[0], *([n] * len(spatial))), upto)
        if shapes is None or len(shapes) <= index:
            return False
        ins = [shapes[i] for i in sources]
        return all(len(s) == len(ins[0]) and all(s[axis] == ins[0][axis] for axis in axes) for s in ins)

    centre = spatial[0]
    for upto, what in ((None, "the whole model"), (index + 1, "this merge")):
        below = next((n for n in range(centre - 1, max(0, centre - reach), -1) if lines_up(n, upto)), None)
        above = next((n for n in range(centre + 1, centre + reach) if lines_up(n, upto)), None)
        sizes = [str(n) for n in (below, above) if n is not None]
        if sizes:
            return [f"input size {' or '.join(sizes)} (the nearest that fit {what}; --find-sizes LOW..HIGH lists them all)"]
    return []


def _producer(model: Model, name: str) -> Node | None:
    """The node that made ``name``'s tensor, looking through shape-preserving layers."""
    nodes = {n.name: n for n in model.nodes}
    node = nodes.get(name)
    while node is not None and node.layer.PRESERVES_SHAPE and node.inputs[0] in nodes:
        node = nodes[node.inputs[0]]
    return node
