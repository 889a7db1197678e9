"""What a verify run allocates, estimated before anything is allocated.

The estimate is meant to be an upper bound of the resident memory a run adds above ``import
torch``: the input, the parameters, every tensor the forward pass creates (none is counted as
freed), the largest working buffer torch takes for one convolution or matrix product on CPU, and
verify's own fixed cost (:data:`RUNTIME_BYTES`), plus what estimating on ``meta`` left resident
(it can import ``torch._dynamo``: see :data:`DYNAMO_IMPORT_BYTES`). ``benchmarks/verify_memory.py`` measures the real
peak against it.

- For a spec or a calculator layer, the rows give every output (:func:`spec_estimate`).
- For a Python model, the forward pass runs on ``meta`` under :class:`_Allocations`, a dispatch
  mode that adds up the bytes of every tensor an operator returns (views and in-place results
  share memory and are skipped) and sizes the working buffers of the convolutions and matrix
  products it sees.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ..graph import Summary
from ..sizes import DTYPE_BYTES

#: What running verify costs whatever the model: convcalc's modules, FlopCounterMode, torch's
#: first operator calls and CPU thread pools (measured 91 MiB for a one-layer run with torch 2.13
#: on CPU, benchmarks/verify_memory.py; 128 MiB leaves room).
RUNTIME_BYTES = 128 * 1024**2

#: What importing ``torch._dynamo`` leaves resident, where the process's resident size cannot be
#: read (:func:`_resident`): some of torch's meta kernels (``addmm``'s decomposition, the
#: type-promotion wrappers) import it on their first call, so estimating a Python model with a
#: ``Linear`` on ``meta`` costs that much — 72 MiB with torch 2.13 on CPU, 149 MiB when triton is
#: installed (it is with every CUDA wheel), which dynamo then imports too.
DYNAMO_IMPORT_BYTES = 192 * 1024**2

#: The packing buffers of one matrix product on CPU, per thread, at most: measured with torch 2.13
#: (oneDNN/MKL sgemm), they grow with the operands up to about 5.3 MiB a thread and stay there
#: (benchmarks/verify_memory.py; 4096² · 4096²: 7.5 MiB on 2 threads, 4.2 MiB on one).
MATMUL_BYTES_PER_THREAD = 8 * 1024**2


def matmul_workspace(operand_bytes: int, threads: int) -> int:
    """Bytes of torch's working buffers for one matrix product on CPU, at most: the packed panels
    of its operands, no more than the operands themselves and no more than
    :data:`MATMUL_BYTES_PER_THREAD` for each thread of torch's pool."""
    return min(operand_bytes, MATMUL_BYTES_PER_THREAD * max(threads, 1))


def _threads() -> int:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 1


def conv_workspace(batch: int, channels: int, kernel: Sequence[int], positions: int, input_elements: int, output_elements: int, size: int) -> int:
    """Bytes of torch's working buffers for one convolution on CPU, at most: the unfolded input
    (im2col: ``channels × kernel`` values per output position, for the whole batch — for a
    transposed convolution, per input position), counted twice (the unfold and its packed copy), and
    two reordered copies of the input and of the output (oneDNN's blocked layouts, contiguous
    copies). Measured on CPU torch 2.13, a 1-channel 2800² 3×3 convolution adds 2 × its columns
    + 4 × its input (benchmarks/verify_memory.py)."""
    columns = batch * channels * math.prod(kernel) * positions
    return (2 * columns + 2 * (input_elements + output_elements)) * size


#: Copies of attention's scores (batch × heads × queries × keys) torch holds at once where it computes
#: them whole (its math path, torchvision's Swin, MaxViT): the product q·kᵀ, the bias or mask added, the
#: softmax. Measured with torch 2.13 on CPU (tests/test_verify_memory.py): ScaledDotProductAttention of
#: 1×8000×8 adds 2.2 × its scores, with is_causal 3.2 ×.
SCORE_COPIES = 4

#: Bytes per pair of a window's positions for the relative position index Swin's and MaxViT's modules build
#: in forward: int64 coordinate differences (2, T, T), their permuted copy and the index (T, T). With the
#: scores, a 64×64 Swin window of one head measured 530 MB, a 4096-position MaxViT window 674 MB.
INDEX_BYTES_PER_PAIR = 48


def _first(shape: Any) -> tuple[int, ...]:
    """A row's input shape, or its first input's (a merge's input_shape is a tuple of shapes)."""
    return tuple(shape[0]) if shape and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _flash(query: tuple[int, ...], key: tuple[int, ...], value: tuple[int, ...], gqa: bool) -> bool:
    """Whether torch's CPU flash kernel runs this scaled_dot_product_attention, scores computed a block at a
    time: 4-D (batch, heads, positions, features) inputs, none broadcast (with enable_gqa, the query's heads a
    multiple of the key's), the value's features the query's. Measured with torch 2.13: 1×1×8000×8 adds
    4 MB; with a value of 4 features, or 5-D, 556 MB (its scores are 244 MB). nn.MultiheadAttention, as
    verify calls it (need_weights=False, no mask), runs it so: no scores counted."""
    if not len(query) == len(key) == len(value) == 4 or key[:2] != value[:2] or query[0] != key[0] or query[-1] != value[-1]:
        return False
    return query[1] == key[1] or (gqa and query[1] % key[1] == 0)


