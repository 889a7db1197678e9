"""torch at run time: importing it, devices, dtypes, memory limits, and one hooked forward pass."""

from __future__ import annotations

import contextlib
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..graph import Summary
from ..layers import Layer, Shape
from ..sizes import DTYPE_BYTES, dtype_bytes
from .report import ClassicRow, VerifyError

DEVICES = ("cpu", "cuda", "meta")
DEFAULT_MAX_MEMORY = "2GiB"
INSTALL_HINT = "pip install 'convcalc[torch]'  (or: pip install torch)"


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
    dtype_bytes(dtype)
    return getattr(torch, dtype)


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


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message, for a one-line report."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
