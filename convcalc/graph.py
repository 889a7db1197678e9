"""Shape propagation over a spec's nodes: per-layer rows, totals, receptive field, diagnosis.

``Model.summary()`` returns a :class:`Summary` (rows + totals) that every renderer reads; a
model that does not fit together raises :class:`ModelError`, which carries the rows computed
up to the failing layer and a message naming the layer, its ``file:line`` and a fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import INPUT_KINDS, ConvcalcError, ErrorKind, ShapeError, SpecError
from .layers import IDENTITY, Layer, Shape
from .layers.base import Roles, declared_roles
from .sizes import DTYPE_BYTES, dtype_bytes, format_shape, too_many_elements
from .spec import INPUT, ModelSpec, Node, load_spec, parse_spec

SCHEMA_VERSION = 1
MB = 1024.0**2
#: Arguments that do not shape a layer's parameters: layers tied by ``tie:`` may differ in these
#: (the same convolution applied at another stride or dilation), and must agree in all others.
TIE_FREE = frozenset({"stride", "padding", "dilation", "output_padding", "padding_mode", "inplace", "eps", "momentum"})


@dataclass(frozen=True)
class AxisField:
    """Cumulative receptive field on one spatial axis: size r, jump j (product of strides), start."""

    size: int
    jump: int
    start: float

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "jump": self.jump, "start": self.start}


Field = Optional[tuple[AxisField, ...]]  # evaluated at run time: no `X | None` before Python 3.10
#: The walk's field: one entry per axis of the tensor, an AxisField on each spatial axis and None on the
#: others, so that a Permute can carry each axis's field to where the axis goes. None: undefined.
Placed = Optional[tuple[Optional[AxisField], ...]]


@dataclass(frozen=True)
class Row:
    """One layer of a summary: everything the tables and JSON show."""

    index: int
    name: str
    type: str
    input_shape: Shape | tuple[Shape, ...]  # a tuple of shapes for merges
    output_shape: Shape
    summary: str
    params: int
    trainable_params: int
    macs: int
    receptive_field: Field
    output_bytes: int
    line: int | None
    depth: int
    inputs: tuple[str, ...]
    layer: Layer = field(repr=False, compare=False)
    warnings: tuple[str, ...] = ()
    #: ``tie:``: the earlier row whose parameters this one shares (its params count there, 0 here)
    tie: str | None = None

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def is_merge(self) -> bool:
        return self.layer.MANY_INPUTS

    def as_dict(self) -> dict[str, Any]:
        shapes = [list(s) for s in self.input_shape] if self.is_merge else list(self.input_shape)  # type: ignore[union-attr]
        return {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "input_shape": shapes,
            "output_shape": list(self.output_shape),
            "from": list(self.inputs),
            "summary": self.summary,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "receptive_field": None if self.receptive_field is None else [a.as_dict() for a in self.receptive_field],
            "output_bytes": self.output_bytes,
            "line": self.line,
            "depth": self.depth,
            "warnings": list(self.warnings),
            **({"tie": self.tie} if self.tie is not None else {}),
        }


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    input_mb: float
    forward_backward_mb: float
    params_mb: float
    total_mb: float

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def as_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "input_size_mb": self.input_mb,
            "forward_backward_pass_size_mb": self.forward_backward_mb,
            "params_size_mb": self.params_mb,
            "estimated_total_size_mb": self.total_mb,
        }


@dataclass
class Summary:
    """Rows and totals of a model on one input; what ``convcalc model`` renders."""

    name: str
    input_shape: Shape  # with batch
    dtype: str
    rows: list[Row]
    totals: Totals
    path: str = ""

    @property
    def output_shape(self) -> Shape:
        return self.rows[-1].output_shape if self.rows else self.input_shape

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "dtype": self.dtype,
            "layers": [row.as_dict() for row in self.rows],
            "totals": self.totals.as_dict(),
        }


class ModelError(ShapeError):
    """A model that does not fit together; ``summary`` holds the rows before the failing layer."""

    def __init__(self, message: str, *, summary: Summary, node: Node | None, file: str | None, detail: str) -> None:
        super().__init__(message, layer=node.name if node else None, file=file, line=node.line if node else None, detail=detail)
        self.summary = summary
        self.node = node


def make_totals(rows: Sequence[Row], input_shape: Shape, dtype: str) -> Totals:
    """Totals of summary rows, with the memory lines computed exactly as torchsummary computes them."""
    params = sum(r.params for r in rows)
    return totals_of(
        params=params,
        trainable=sum(r.trainable_params for r in rows),
        macs=sum(r.macs for r in rows),
        output_elements=sum(math.prod(r.output_shape) for r in rows),
        input_shape=input_shape,
        dtype=dtype,
    )


def totals_of(*, params: int, trainable: int, macs: int, output_elements: int, input_shape: Shape, dtype: str) -> Totals:
    """torchsummary's four memory lines (MB of 1024²): input, 2 × every layer's output, params, their sum."""
    size = DTYPE_BYTES[dtype]
    input_mb = math.prod(input_shape) * size / MB
    forward_backward_mb = 2.0 * output_elements * size / MB
    params_mb = params * size / MB
    return Totals(
        params=params,
        trainable_params=trainable,
        non_trainable_params=params - trainable,
        macs=macs,
        input_mb=input_mb,
        forward_backward_mb=forward_backward_mb,
        params_mb=params_mb,
        total_mb=input_mb + forward_backward_mb + params_mb,
    )


class Model:
    """A model spec ready to be walked: ``load_model("mnist.yaml").summary()``."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._walker: ShapeWalk | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_shape(self) -> Shape:
        return self.spec.input_shape

    @property
    def nodes(self) -> list[Node]:
        return self.spec.nodes

    def full_input(self, batch: int = 1, input_shape: Sequence[int] | None = None) -> Shape:
        sample = tuple(input_shape) if input_shape is not None else self.spec.input_shape
        return (batch, *sample)

    def summary(self, *, batch: int = 1, dtype: str = "float32", input_shape: Sequence[int] | None = None) -> Summary:
        """Walk every node; raise ModelError (with the rows so far) at the first that fails."""
        dtype_bytes(dtype)  # an unknown dtype fails before any work
        full = self.full_input(batch, input_shape)
        huge = too_many_elements(full)
        if huge:  # before any row: the memory lines of such an input are not finite numbers
            raise SpecError(f"the input is a {huge}")
        size = DTYPE_BYTES[dtype]
        shapes: dict[str, Shape] = {INPUT: full}
        fields: dict[str, Placed] = {INPUT: _initial_field(full)}
        roles: dict[str, Roles] = {INPUT: declared_roles(len(full))}
        rows: list[Row] = []
        bound: dict[str, Layer] = {}
        for index, node in enumerate(self.spec.nodes):
            try:
                row = self._row(index, node, shapes, fields, roles, size, bound)
            except ConvcalcError as error:
                partial = Summary(self.name, full, dtype, rows, make_totals(rows, full, dtype), self.spec.path)
                raise self.diagnose(error, node, index, shapes, partial, full) from None
            rows.append(row)
            shapes[node.name] = row.output_shape
            bound[node.name] = row.layer
        return Summary(self.name, full, dtype, rows, make_totals(rows, full, dtype), self.spec.path)

    def _row(
        self,
        index: int,
        node: Node,
        shapes: dict[str, Shape],
        fields: dict[str, Placed],
        roles: dict[str, Roles],
        size: int,
        bound: dict[str, Layer],
    ) -> Row:
        """One node's row; ``fields`` and ``roles`` (what is known of each axis) gain the node's output."""
        layer = node.layer
        ins = [shapes[name] for name in node.inputs]
        if layer.MANY_INPUTS:
            out = layer.merge_shapes(ins)  # type: ignore[attr-defined]
            input_shape: Shape | tuple[Shape, ...] = tuple(ins)
            macs, params, warnings = layer.merge_macs(ins), 0, ()  # type: ignore[attr-defined]
            # a product of tensors (MatMul, attention) mixes positions: no receptive field after it
            rf = _merge_fields([fields[name] for name in node.inputs]) if layer.window(out) is not None else None
            roles[node.name] = layer.merge_roles(ins, out, [roles[name] for name in node.inputs])  # type: ignore[attr-defined]
        else:
            (shape,) = ins
            layer = layer.bind(shape)
            out = layer.output_shape(shape)
            input_shape = shape
            params = layer.num_params
            if node.tie is not None:
                _check_tie(layer, node.tie, bound[node.tie])
                params = 0  # counted once, at the layer it is tied to
            macs = layer.macs(shape)
            known = roles[node.inputs[0]]
            warnings = tuple(layer.warnings(shape, known))
            roles[node.name] = layer.axis_roles(shape, out, known)
            rf = _next_field(fields[node.inputs[0]], layer, shape, out)
        fields[node.name] = rf
        return Row(
            index=index,
            name=node.name,
            type=layer.type_name,
            input_shape=input_shape,
            output_shape=out,
            summary=layer.describe() if node.tie is None else f"{layer.describe()} tie={node.tie}".lstrip(),
            params=params,
            trainable_params=params if node.trainable else 0,
            macs=macs,
            receptive_field=_shown(rf),
            output_bytes=math.prod(out) * size,
            line=node.line,
            depth=node.depth,
            inputs=node.inputs,
            layer=layer,
            warnings=warnings,
            tie=node.tie,
        )

    # -- shape-only walks (find-sizes, nearest and smallest input) ----------------------------
    def fits(self, input_shape: Sequence[int], upto: int | None = None, batch: int = 1) -> bool:
        """Whether the first ``upto`` nodes (all by default) accept ``input_shape`` (no batch)."""
        return self.walker().fits((batch, *input_shape), upto)

    def walker(self) -> ShapeWalk:
        """The shape-only walker of this model (kept: it remembers what it has computed)."""
        if self._walker is None:
            self._walker = ShapeWalk(self.spec.nodes)
        return self._walker

    def find_sizes(
        self,
        low: int,
        high: int,
        *,
        upto: int | None = None,
        sample: Sequence[int] | None = None,
        batch: int = 1,
        track: Callable[[range], Iterable[int]] = iter,
    ) -> list[int]:
        """Every square (or cubic) spatial size in ``low..high`` for which the model is valid.

        ``track`` wraps the sizes tried (a progress indicator, for the command line)."""
        walk = self.walker()
        return [n for n in track(range(low, high + 1)) if walk.fits((batch, *self._square(n, sample)), upto)]

    def _square(self, n: int, sample: Sequence[int] | None = None) -> tuple[int, ...]:
        sample = tuple(sample) if sample is not None else self.spec.input_shape
        return (sample[0], *([n] * (len(sample) - 1)))

    # -- diagnosis ----------------------------------------------------------------------------
    def diagnose(self, error: ConvcalcError, node: Node, index: int, shapes: dict[str, Shape], partial: Summary, full: Shape) -> ModelError:
        """Rewrite a layer's error as a model diagnosis: where, what came in, and a fix."""
        from .diagnosis import explain_failure

        kind, detail = explain_failure(self, error, node, index, shapes, full)
        where = f" at {self.spec.path}:{node.line}" if node.line else ""
        label = node.layer.type_name if node.name.isdigit() else f"{node.layer.type_name} '{node.name}'"
        joiner = " " if kind in INPUT_KINDS else ": "  # "Linear at spec.yaml:9 expects …", "Conv2d at spec.yaml:4: kernel …"
        made = ModelError(f"{label}{where}{joiner}{detail}", summary=partial, node=node, file=self.spec.path, detail=detail)
        made.kind, made.axis, made.numbers, made.fix = kind, error.axis, error.numbers, error.fix
        return made


