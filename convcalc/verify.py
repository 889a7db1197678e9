"""``convcalc verify``: build the real torch modules, run them once, compare every layer with the engine.

This is the only module of convcalc that imports torch, and it does so inside functions
(:func:`import_torch`), so that importing it — and the CLI — stays cheap.

Three kinds of target, one report (:class:`VerifyReport`):

- a spec (:func:`verify_model`): the engine walks it first — its verdict comes first, so an
  invalid spec is a :class:`~convcalc.graph.ModelError` before torch is even imported (the
  ``meta`` device skips several of CPU torch's checks and must never turn an error into a ✓).
  Then every leaf is built as ``getattr(torch.nn, row.type)(**row.layer.torch_kwargs())`` from
  the *bound* layer of its row, wired like the spec (merges are ``torch.add``/``torch.mul``/
  ``torch.cat``), and run once under ``torch.no_grad()``;
- a single calculator layer (``verify conv …``): a one-node spec;
- a user's ``nn.Module`` (:func:`verify_python`): it runs as written, and every leaf whose type
  the engine knows is rebuilt from its constructor attributes and recomputed on the input it
  really received.

Per layer, three numbers are compared: the output shape (forward hooks), the parameter count
(``numel`` of the module's parameters) and MACs (``FlopCounterMode`` flops // 2, measured
around each module call). Nothing here prints; ``verify_cmd.py`` renders the report.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConvcalcError, SpecError
from .graph import DTYPE_BYTES, Model, Row, Summary, Totals, describe_shape, totals_of
from .layers import Layer, Shape, lookup, make_layer
from .sizes import format_shape

DEVICES = ("cpu", "cuda", "meta")
DEFAULT_MAX_MEMORY = "2GiB"
INSTALL_HINT = "pip install 'convcalc[torch]'  (or: pip install torch)"

#: Arguments that a spec infers from the incoming shape; an emitted spec leaves them out.
INFERRED = ("in_channels", "in_features", "num_features", "num_channels")


class VerifyError(ConvcalcError):
    """verify could not run: torch missing, no CUDA, over --max-memory, a user model that fails."""


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: ``what`` (output shape, params, MACs, verdict), convcalc's value, torch's."""

    layer: str
    type: str
    what: str
    engine: Any
    torch: Any

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "type": self.type, "what": self.what, "convcalc": _jsonable(self.engine), "torch": _jsonable(self.torch)}


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

    @property
    def confirmed(self) -> bool | None:
        """True: torch agrees on everything; False: it does not; None: convcalc has no opinion."""
        if not self.known:
            return None
        return not self.mismatches

    @property
    def output_elements(self) -> int:
        shape = self.output_shape
        if shape and isinstance(shape[0], tuple):
            return sum(math.prod(s) for s in shape)  # type: ignore[arg-type]
        return math.prod(shape)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        if self.row is not None:
            data = self.row.as_dict()
        else:
            data = {
                "index": self.index,
                "name": self.name,
                "type": self.type,
                "input_shape": _jsonable(self.input_shape),
                "output_shape": _jsonable(self.output_shape),
                "params": self.params,
                "trainable_params": self.trainable_params,
                "macs": self.macs,
                "flops": 2 * self.macs,
                "depth": self.depth,
            }
        data["confirmed"] = self.confirmed
        if self.mismatches or not self.known:
            data["torch"] = {
                "output_shape": _jsonable(self.torch_output_shape),
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
    sequential: str | None = None  # None when sequential, else why not
    path: str = ""

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
            "output_shape": _jsonable(self.checks[-1].output_shape) if self.checks else list(self.input_shape),
            "dtype": self.dtype,
        }
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


# -- torch, devices, memory -------------------------------------------------------------------


def import_torch(*, freeze_gc: bool = False) -> Any:
    """``torch``, or a one-line VerifyError with the install command.

    ``freeze_gc`` (for the command line, a short-lived process): move the objects alive now —
    mostly torch's ~165,000 import-time objects — out of the garbage collector's reach
    (``gc.freeze``), so that no full collection walks them again: one such pass costs about
    50 ms, more than verifying a small model.
    """
    try:
        import torch
    except ImportError as error:
        raise VerifyError(f"convcalc verify needs PyTorch, which is not installed ({error}); install it with: {INSTALL_HINT}") from None
    if freeze_gc:
        import gc

        gc.freeze()
    return torch


