"""What ``convcalc verify`` found: per-layer checks, mismatches, torchsummary's rows, the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConvcalcError
from ..graph import Row, Summary, Totals
from ..jsonable import jsonable
from ..layers import Layer, Shape


class VerifyError(ConvcalcError):
    """verify could not run: torch missing, no CUDA, over --max-memory, a user model that fails."""


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: ``what`` (output shape, params, MACs, verdict), convcalc's value, torch's."""

    layer: str
    type: str
    what: str
    engine: Any
    torch: Any

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "type": self.type, "what": self.what, "convcalc": jsonable(self.engine), "torch": jsonable(self.torch)}


@dataclass(frozen=True)
class LayerCheck:
    """One layer (spec node or module call): convcalc's numbers next to what torch did."""

    index: int
    name: str
    type: str
    input_shape: Shape | tuple[Shape, ...]
    output_shape: Shape | tuple[Shape, ...]  # convcalc's where it knows the layer, else torch's
    params: int
    trainable_params: int
    macs: int
    torch_output_shape: Shape | tuple[Shape, ...] | None
    torch_params: int | None
    torch_macs: int | None
    #: whether convcalc computed this layer (False: a type it does not know; shown, not judged)
    known: bool = True
    mismatches: tuple[Mismatch, ...] = ()
    line: int | None = None
    depth: int = 0
    row: Row | None = field(default=None, repr=False, compare=False)
    layer: Layer | None = field(default=None, repr=False, compare=False)
    #: where the module's class is defined (``timm.layers.linear.Linear``); "" for spec rows
    class_path: str = ""
    #: the work a module did in its own forward, outside its child modules (counted, not judged)
    own: bool = False
    #: a module of no torch.nn class judged as the engine layers it was shown to compute ("Permute"), or ""
    judged_as: str = ""
    #: why a module that was proposed such layers is not judged (the probe did not bear them out), or ""
    not_judged: str = ""

    @property
    def confirmed(self) -> bool | None:
        """True: torch agrees on everything; False: it does not; None: convcalc has no opinion."""
        if not self.known:
            return None
        return not self.mismatches

    @property
    def output_elements(self) -> int:
        return _elements(self.output_shape)

    def as_dict(self) -> dict[str, Any]:
        if self.row is not None:
            data = self.row.as_dict()
        else:
            data = {
                "index": self.index,
                "name": self.name,
                "type": self.type,
                "input_shape": jsonable(self.input_shape),
                "output_shape": jsonable(self.output_shape),
                "params": self.params,
                "trainable_params": self.trainable_params,
                "macs": self.macs,
                "flops": 2 * self.macs,
                "depth": self.depth,
            }
        data["confirmed"] = self.confirmed
        if self.own:
            data["own_forward"] = True  # work the module did outside its children: counted, not judged
        if (not self.known or self.judged_as) and self.class_path:
            data["class"] = self.class_path
        if self.judged_as:
            data["judged_as"] = self.judged_as
        if self.not_judged:
            data["not_judged"] = self.not_judged
        if self.mismatches or not self.known:
            data["torch"] = {
                "output_shape": jsonable(self.torch_output_shape),
                "params": self.torch_params,
                "macs": self.torch_macs,
            }
        if self.mismatches:
            data["mismatches"] = [m.as_dict() for m in self.mismatches]
        return data


@dataclass(frozen=True)
class ClassicRow:
    """One line of torchsummary's table, computed the way torchsummary computes it."""

    key: str  # "Conv2d-1"
    output_shape: list[Any]  # batch replaced by -1 (or --batch), as torchsummary shows it
    params: int  # weight + bias only
    trainable: bool | None  # None: the module has no weight


@dataclass
class VerifyReport:
    """Everything ``convcalc verify`` prints: per-layer checks, totals, device, memory."""

    name: str
    kind: str  # "spec", "layer" or "module"
    input_shape: Shape  # with batch
    dtype: str
    device: str  # "cpu", "meta" or "cuda: <GPU name>"
    torch_version: str
    checks: list[LayerCheck]
    totals: Totals
    estimate_bytes: int
    peak_bytes: int | None = None
    classic: list[ClassicRow] = field(default_factory=list)
    #: torch refused where convcalc did not (the layer and torch's error), or None
    failure: Mismatch | None = None
    warnings: list[str] = field(default_factory=list)
    summary: Summary | None = field(default=None, repr=False)
    #: the leaves ran one after another (each reads the previous one's output): --emit-spec can write them
    sequential: str | None = None  # why they did not (None: they did)
    path: str = ""
    #: a Python model's module (as it ran) and the module of each row, for --emit-spec's proof
    module: Any = field(default=None, repr=False, compare=False)
    calls_modules: list[Any] = field(default_factory=list, repr=False, compare=False)
    #: every input tensor's shape (with batch) when the model takes several; () for one input
    input_shapes: tuple[Shape, ...] = ()

    @property
    def mismatches(self) -> list[Mismatch]:
        found = [m for check in self.checks for m in check.mismatches]
        return found + ([self.failure] if self.failure else [])

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = self.summary.as_dict() if self.summary is not None else {
            "schema_version": 1,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": jsonable(self.checks[-1].output_shape) if self.checks else list(self.input_shape),
            "dtype": self.dtype,
        }
        if len(self.input_shapes) > 1:
            data["input_shapes"] = [list(s) for s in self.input_shapes]
        data.update(
            {
                "layers": [check.as_dict() for check in self.checks],
                "totals": self.totals.as_dict(),
                "ok": self.ok,
                "device": self.device,
                "torch_version": self.torch_version,
                "mismatches": [m.as_dict() for m in self.mismatches],
                "memory": {"estimated_bytes": self.estimate_bytes, "cuda_peak_bytes": self.peak_bytes},
                "warnings": list(self.warnings),
            }
        )
        return data


def _compare(
    index: int,
    name: str,
    type_name: str,
    input_shape: Any,
    output_shape: Any,
    params: int,
    trainable: int,
    macs: int,
    torch_shape: Any,
    torch_params: int,
    torch_macs: int,
    *,
    row: Row | None = None,
    layer: Layer | None = None,
    line: int | None = None,
    depth: int = 0,
) -> LayerCheck:
    """A check with one Mismatch for each of output shape, params and MACs where torch differs."""
    found = []
    for what, mine, theirs in (("output shape", tuple(output_shape), torch_shape), ("params", params, torch_params), ("MACs", macs, torch_macs)):
        if mine != theirs:
            found.append(Mismatch(name, type_name, what, mine, theirs))
    return LayerCheck(
        index=index,
        name=name,
        type=type_name,
        input_shape=input_shape,
        output_shape=tuple(output_shape),
        params=params,
        trainable_params=trainable,
        macs=macs,
        torch_output_shape=torch_shape,
        torch_params=torch_params,
        torch_macs=torch_macs,
        mismatches=tuple(found),
        row=row,
        layer=layer,
        line=row.line if row is not None else line,
        depth=row.depth if row is not None else depth,
    )


def _elements(shape: Shape | tuple[Shape, ...]) -> int:
    """Elements of a tensor's shape, or of all of a tuple of tensors' shapes."""
    if shape and isinstance(shape[0], tuple):
        return sum(math.prod(s) for s in shape)  # type: ignore[arg-type]
    return math.prod(shape)  # type: ignore[arg-type]