_UNSEEN = object()
MEMO_LIMIT = 200_000


class ShapeWalk:
    """Output shapes only, for many inputs in a row (find-sizes, nearest sizes).

    Each node's layer is bound once (in_channels … filled in) and reused while it accepts its
    input; a node's answer for an input shape is remembered, so the deep layers, where many
    input sizes meet the same shape, are computed once. Every answer equals what
    ``layer.bind(shape).output_shape(shape)`` gives.
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        position = {node.name: index + 1 for index, node in enumerate(nodes)}
        position[INPUT] = 0
        self.nodes = list(nodes)
        self.sources = [tuple(position[name] for name in node.inputs) for node in nodes]
        self.bound: list[Layer | None] = [None] * len(self.nodes)
        self.memo: dict[tuple[int, tuple[Shape, ...]], Shape | None] = {}

    def fits(self, full_input: Shape, upto: int | None = None) -> bool:
        return self.shapes(full_input, upto) is not None

    def shapes(self, full_input: Shape, upto: int | None = None) -> list[Shape] | None:
        """The input shape, then the output shape of each of the first ``upto`` nodes; None if one fails."""
        count = len(self.nodes) if upto is None else min(upto, len(self.nodes))
        shapes: list[Shape] = [tuple(full_input)]
        memo, sources = self.memo, self.sources
        for index in range(count):
            ins = tuple(shapes[i] for i in sources[index])
            key = (index, ins)
            out = memo.get(key, _UNSEEN)
            if out is _UNSEEN:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()  # bounded memory over long ranges
                out = memo[key] = self._output(index, ins)
            if out is None:
                return None
            shapes.append(out)  # type: ignore[arg-type]
        return shapes

    def _output(self, index: int, ins: tuple[Shape, ...]) -> Shape | None:
        layer = self.nodes[index].layer
        try:
            if layer.MANY_INPUTS:
                return layer.merge_shapes(ins)  # type: ignore[attr-defined,no-any-return]
            (shape,) = ins
            bound = self.bound[index]
            if bound is not None:
                try:
                    return bound.output_shape(shape)
                except ConvcalcError:
                    pass  # inferred arguments differ for this input: bind afresh
            bound = self.bound[index] = layer.bind(shape)
            return bound.output_shape(shape)
        except ConvcalcError:
            return None


def _check_tie(layer: Layer, tie: str, target: Layer) -> None:
    """A tied layer has the parameters of ``target``: the same arguments but where it slides."""
    mine, theirs = layer.torch_kwargs(), target.torch_kwargs()
    differ = [key for key in mine if key not in TIE_FREE and mine.get(key) != theirs.get(key)]
    if differ:
        key = differ[0]
        raise layer.error(
            f"tie: {tie!r} shares its parameters, but {key} is {mine[key]!r} here and {theirs.get(key)!r} there;"
            " tied layers differ at most in stride, padding and dilation",
            ErrorKind.ARGUMENT,
        )


def _initial_field(shape: Shape) -> Placed:
    spatial = len(shape) - 2
    return (None, None, *(AxisField(1, 1, 0.5) for _ in range(spatial))) if spatial > 0 else None


def _shown(placed: Placed) -> Field:
    """A row's receptive field: the spatial axes' fields in the order the axes have in the tensor."""
    if placed is None:
        return None
    return tuple(axis for axis in placed if axis is not None) or None


def _next_field(current: Placed, layer: Layer, shape: Shape, out: Shape) -> Placed:
    """The field after ``layer``. Where the spatial axes are where a layer reads them, (N, C, *spatial),
    its ``window`` gives the recurrence. A layer that only moves axes (Permute) moves their fields. Elsewhere
    (channels last) a field survives a layer that leaves every spatial axis alone (``touched_axes``);
    anything else leaves it undefined."""
    if current is None:
        return None
    sources = layer.axis_sources(shape)
    if sources is not None:
        return tuple(current[d] for d in sources)
    if [i for i, axis in enumerate(current) if axis is not None] == list(range(2, len(shape))):
        spatial = _windowed(current[2:], layer, shape)  # type: ignore[arg-type]
        return None if spatial is None or len(out) != 2 + len(spatial) else (None, None, *spatial)
    touched = layer.touched_axes(shape)
    if touched is None or len(out) != len(shape) or any(current[axis] is not None for axis in touched):
        return None
    return current


def _windowed(current: tuple[AxisField, ...], layer: Layer, shape: Shape) -> Field:
    """The r/j/start recurrence: r += (k−1)·j, start += ((k−1)/2 − p)·j, j ·= s."""
    window = layer.window(shape)
    if window == IDENTITY:
        return current
    if window is None or isinstance(window, str) or len(window) != len(current):
        return None
    return tuple(
        AxisField(
            size=axis.size + (w.kernel - 1) * axis.jump,
            jump=axis.jump * w.stride,
            start=axis.start + ((w.kernel - 1) / 2 - w.pad_left) * axis.jump,
        )
        for axis, w in zip(current, window)
    )


def _merge_fields(fields: Iterable[Placed]) -> Placed:
    """Along the largest path: the input whose field is largest; undefined if any is undefined, or if the
    inputs have their spatial axes in different places."""
    fields = list(fields)
    if any(f is None for f in fields):
        return None
    places = {tuple(axis is not None for axis in f) for f in fields}  # type: ignore[union-attr]
    if len(places) != 1:
        return None
    return max(fields, key=lambda f: math.prod(a.size for a in f if a is not None))  # type: ignore[union-attr]


def load_model(path: str) -> Model:
    """Load a YAML spec as a :class:`Model` (``convcalc.load_model``)."""
    return Model(load_spec(path))


def model_from_text(text: str, path: str = "<spec>") -> Model:
    return Model(parse_spec(text, path))


#: A merge's input cell names at most this many shapes: a table column as wide as 100,000 joined
#: shapes would pad every row to that width (quadratic output).
SHOWN_INPUTS = 3


def describe_shape(shape: Shape | tuple[Shape, ...]) -> str:
    if shape and isinstance(shape[0], tuple):
        shown = " + ".join(format_shape(s) for s in shape[:SHOWN_INPUTS])  # type: ignore[arg-type]
        more = len(shape) - SHOWN_INPUTS
        return shown + (f" + … ({len(shape):,} inputs)" if more > 0 else "")
    return format_shape(shape)  # type: ignore[arg-type]