def resolve_device(torch: Any, name: str) -> tuple[Any, str]:
    """(torch.device, label for the report); --device cuda without CUDA names the torch build."""
    if name not in DEVICES:
        raise VerifyError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda":
        if not torch.cuda.is_available():
            cuda = torch.version.cuda
            build = (
                f"torch {torch.__version__} is built for CUDA {cuda} but sees no GPU"
                if cuda
                else f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None)"
            )
            raise VerifyError(f"--device cuda: CUDA is not available — {build}; use --device cpu or --device meta")
        return torch.device("cuda"), f"cuda: {torch.cuda.get_device_name()}"
    return torch.device(name), name


_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}  # fmt: skip


def parse_memory(text: str) -> int:
    """``"512MiB"``, ``"2GiB"``, ``"1.5GB"`` (GB = 10⁹, GiB = 2³⁰), ``"2G"`` (binary) → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise SpecError(f"{text!r} is not an amount of memory; write it like 512MiB, 2GiB or 1.5GB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def summary_estimate(summary: Summary) -> int:
    """Bytes a forward pass allocates at most: the input, the parameters and every layer's output."""
    size = DTYPE_BYTES[summary.dtype]
    return (math.prod(summary.input_shape) + summary.totals.params) * size + sum(r.output_bytes for r in summary.rows)


def check_memory(estimate: int, limit: int, device: str, what: str) -> None:
    if estimate > limit:
        raise VerifyError(
            f"verifying on {device} would allocate about {format_bytes(estimate)} ({what}), above --max-memory"
            f" {format_bytes(limit)}; use --device meta to check the shapes without allocating,"
            " a smaller --batch or --input, or raise --max-memory"
        )


def torch_dtype(torch: Any, dtype: str) -> Any:
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    return getattr(torch, dtype)


# -- running a module with hooks --------------------------------------------------------------


@dataclass
class _Call:
    """One call of a leaf module, as the hooks saw it."""

    path: str
    module: Any
    input_shape: Shape | None
    flops_before: int
    chained: bool
    output_shape: Shape | tuple[Shape, ...] | None = None
    flops: int = 0
    engine: _Engine | None = None


@dataclass
class _Engine:
    """convcalc's numbers for one module call (or why it refuses)."""

    layer: Layer | None
    output_shape: Shape | None = None
    params: int = 0
    macs: int = 0
    error: str | None = None


class _MemoryGuard(Exception):
    """Raised inside a hook to stop a user model before it allocates past --max-memory."""


class _Tracer:
    """Forward hooks on every module: leaf calls (shapes, flops, chaining), torchsummary rows, and a
    stack of the modules running, which names the one that raised. Hooks are removed in ``close``."""

    def __init__(
        self,
        torch: Any,
        counter: Any,
        *,
        batch_label: int,
        before_leaf: Callable[[_Call, Any], None] | None = None,
        after_leaf: Callable[[_Call], None] | None = None,
    ) -> None:
        self.torch = torch
        self.counter = counter
        self.batch_label = batch_label
        self.before_leaf = before_leaf
        self.after_leaf = after_leaf
        self.calls: list[_Call] = []
        self.classic: list[ClassicRow] = []
        self.stack: list[tuple[str, Any]] = []
        self.pending: dict[int, list[_Call]] = {}
        self.last_output: Any = None
        self.output_is_last = False
        self.handles: list[Any] = []

    def attach(self, root: Any) -> None:
        """Hooks on every module; ``close`` removes whatever was attached, even halfway."""
        nn = self.torch.nn
        for path, module in root.named_modules():
            leaf = next(iter(module.children()), None) is None and module is not root
            listed = module is not root and not isinstance(module, (nn.Sequential, nn.ModuleList))
            self.handles.append(module.register_forward_pre_hook(self._pre(path or type(root).__name__, module, leaf)))
            self.handles.append(module.register_forward_hook(self._post(module, leaf, listed)))

    def start(self, x: Any) -> None:
        self.last_output = x

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.last_output = None

    def _pre(self, path: str, module: Any, leaf: bool) -> Callable[..., None]:
        def hook(mod: Any, args: tuple[Any, ...]) -> None:
            self.stack.append((path, mod))
            if not leaf:
                return
            first = args[0] if args else None
            shape = tuple(first.shape) if isinstance(first, self.torch.Tensor) else None
            call = _Call(path, mod, shape, self.counter.get_total_flops(), first is not None and first is self.last_output)
            self.calls.append(call)
            self.pending.setdefault(id(mod), []).append(call)
            if self.before_leaf is not None:
                self.before_leaf(call, first)

        return hook

    def _post(self, module: Any, leaf: bool, listed: bool) -> Callable[..., None]:
        def hook(mod: Any, args: tuple[Any, ...], output: Any) -> None:
            if self.stack:
                self.stack.pop()
            if leaf:
                call = self.pending[id(mod)].pop()
                call.output_shape = _shape_of(self.torch, output)
                call.flops = self.counter.get_total_flops() - call.flops_before
                self.last_output = output
                if self.after_leaf is not None:
                    self.after_leaf(call)
            if listed:
                self.classic.append(_classic_row(self.torch, mod, output, len(self.classic), self.batch_label))

        return hook


