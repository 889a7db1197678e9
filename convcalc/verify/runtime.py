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
from ..numbers import show
from ..sizes import DTYPE_BYTES, dtype_bytes, format_bytes
from .attention import attention_call, is_called_as_torch, is_leaf
from .memory import attention_tensors
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
    import warnings

    try:
        with warnings.catch_warnings():
            # torch without numpy (installed on its own, not with the [torch] extra) warns
            # "Failed to initialize NumPy" on import; convcalc never hands torch a numpy array
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)
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


#: The largest --max-memory (1 EiB): any amount above it is a typo, and float arithmetic stays exact enough.
MAX_MEMORY = 2**60

#: torch counts a tensor's elements (and bytes) in int64.
MAX_ELEMENTS = 2**63 - 1


def check_element_counts(summary: Summary) -> None:
    """Refuse, before torch does (with an internal RuntimeError), a tensor whose element count overflows int64."""
    shapes = [("the input", summary.input_shape)] + [(f"{row.name} ({row.type})", row.output_shape) for row in summary.rows]
    for what, shape in shapes:
        count = math.prod(shape)
        if count > MAX_ELEMENTS:
            raise VerifyError(
                f"{what} has about 10^{int(count.bit_length() * 0.30103)} elements ({'×'.join(map(str, shape))});"
                " torch counts a tensor's elements in int64, at most 9.2e18, even on --device meta;"
                " use a smaller --input or --batch"
            )
    for row in summary.rows:  # attention's scores and position index are tensors of no row's output
        count = max(attention_tensors(row))
        if count > MAX_ELEMENTS:
            raise VerifyError(
                f"{row.name} ({row.type}) computes a tensor of about 10^{int(count.bit_length() * 0.30103)} elements (its"
                " attention scores or position index); torch counts a tensor's elements in int64, at most 9.2e18, even on"
                " --device meta; use a smaller window or input"
            )


def parse_memory(text: str) -> int:
    """``"512MiB"``, ``"2GiB"``, ``"1.5GB"`` (GB = 10⁹, GiB = 2³⁰), ``"2G"`` (binary) → bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise SpecError(f"{show(str(text))} is not an amount of memory; write it like 512MiB, 2GiB or 1.5GB")
    amount = float(match.group(1)) * _UNITS[unit]  # linear in the text; 1e400 is inf, not an error
    if not amount <= MAX_MEMORY:
        raise SpecError(f"{show(str(text))} is more than convcalc can count; use an amount from 0 to 1 EiB, like 512MiB or 2GiB")
    return int(amount)


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
    """One row of the walk: a call of a leaf module, or the work a module did in its own forward."""

    path: str
    module: Any
    input_shape: Shape | None
    flops_before: int
    chained: bool
    output_shape: Shape | tuple[Shape, ...] | None = None
    flops: int = 0
    engine: _Engine | None = None
    #: a module's own forward: what it computed outside its children (F.linear, matmuls, torch.cat …)
    own: bool = False
    #: how many arguments (positional and keyword) the module was called with
    arguments: int = 0
    #: a call of torch's nn.MultiheadAttention: what it was called with (verify.attention.AttentionCall), else None
    attention: Any = None


@dataclass
class _Frame:
    """A module call in progress: where the flop count stood, and how much its children used."""

    path: str
    module: Any
    start: int
    children: int = 0
    call: _Call | None = None


@dataclass
class _Engine:
    """convcalc's numbers for one module call (or why it refuses)."""

    layer: Layer | None
    output_shape: Shape | tuple[Shape, ...] | None = None
    params: int = 0
    macs: int = 0
    error: str | None = None
    #: the engine layers a module of no torch.nn class was shown to compute (verify.equivalents), or ""
    judged_as: str = ""


class _MemoryGuard(Exception):
    """Raised inside a hook to stop a user model before it allocates past --max-memory."""


OWN = " (own forward)"