def attention_tensors(row: Any) -> tuple[int, int]:
    """(elements of attention's scores, pairs of a window's positions in its position index) of one spec row:
    (0, 0) for other rows, and for attention torch computes a block at a time (:func:`_flash`)."""
    layer, kind = row.layer, row.type
    if kind == "ScaledDotProductAttention":
        query, key, value = (tuple(shape) for shape in row.input_shape)
        if _flash(query, key, value, layer.enable_gqa):
            return 0, 0
        return math.prod(tuple(row.output_shape)[:-2]) * query[-2] * key[-2], 0
    if kind in ("ShiftedWindowAttention", "ShiftedWindowAttentionV2"):
        _, _, count = layer.windows(tuple(row.input_shape))
        index = math.prod(layer.window_size) ** 2
        return count * layer.num_heads * index, index
    if kind == "RelativePositionalMultiHeadAttention":
        batch, windows, positions, _ = tuple(row.input_shape)
        index = positions * positions
        return batch * windows * layer.heads * index, index
    return 0, 0


def attention_workspace(row: Any, size: int) -> int:
    """Bytes of attention's scores and position index in one spec row, at most (0 for other rows):
    every query against every key, per head, :data:`SCORE_COPIES` times over."""
    scores, index = attention_tensors(row)
    return SCORE_COPIES * scores * size + INDEX_BYTES_PER_PAIR * index


#: timm's weight-standardised convolutions (convcalc.layers.std_conv): F.conv2d, a Conv2d's working buffers.
STD_CONVS = ("StdConv2d", "ScaledStdConv2d")


def row_workspace(row: Any, size: int) -> int:
    """The working buffers of one spec row: convolutions (:func:`conv_workspace`), the matrix
    products of Linear and Bilinear (:func:`matmul_workspace`), attention's scores
    (:func:`attention_workspace`) and AttentionBias's index and gathered biases."""
    if row.type == "AttentionBias":  # the (queries × keys) index built in forward, as Swin's; (heads, queries, keys) biases
        pairs = row.layer.queries * row.layer.keys
        return INDEX_BYTES_PER_PAIR * pairs + row.layer.num_heads * pairs * size
    attention = attention_workspace(row, size)
    if attention:  # with the packing buffers of its projections
        return attention + matmul_workspace((math.prod(_first(row.input_shape)) + row.params) * size, _threads())
    if row.type in ("Linear", "Bilinear", "LazyLinear"):
        operands = math.prod(tuple(row.input_shape)) * size + row.params * size
        return matmul_workspace(operands, _threads())
    if not (row.type.startswith(("Conv", "ConvTranspose")) or row.type in STD_CONVS) or not hasattr(row.layer, "kernel_size"):
        return 0
    shape, out = tuple(row.input_shape), tuple(row.output_shape)
    dims = len(row.layer.kernel_size)
    if row.type.startswith("ConvTranspose"):
        channels, positions = out[-dims - 1], math.prod(shape[-dims:])
    else:
        channels, positions = shape[-dims - 1], math.prod(out[-dims:])
    batch = math.prod(shape[: -dims - 1]) or 1
    return conv_workspace(batch, channels, row.layer.kernel_size, positions, math.prod(shape), math.prod(out), size)


def spec_estimate(summary: Summary) -> int:
    """Bytes a spec's run adds at most: input, parameters, every layer's output, the largest
    convolution working buffer, and verify's fixed cost."""
    size = DTYPE_BYTES[summary.dtype]
    tensors = (math.prod(summary.input_shape) + summary.totals.params) * size + sum(r.output_bytes for r in summary.rows)
    tensors += sum(8 * math.prod(r.output_shape) for r in summary.rows if getattr(r.layer, "returns_indices", False))  # int64 indices
    return tensors + max((row_workspace(row, size) for row in summary.rows), default=0) + RUNTIME_BYTES