def _shape_of(torch: Any, value: Any) -> Shape | tuple[Shape, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(tuple(v.shape) for v in value)
    return None


def _classic_row(torch: Any, module: Any, output: Any, count: int, batch: int) -> ClassicRow:
    """torchsummary's hook: class name and index, output shape with the batch replaced, weight + bias."""
    name = str(module.__class__).split(".")[-1].split("'")[0]
    if isinstance(output, (list, tuple)):
        shape: list[Any] = [[-1] + list(o.size())[1:] for o in output if isinstance(o, torch.Tensor)]
    elif isinstance(output, torch.Tensor):
        shape = list(output.size())
        if shape:
            shape[0] = batch
    else:
        shape = []
    params, trainable = 0, None
    weight = getattr(module, "weight", None)
    if hasattr(weight, "size"):
        params += math.prod(weight.size())
        trainable = bool(weight.requires_grad)
    bias = getattr(module, "bias", None)
    if hasattr(bias, "size"):
        params += math.prod(bias.size())
    return ClassicRow(f"{name}-{count + 1}", shape, params, trainable)


@contextlib.contextmanager
def _flop_counter(torch: Any) -> Iterator[Any]:
    """``FlopCounterMode`` without its one-off import of ``torch._dynamo``.

    torch wraps every dispatch mode's ``__torch_dispatch__`` in ``_disable_dynamo``, which imports
    torch._dynamo (about 1.4 s, 800 modules) on its first call only to cache a "dynamo disabled"
    version of the function. We never run under torch.compile, so for the duration of the run the
    cache is seeded with the plain function, and removed again afterwards. If torch's internals
    differ, nothing is seeded and the import simply happens.
    """
    from torch.utils import flop_counter

    raw = None
    mode = getattr(flop_counter, "_FlopCounterMode", None)
    dispatch = getattr(mode, "__dict__", {}).get("__torch_dispatch__")
    candidate = getattr(dispatch, "__wrapped__", None)
    if callable(candidate) and "torch._dynamo" not in sys.modules and not hasattr(candidate, "__dynamo_disable"):
        raw = candidate
        setattr(raw, "__dynamo_disable", raw)
    try:
        with flop_counter.FlopCounterMode(display=False) as counter:
            yield counter
    finally:
        if raw is not None and getattr(raw, "__dynamo_disable", None) is raw:
            delattr(raw, "__dynamo_disable")


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """eval() for the run; every module's own training flag is restored afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


#: Below this many MACs a forward pass runs on one CPU thread: waking a thread pool for tiny
#: layers costs more than it saves (a 16→32 channel 3×3 conv on 14×14: 30 ms on 2 threads, 0.1 ms on 1).
SINGLE_THREAD_MACS = 50_000_000


@contextlib.contextmanager
def _threads(torch: Any, single: bool) -> Iterator[None]:
    before = torch.get_num_threads()
    if single and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _run(
    torch: Any,
    root: Any,
    x: Any,
    *,
    batch_label: int,
    before_leaf: Callable[[_Call, Any], None] | None = None,
    after_leaf: Callable[[_Call], None] | None = None,
    single: bool = False,
) -> tuple[_Tracer, Any, BaseException | None]:
    """One forward pass under no_grad with hooks and the flop counter; returns (tracer, output, error)."""
    with _flop_counter(torch) as counter, _threads(torch, single):
        tracer = _Tracer(torch, counter, batch_label=batch_label, before_leaf=before_leaf, after_leaf=after_leaf)
        output, error = None, None
        try:
            tracer.attach(root)
            tracer.start(x)
            with torch.no_grad(), _eval_mode(root):
                output = root(x)
            tracer.output_is_last = output is tracer.last_output
        except _MemoryGuard:
            raise
        except Exception as exc:  # the model's (or torch's) failure: reported, never a traceback
            error = exc
        finally:
            tracer.close()
    return tracer, output, error


# -- specs ------------------------------------------------------------------------------------


def _merge_classes(torch: Any) -> dict[str, Any]:
    """nn.Module classes named Add, Multiply and Concat (torchsummary lists them under these names)."""
    cached = getattr(_merge_classes, "cache", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    nn = torch.nn

    class Merge(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, dim: int = 1) -> None:
            super().__init__()
            self.dim = dim

    class Add(Merge):
        def forward(self, *inputs: Any) -> Any:
            out = inputs[0]
            for other in inputs[1:]:
                out = torch.add(out, other)
            return out

    class Multiply(Merge):
        def forward(self, *inputs: Any) -> Any:
            out = inputs[0]
            for other in inputs[1:]:
                out = torch.mul(out, other)
            return out

    class Concat(Merge):
        def forward(self, *inputs: Any) -> Any:
            return torch.cat(inputs, dim=self.dim)

        def extra_repr(self) -> str:
            return f"dim={self.dim}"

    class SpecNet(nn.Module):  # type: ignore[misc,name-defined]
        """The spec's nodes in order; each value is dropped after its last use."""

        def __init__(self, name: str, wiring: list[tuple[str, tuple[str, ...]]], modules: list[Any]) -> None:
            super().__init__()
            self.spec_name = name
            self.layers = nn.ModuleList(modules)
            self.wiring = wiring
            last_use: dict[str, int] = {}
            for step, (_, inputs) in enumerate(wiring):
                for source in inputs:
                    last_use[source] = step
            self.release = [[s for s in set(inputs) if last_use[s] == step] for step, (_, inputs) in enumerate(wiring)]

        def forward(self, x: Any) -> Any:
            values = {"input": x}
            out = x
            for (name, inputs), module, release in zip(self.wiring, self.layers, self.release):
                out = module(*(values[source] for source in inputs))
                for source in release:
                    del values[source]
                values[name] = out
            return out

    classes = {"Add": Add, "Multiply": Multiply, "Concat": Concat, "SpecNet": SpecNet}
    _merge_classes.cache = classes  # type: ignore[attr-defined]
    return classes


def build_module(summary: Summary, torch: Any | None = None) -> Any:
    """The spec as an ``nn.Module`` on the meta device (no memory, no initialisation):
    each leaf is ``getattr(torch.nn, row.type)(**row.layer.torch_kwargs())`` of its bound layer."""
    torch = torch or import_torch()
    classes = _merge_classes(torch)
    modules = []
    with torch.device("meta"):
        for row in summary.rows:
            modules.append(_build_leaf(torch, classes, row))
    for row, module in zip(summary.rows, modules):
        if row.params and not row.trainable_params:
            module.requires_grad_(False)
    wiring = [(row.name, row.inputs) for row in summary.rows]
    return classes["SpecNet"](summary.name, wiring, modules)


def materialize(torch: Any, module: Any, device: Any, dtype: Any) -> None:
    """Give every parameter and buffer real, uninitialised storage on ``device`` (floating ones in
    ``dtype``). Values do not matter for shapes, so nothing is initialised. Unlike
    ``Module.to_empty``, ``torch.empty`` of a shape skips the Python reference of ``empty_like``
    (which imports sympy, about 0.4 s)."""
    for owner in module.modules():
        for key, param in owner._parameters.items():
            if param is not None:
                kind = dtype if param.is_floating_point() else param.dtype
                owner._parameters[key] = torch.nn.Parameter(torch.empty(tuple(param.shape), dtype=kind, device=device), requires_grad=param.requires_grad)
        for key, buffer in owner._buffers.items():
            if buffer is not None:
                kind = dtype if buffer.is_floating_point() else buffer.dtype
                owner._buffers[key] = torch.empty(tuple(buffer.shape), dtype=kind, device=device)


def _build_leaf(torch: Any, classes: dict[str, Any], row: Row) -> Any:
    if row.is_merge:
        return classes[row.type](**row.layer.torch_kwargs())
    cls = getattr(torch.nn, row.type, None)
    where = _row_label(row)
    if cls is None:
        raise VerifyError(f"{where}: torch {torch.__version__} has no torch.nn.{row.type}")
    kwargs = row.layer.torch_kwargs()
    try:
        return cls(**kwargs)
    except Exception as error:  # convcalc accepted arguments that torch's constructor refuses
        raise VerifyError(
            f"{where}: convcalc accepts it, but torch.nn.{row.type}(**{kwargs!r}) raises"
            f" {type(error).__name__}: {_first_line(error)}"
        ) from None


def _row_label(row: Row) -> str:
    name = row.type if row.name.isdigit() else f"{row.type} '{row.name}'"
    return f"{name} (line {row.line})" if row.line else name


def verify_model(
    model: Model,
    *,
    batch: int = 1,
    dtype: str = "float32",
    input_shape: Sequence[int] | None = None,
    device: str = "cpu",
    max_memory: int | str = DEFAULT_MAX_MEMORY,
    kind: str = "spec",
) -> VerifyReport:
    """Verify a spec: the engine first (ModelError propagates), then torch on ``device``."""
    summary = model.summary(batch=batch, dtype=dtype, input_shape=input_shape)  # the engine's verdict first
    return verify_summary(summary, device=device, max_memory=max_memory, kind=kind)


def verify_summary(summary: Summary, *, device: str = "cpu", max_memory: int | str = DEFAULT_MAX_MEMORY, kind: str = "spec") -> VerifyReport:
    """Build ``summary``'s model in torch, run it once, and compare every row."""
    limit = parse_memory(max_memory) if isinstance(max_memory, str) else max_memory
    torch = import_torch()
    target, label = resolve_device(torch, device)
    estimate = summary_estimate(summary)
    if device != "meta":
        check_memory(estimate, limit, device, f"batch {summary.input_shape[0]}, {summary.dtype}: input, parameters and every layer's output")
    net = build_module(summary, torch)
    baseline = _cuda_start(torch, device)
    dt = torch_dtype(torch, summary.dtype)
    materialize(torch, net, target, dt)
    x = torch.zeros(summary.input_shape, dtype=dt, device=target) if device != "meta" else torch.empty(summary.input_shape, dtype=dt, device=target)
    batch_label = -1 if summary.input_shape[0] == 1 else summary.input_shape[0]
    single = device == "cpu" and summary.totals.macs < SINGLE_THREAD_MACS
    tracer, _, error = _run(torch, net, x, batch_label=batch_label, single=single)
    peak = _cuda_peak(torch, device, baseline)

    by_module = {id(call.module): call for call in tracer.calls}
    checks = []
    for row, module in zip(summary.rows, net.layers):
        call = by_module.get(id(module))
        if call is None or call.output_shape is None:
            break
        torch_params = sum(p.numel() for p in module.parameters())
        checks.append(_compare(row.index, row.name, row.type, row.input_shape, row.output_shape, row.params, row.trainable_params,
                               row.macs, call.output_shape, torch_params, call.flops // 2, row=row, layer=row.layer))
    failure = None
    if error is not None:
        row = summary.rows[len(checks)] if len(checks) < len(summary.rows) else None
        where = _row_label(row) if row is not None else summary.name
        text = f"{type(error).__name__}: {_first_line(error)}"
        failure = Mismatch(row.name if row else summary.name, row.type if row else "", "verdict", "valid", text if row else f"{where}: {text}")
    return VerifyReport(
        name=summary.name,
        kind=kind,
        input_shape=summary.input_shape,
        dtype=summary.dtype,
        device=label,
        torch_version=str(torch.__version__),
        checks=checks,
        totals=summary.totals,
        estimate_bytes=estimate,
        peak_bytes=peak,
        classic=tracer.classic,
        failure=failure,
        warnings=sorted({w for row in summary.rows for w in row.warnings}),
        summary=summary,
        path=getattr(summary, "path", ""),
    )


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


def _cuda_start(torch: Any, device: str) -> int:
    if device != "cuda":
        return 0
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return int(torch.cuda.memory_allocated())


def _cuda_peak(torch: Any, device: str, baseline: int) -> int | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated()) - baseline


# -- user models ------------------------------------------------------------------------------


def load_python_model(target: str, kwargs: Mapping[str, Any] | None = None) -> Any:
    """``path/to/model.py:Net`` or ``package.module:factory`` (called with ``kwargs``) → an nn.Module."""
    torch = import_torch()
    where, sep, attribute = target.rpartition(":")
    if not sep or not where or not attribute:
        raise VerifyError(f"{target!r}: name the model as path/to/model.py:ClassName or package.module:factory")
    module = _import_target(where)
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            choices = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            raise VerifyError(f"{where} has no attribute {attribute!r}{_suggest(part, choices)}")
        obj = getattr(obj, part)
    kwargs = dict(kwargs or {})
    if isinstance(obj, torch.nn.Module):
        if kwargs:
            raise VerifyError(f"{target} is already a module instance; --kwargs applies to a class or factory")
        return obj
    if not callable(obj):
        raise VerifyError(f"{target} is a {type(obj).__name__}, not an nn.Module class, factory or instance")
    try:
        made = obj(**kwargs)
    except Exception as error:
        call = f"{attribute}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        raise VerifyError(f"{call} raised {type(error).__name__}: {_first_line(error)}{_user_frame(error)}") from None
    if not isinstance(made, torch.nn.Module):
        raise VerifyError(f"{attribute}(...) returned a {type(made).__name__}, not a torch.nn.Module")
    return made


def _import_target(where: str) -> Any:
    """A module from a file path (anything with / or ending in .py) or a dotted module name."""
    if where.endswith(".py") or "/" in where or os.sep in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise VerifyError(f"{where}: no such file")
        name = "_convcalc_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise VerifyError(f"{where}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        folder = os.path.dirname(path)
        sys.path.insert(0, folder)  # so that the file can import its neighbours
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(name, None)
            raise VerifyError(f"importing {where} raised {type(error).__name__}: {_first_line(error)}{_user_frame(error)}") from None
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        return module
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)  # like `python -m`: packages in the working directory import
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as error:
        raise VerifyError(f"cannot import {where!r}: {error}") from None
    except Exception as error:
        raise VerifyError(f"importing {where} raised {type(error).__name__}: {_first_line(error)}{_user_frame(error)}") from None
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(here)


def layer_from_module(module: Any) -> Layer | None:
    """The engine's layer for a torch.nn module, from its constructor attributes; None if the
    engine does not know the type (or it is a user subclass). Raises SpecError if the engine
    refuses the arguments."""
    cls = type(module)
    if not cls.__module__.startswith("torch.nn."):
        return None
    try:
        name, family = lookup(cls.__name__)
    except SpecError:
        return None
    if name != cls.__name__:
        return None
    kwargs = {}
    for key, default in family.PARAMS.items():
        if not hasattr(module, key):
            continue
        value = getattr(module, key)
        if isinstance(default, bool) and not isinstance(value, bool):
            value = value is not None  # bias=True leaves a Parameter, bias=False leaves None
        kwargs[key] = _plain(value)
    return make_layer(name, **kwargs)


def _engine_call(module: Any, shape: Shape | None) -> _Engine | None:
    try:
        layer = layer_from_module(module)
    except ConvcalcError as error:
        return _Engine(None, error=error.message)
    if layer is None or shape is None:
        return None
    try:
        bound = layer.bind(shape)
        return _Engine(bound, bound.output_shape(shape), bound.num_params, bound.macs(shape))
    except ConvcalcError as error:
        return _Engine(layer, error=error.message)


def verify_python(
    model: Any,
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    batch: int = 1,
    dtype: str = "float32",
    device: str = "cpu",
    max_memory: int | str = DEFAULT_MAX_MEMORY,
) -> VerifyReport:
    """Run a user's module once on ``(batch, *input_shape)`` and recompute every leaf convcalc knows."""
    limit = parse_memory(max_memory) if isinstance(max_memory, str) else max_memory
    torch = import_torch()
    target, label = resolve_device(torch, device)
    dt = torch_dtype(torch, dtype)
    size = DTYPE_BYTES[dtype]
    full = (batch, *input_shape)
    name = name or type(model).__name__
    params = list({id(p): p for p in model.parameters()}.values())
    total_params = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    fixed = (math.prod(full) + total_params) * size
    if device != "meta":
        check_memory(fixed, limit, device, "input and parameters, before any activation")
    baseline = _cuda_start(torch, device)
    model = model.to(device=target, dtype=dt) if dt != torch.float32 else model.to(device=target)
    x = torch.zeros(full, dtype=dt, device=target) if device != "meta" else torch.empty(full, dtype=dt, device=target)
    running = [fixed]

    def before(call: _Call, _: Any) -> None:
        call.engine = _engine_call(call.module, call.input_shape)
        if device != "meta" and call.engine is not None and call.engine.output_shape is not None:
            running[0] += math.prod(call.engine.output_shape) * size
            if running[0] > limit:
                raise _MemoryGuard(call.path)

    def after(call: _Call) -> None:
        if device != "meta" and (call.engine is None or call.engine.output_shape is None) and call.output_shape is not None:
            running[0] += _elements(call.output_shape) * size
            if running[0] > limit:
                raise _MemoryGuard(call.path)

    batch_label = -1 if batch == 1 else batch
    try:
        tracer, _, error = _run(torch, model, x, batch_label=batch_label, before_leaf=before, after_leaf=after)
    except _MemoryGuard as guard:
        raise VerifyError(
            f"verifying {name} on {device} would allocate more than --max-memory {format_bytes(limit)}"
            f" (input, parameters and the outputs up to '{guard}'); use --device meta to check the shapes"
            " without allocating, a smaller --batch or --input, or raise --max-memory"
        ) from None
    if error is not None:
        raise _model_failure(name, tracer, error)
    peak = _cuda_peak(torch, device, baseline)

    checks = []
    for index, call in enumerate(tracer.calls):
        checks.append(_check_call(index, call, torch))
    totals = _totals(checks, full, dtype, total_params, trainable)
    return VerifyReport(
        name=name,
        kind="module",
        input_shape=full,
        dtype=dtype,
        device=label,
        torch_version=str(torch.__version__),
        checks=checks,
        totals=totals,
        estimate_bytes=fixed + sum(c.output_elements for c in checks) * size,
        peak_bytes=peak,
        classic=tracer.classic,
        sequential=_why_not_sequential(tracer.calls, checks, tracer.output_is_last),
    )


def _check_call(index: int, call: _Call, torch: Any) -> LayerCheck:
    module = call.module
    type_name = type(module).__name__
    torch_params = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    torch_macs = call.flops // 2
    input_shape: Any = call.input_shape if call.input_shape is not None else ()
    output = call.output_shape if call.output_shape is not None else ()
    depth = call.path.count(".")
    engine = call.engine
    if engine is None:
        return LayerCheck(index, call.path, type_name, input_shape, output, torch_params, trainable, torch_macs,
                          output, torch_params, torch_macs, known=False, depth=depth)
    if engine.error is not None or engine.output_shape is None:
        refusal = Mismatch(call.path, type_name, "verdict", engine.error, "runs")
        return LayerCheck(index, call.path, type_name, input_shape, output, torch_params, trainable, torch_macs,
                          output, torch_params, torch_macs, mismatches=(refusal,), depth=depth, layer=engine.layer)
    return _compare(index, call.path, type_name, input_shape, engine.output_shape, engine.params,
                    engine.params if trainable == torch_params else trainable, engine.macs, output, torch_params, torch_macs,
                    layer=engine.layer, depth=depth)


def _elements(shape: Shape | tuple[Shape, ...]) -> int:
    if shape and isinstance(shape[0], tuple):
        return sum(math.prod(s) for s in shape)  # type: ignore[arg-type]
    return math.prod(shape)  # type: ignore[arg-type]


def _totals(checks: Sequence[LayerCheck], full: Shape, dtype: str, params: int, trainable: int) -> Totals:
    """torchsummary's totals over the leaf calls; parameters counted once each, over the whole model."""
    return totals_of(
        params=params,
        trainable=trainable,
        macs=sum(c.macs for c in checks),
        output_elements=sum(c.output_elements for c in checks),
        input_shape=full,
        dtype=dtype,
    )


def _model_failure(name: str, tracer: _Tracer, error: BaseException) -> VerifyError:
    """The user model's exception in one line: type, message, the module that raised, the user's line."""
    path, module = tracer.stack[-1] if tracer.stack else (name, None)
    kind = f" ({type(module).__name__})" if module is not None else ""
    text = f"{name} raised in '{path}'{kind}: {type(error).__name__}: {_first_line(error)}{_user_frame(error)}"
    call = tracer.calls[-1] if tracer.calls and tracer.calls[-1].module is module else None
    if call is not None and call.engine is not None and call.engine.error:
        text += f"; convcalc agrees: {call.engine.error}"
    return VerifyError(text)


def _why_not_sequential(calls: Sequence[_Call], checks: Sequence[LayerCheck], output_is_last: bool) -> str | None:
    """None when the leaves ran as a chain convcalc can write as a spec, else the reason."""
    if not calls:
        return "the model has no leaf modules"
    seen: set[int] = set()
    for call, check in zip(calls, checks):
        if id(call.module) in seen:
            return f"'{call.path}' runs more than once"
        seen.add(id(call.module))
        if not call.chained:
            return f"'{call.path}' does not read the previous module's output (the forward computes something between them)"
        if not check.known:
            return f"'{call.path}' is a {check.type}, which convcalc does not know"
        if check.layer is None:
            return f"convcalc refuses '{call.path}'"
    if not output_is_last:
        return "the model's output is not its last module's output"
    return None


def emit_spec(report: VerifyReport, path: str) -> str:
    """Write the chain of ``report``'s leaves as a YAML spec; load it back and check the totals."""
    import yaml

    if report.sequential is not None:
        raise VerifyError(f"--emit-spec needs modules that run one after another: {report.sequential}")
    entries: list[Any] = []
    for check in report.checks:
        assert check.layer is not None
        args = _spec_args(check.layer)
        entry: Any = {check.type: args} if args else check.type
        if check.params and not check.trainable_params:
            entry = {check.type: args or {}, "trainable": False}
        entries.append(entry)
    data = {"name": report.name, "input": list(report.input_shape[1:]), "layers": entries}
    header = f"# written by convcalc verify --emit-spec from {report.name} (torch {report.torch_version})\n"
    text = header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    from .graph import load_model

    summary = load_model(path).summary(batch=report.input_shape[0], dtype=report.dtype)
    mine, theirs = summary.totals, report.totals
    if (mine.params, mine.macs, summary.output_shape) != (theirs.params, theirs.macs, report.checks[-1].output_shape):
        raise VerifyError(
            f"{path}: the emitted spec gives {mine.params:,} params, {mine.macs:,} MACs, output {format_shape(summary.output_shape)};"
            f" the module has {theirs.params:,}, {theirs.macs:,}, {describe_shape(report.checks[-1].output_shape)}"
        )
    return path


def _spec_args(layer: Layer) -> dict[str, Any]:
    """The layer's torch arguments that differ from the defaults, as YAML-friendly values."""
    _, family = lookup(layer.type_name)
    args = {}
    for key, value in layer.torch_kwargs().items():
        if key in INFERRED:
            continue
        value = _yaml_value(value)
        default = family.PARAMS.get(key, object())
        if value == default or (isinstance(value, list) and len(set(map(str, value))) == 1 and value[0] == default):
            continue
        args[key] = value
    return args


def _yaml_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        items = [_yaml_value(v) for v in value]
        return items[0] if items and all(i == items[0] for i in items) and all(isinstance(i, int) for i in items) else items
    return value


# -- small helpers ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """torch.Size and nested tuples → tuples of Python numbers."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _user_frame(error: BaseException) -> str:
    """`` (model.py:12)``: the innermost traceback frame outside torch and convcalc."""
    here = os.path.dirname(os.path.abspath(__file__))
    torch_root = os.sep + "torch" + os.sep
    found = ""
    for frame in traceback.extract_tb(error.__traceback__):
        name = frame.filename
        if name.startswith(here) or torch_root in name or name.startswith("<"):
            continue
        found = f" ({os.path.relpath(name) if not os.path.relpath(name).startswith('..') else name}:{frame.lineno})"
    return found


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}?"
    models = [c for c in choices if c[:1].isupper()]
    return f" (it has: {', '.join(models[:8])})" if models else ""