class _Tracer:
    """Forward hooks on every module: leaf calls (shapes, flops, chaining), the flops each module
    spent in its own forward (outside its children), torchsummary rows, and a stack of the modules
    running, which names the one that raised. Hooks are removed in ``close``.

    A leaf is a module without children — the root too, when it has none. Inputs given as keywords
    (``self.conv(input=x)``) count like positional ones.
    """

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
        self.stack: list[_Frame] = []
        self.last_output: Any = None
        self.output_is_last = False
        self.handles: list[Any] = []
        #: FlopCounterMode's count over the whole forward pass, set when it returns
        self.total_flops = 0

    def flops(self) -> int:
        return int(self.counter.get_total_flops())

    def attach(self, root: Any) -> None:
        """Hooks on every module; ``close`` removes whatever was attached, even halfway. A module kept whole
        (torchvision's Swin attention, MaxViT's: :func:`.equivalents.kept_whole`) is a leaf, and nothing inside it is hooked."""
        from .equivalents import kept_whole

        nn = self.torch.nn
        inside: list[str] = []  # paths of the modules kept whole
        for path, module in root.named_modules():
            if any(not outer or path.startswith(outer + ".") for outer in inside):  # the root's path is ""
                continue
            whole = kept_whole(module)
            if whole:
                inside.append(path)
            # nn.MultiheadAttention is a leaf: its out_proj child is never called (forward uses its weight)
            leaf = whole or next(iter(module.children()), None) is None or is_leaf(self.torch, module)
            listed = module is not root and not isinstance(module, (nn.Sequential, nn.ModuleList))
            self.handles.append(module.register_forward_pre_hook(self._pre(path or type(root).__name__, leaf), with_kwargs=True))
            self.handles.append(module.register_forward_hook(self._post(listed), with_kwargs=True))

    def start(self, x: Any) -> None:
        self.last_output = x

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.last_output = None

    def _pre(self, path: str, leaf: bool) -> Callable[..., None]:
        def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            frame = _Frame(path, mod, self.flops())
            self.stack.append(frame)
            if not leaf:
                return
            first = _first_tensor(self.torch, args, kwargs)
            shape = tuple(first.shape) if first is not None else None
            call = _Call(path, mod, shape, frame.start, first is not None and first is self.last_output, arguments=len(args) + len(kwargs))
            if is_called_as_torch(self.torch, mod):
                call.attention = attention_call(self.torch, mod, args, kwargs)
            frame.call = call
            self.calls.append(call)
            if self.before_leaf is not None:
                self.before_leaf(call, first)

        return hook

    def _post(self, listed: bool) -> Callable[..., None]:
        def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            now = self.flops()
            frame = self.stack.pop() if self.stack else _Frame(type(mod).__name__, mod, now)
            spent = now - frame.start
            if self.stack:
                self.stack[-1].children += spent
            call = frame.call
            if call is not None:
                if call.attention is not None and isinstance(output, tuple) and len(output) == 2:
                    # (output, weights), the weights None unless need_weights: the output flows on
                    call.output_shape = _shape_of(self.torch, output if output[1] is not None else output[0])
                    output = output[0]
                else:
                    call.output_shape = _shape_of(self.torch, output)
                call.flops = spent
                self.last_output = output
                if self.after_leaf is not None:
                    self.after_leaf(call)
            elif spent > frame.children:
                self.calls.append(_Call(frame.path + OWN, mod, None, frame.start, False, None, spent - frame.children, own=True))
            if listed:
                self.classic.append(_classic_row(self.torch, mod, output, len(self.classic), self.batch_label))

        return hook