def _allocations_mode(torch: Any) -> Any:
    """The dispatch mode class (created once: torch wraps each subclass's dispatch on creation)."""
    cached = getattr(_allocations_mode, "cache", None)
    if cached is not None:
        return cached
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    convolution = torch.ops.aten.convolution.default
    aten = torch.ops.aten
    products = {getattr(aten, name) for name in ("mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "_scaled_mm") if hasattr(aten, name)}

    class _Allocations(TorchDispatchMode):  # type: ignore[misc]
        """Adds up the bytes of every new tensor an operator returns, and the largest working buffer."""

        def __init__(self) -> None:
            super().__init__()
            self.created = 0
            self.workspace = 0
            self.threads = int(torch.get_num_threads())

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            returns = getattr(getattr(func, "_schema", None), "returns", ())
            aliased = any(r.alias_info is not None for r in returns)
            if not aliased:
                for value in tree_flatten(out)[0]:
                    if isinstance(value, torch.Tensor):
                        self.created += value.numel() * value.element_size()
            if func is convolution:
                self.workspace = max(self.workspace, _conv_call_workspace(args, out))
            elif func.overloadpacket in products:
                operands = sum(a.numel() * a.element_size() for a in tree_flatten(args)[0] if isinstance(a, torch.Tensor))
                self.workspace = max(self.workspace, matmul_workspace(operands, self.threads))
            return out

    _allocations_mode.cache = _Allocations  # type: ignore[attr-defined]
    return _Allocations


def _conv_call_workspace(args: Sequence[Any], out: Any) -> int:
    """:func:`conv_workspace` for one ``aten.convolution`` call (input, weight, …, transposed, …, groups)."""
    x, weight = args[0], args[1]
    transposed, groups = bool(args[6]), int(args[8])
    dims = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    channels = weight.shape[1] * groups if transposed else x.shape[-dims - 1]
    positions = math.prod(x.shape[-dims:]) if transposed else math.prod(out.shape[-dims:])
    batch = math.prod(x.shape[: -dims - 1]) or 1
    return conv_workspace(batch, channels, kernel, positions, x.numel(), out.numel(), x.element_size())


def python_estimate(torch: Any, model: Any, full: Sequence[int], dtype: Any) -> int | None:
    """Bytes a real run of ``model`` on ``full`` adds at most, measured by running it on ``meta``
    (its parameters and buffers swapped for meta tensors: nothing is allocated); None if the
    model cannot run on meta (it computes with tensors it creates on the CPU, calls ``.item()`` …)."""
    from .runtime import _eval_mode, seed_dynamo_disable

    tensors = _unique(list(model.parameters()) + list(model.buffers()))
    fixed = sum(t.numel() for t in tensors) * torch.empty((), dtype=dtype).element_size()
    fixed += math.prod(full) * torch.empty((), dtype=dtype).element_size()
    mode_class = _allocations_mode(torch)
    dynamo, before = "torch._dynamo" in sys.modules, _resident()
    kept = _own_tensors(model)
    try:
        x = torch.empty(tuple(full), dtype=dtype, device="meta")
        swapped = _meta_state(torch, model, dtype)
        with seed_dynamo_disable(mode_class), torch.no_grad(), _eval_mode(model), mode_class() as mode:
            torch.func.functional_call(model, swapped, (x,), strict=False)
    except BaseException:  # noqa: BLE001  the real run reports the model's own failures (sys.exit included)
        return None
    finally:
        _put_back(kept)
    after = _resident()
    if before is not None and after is not None:
        grown = after - before  # meta allocates no data: this is imports and caches, kept for the real run
    else:
        grown = DYNAMO_IMPORT_BYTES if not dynamo and "torch._dynamo" in sys.modules else 0
    return fixed + mode.created + mode.workspace + RUNTIME_BYTES + _machinery(grown)


#: The most that estimating on meta has left resident in this process (torch._dynamo and caches
#: load once: a later run measures ~0, yet the memory is there; counting the first measurement
#: every time keeps the estimate of one model the same run after run).
_MACHINERY_BYTES = [0]


def _machinery(grown: int) -> int:
    """What the meta runs of this process left resident, rounded up to whole MiB."""
    mib = 1024**2
    _MACHINERY_BYTES[0] = max(_MACHINERY_BYTES[0], -(-max(grown, 0) // mib) * mib)
    return _MACHINERY_BYTES[0]


def _resident() -> int | None:
    """The process's resident size in bytes (Linux ``/proc/self/statm``), or None elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import resource

    return pages * resource.getpagesize()


def _own_tensors(model: Any) -> list[tuple[Any, str, str, Any]]:
    """Every (module, "_parameters" or "_buffers", name, tensor) of ``model``, shared submodules once."""
    return [(module, slot, name, tensor) for module in model.modules() for slot in ("_parameters", "_buffers")
            for name, tensor in getattr(module, slot, {}).items()]


def _put_back(kept: list[tuple[Any, str, str, Any]]) -> None:
    """The model's own tensors where they were. torch.func.functional_call restores them itself, except where one
    submodule is reachable by two paths (timm's CoaT shares ``cpe1`` with its blocks): there it left the meta
    tensors in the user's model, which then could not even be moved to the CPU."""
    for module, slot, name, tensor in kept:
        if getattr(module, slot).get(name) is not tensor:
            getattr(module, slot)[name] = tensor


def _meta_state(torch: Any, model: Any, dtype: Any) -> dict[str, Any]:
    state = {}
    for key, value in (*model.named_parameters(), *model.named_buffers()):
        kind = dtype if value.is_floating_point() else value.dtype
        state[key] = torch.empty(tuple(value.shape), dtype=kind, device="meta")
    return state


def _unique(tensors: Iterable[Any]) -> list[Any]:
    return list({id(t): t for t in tensors}.values())