def _first_tensor(torch: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The first tensor a module was called with, positional or keyword, or None."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


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


class _NoModuleTracker:
    """Stands in for FlopCounterMode's ModuleTracker: convcalc tracks modules with its own hooks.

    torch's tracker registers gradient hooks on module inputs that require grad, and under
    ``no_grad`` it trips on a parameter passed to a submodule ("Expected gradient function to be
    set", timm's PiT): a quirk of the counter, not of the model. Only the global count is kept.
    """

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModuleTracker:
        return self

    def __exit__(self, *args: object) -> None:
        return None


def _attention_flops(query: Shape, key: Shape, value: Shape) -> int:
    """q @ kᵀ and attention @ v: 2·(leading dims)·Lq·Lk·(E + Ev), as torch's math kernel multiplies."""
    lead = math.prod(query[:-2])
    return 2 * lead * query[-2] * key[-2] * (query[-1] + value[-1])


def _mha_flops(query: Shape, key: Shape, embed: int) -> int:
    """Projections of q, k, v and the output, plus attention, for (batch, L, E) inputs."""
    batch, lq, lk = math.prod(query[:-2]), query[-2], key[-2]
    projections = 2 * batch * embed * embed * (2 * lq + 2 * lk)
    return projections + _attention_flops(query, key, key)


def _fused_formulas(torch: Any) -> dict[Any, Callable[..., int]]:
    """Flop formulas for the CPU fused kernels FlopCounterMode does not know (on meta the same
    work runs as the matmuls it counts): fused SDPA, MultiheadAttention's and
    TransformerEncoderLayer's fast paths. Arguments arrive as shapes (torch's shape_wrapper)."""
    aten = torch.ops.aten
    formulas: dict[Any, Callable[..., int]] = {}

    def sdpa(query: Shape, key: Shape, value: Shape, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return _attention_flops(query, key, value)

    def mha(query: Shape, key: Shape, value: Shape, embed: int, heads: int, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return _mha_flops(query, key, embed)

    def encoder(src: Shape, embed: int, heads: int, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        ffn = args[11] if len(args) > 11 else kwargs.get("ffn_weight_1")
        hidden = ffn[0] if isinstance(ffn, (tuple, list)) and ffn else 0
        return _mha_flops(src, src, embed) + 2 * 2 * math.prod(src[:-1]) * embed * hidden

    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", sdpa),
        ("_native_multi_head_attention", mha),
        ("_transformer_encoder_layer_fwd", encoder),
    ):
        op = getattr(aten, name, None)
        if op is not None:
            formulas[op] = formula
    return formulas


@contextlib.contextmanager
def seed_dynamo_disable(mode_class: Any) -> Iterator[None]:
    """Run a TorchDispatchMode subclass without its one-off import of ``torch._dynamo``.

    torch wraps every dispatch mode's ``__torch_dispatch__`` in ``_disable_dynamo``, which imports
    torch._dynamo (about 1.4 s, 800 modules) on its first call only to cache a "dynamo disabled"
    version of the function. We never run under torch.compile, so for the duration of the run the
    cache is seeded with the plain function, and removed again afterwards. If torch's internals
    differ, nothing is seeded and the import simply happens.
    """
    raw = None
    dispatch = getattr(mode_class, "__dict__", {}).get("__torch_dispatch__")
    candidate = getattr(dispatch, "__wrapped__", None)
    if callable(candidate) and "torch._dynamo" not in sys.modules and not hasattr(candidate, "__dynamo_disable"):
        raw = candidate
        setattr(raw, "__dynamo_disable", raw)
    try:
        yield
    finally:
        if raw is not None and getattr(raw, "__dynamo_disable", None) is raw:
            delattr(raw, "__dynamo_disable")


@contextlib.contextmanager
def _flop_counter(torch: Any) -> Iterator[Any]:
    """``FlopCounterMode`` counting the whole forward pass (fused CPU attention included), without
    torch's module tracker (see :class:`_NoModuleTracker`) and without importing torch._dynamo
    (see :func:`seed_dynamo_disable`)."""
    from torch.utils import flop_counter

    with seed_dynamo_disable(getattr(flop_counter, "_FlopCounterMode", None)):
        counter = flop_counter.FlopCounterMode(display=False, custom_mapping=_fused_formulas(torch))
        if hasattr(counter, "mod_tracker"):
            counter.mod_tracker = _NoModuleTracker()  # type: ignore[assignment]
        with counter:
            yield counter


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
    inputs: tuple[tuple[Any, ...], dict[str, Any]] | None = None,
) -> tuple[_Tracer, Any, BaseException | None]:
    """One forward pass under no_grad with hooks and the flop counter; returns (tracer, output, error).

    ``inputs``: ``(args, kwargs)`` to call ``root`` with instead of ``root(x)`` (``x`` is then the
    first of them, the tensor the first leaf is expected to read)."""
    args, kwargs = inputs if inputs is not None else ((x,), {})
    with _flop_counter(torch) as counter, _threads(torch, single):
        tracer = _Tracer(torch, counter, batch_label=batch_label, before_leaf=before_leaf, after_leaf=after_leaf)
        output, error = None, None
        try:
            tracer.attach(root)
            tracer.start(x)
            with torch.no_grad(), _eval_mode(root):
                output = root(*args, **kwargs)
            tracer.output_is_last = output is tracer.last_output
            tracer.total_flops = tracer.flops()
        except _MemoryGuard:
            raise
        except BaseException as exc:  # the model's (or torch's) failure, sys.exit and ^C included: one line, never a traceback
            error = exc
        finally:
            tracer.close()
    return tracer, output, error


def _out_of_memory(torch: Any, error: BaseException, name: str, device: str) -> VerifyError | None:
    """An allocation failure as what it is (never a disagreement), or None for any other error."""
    oom = getattr(torch, "OutOfMemoryError", ())
    text = str(error)
    if isinstance(error, MemoryError) or (oom and isinstance(error, oom)) or "DefaultCPUAllocator: can't allocate memory" in text or "out of memory" in text.lower():
        return VerifyError(
            f"{name} ran out of memory on {device} ({type(error).__name__}: {_first_line(error)}); use --device meta to check the shapes"
            " without allocating, or a smaller --batch or --input"
        )
    return None


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message, for a one-line report."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
