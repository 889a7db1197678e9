"""Verifying a spec: build its leaves as torch.nn modules, wire them like the spec, run, compare."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from ..graph import Model, Row, Summary
from ..layers import Layer
from .memory import spec_estimate
from .report import Mismatch, VerifyError, VerifyReport, _compare
from .runtime import (
    DEFAULT_MAX_MEMORY,
    SINGLE_THREAD_MACS,
    _cuda_peak,
    _cuda_start,
    _first_line,
    _out_of_memory,
    _run,
    check_element_counts,
    check_memory,
    import_torch,
    parse_memory,
    resolve_device,
    torch_dtype,
)

#: The key under which SpecNet keeps a max pool's indices (``pool`` → ``pool#indices``).
INDICES = "#indices"


@functools.cache
def _merge_classes(torch: Any) -> dict[str, Any]:
    """nn.Module classes named Add, Multiply and Concat (torchsummary lists them under these names),
    Permute, Scale, Bias, ClassToken, Narrow and the Swin layers (the families torch.nn has no class for: ``Layer.OWN_MODULE``;
    each learned tensor is a parameter named ``weight``), MultiheadAttention as self-attention on its one input
    (a subclass of torch's, see verify/attention.py), and SpecNet,
    made once per torch module."""
    nn = torch.nn

    class Merge(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, dim: int = 1) -> None:
            super().__init__()
            self.dim = dim

    class Add(Merge):
        def forward(self, *inputs: Any) -> Any:
            return functools.reduce(torch.add, inputs)

    class Subtract(Merge):
        def forward(self, *inputs: Any) -> Any:
            return functools.reduce(torch.sub, inputs)

    class Divide(Merge):
        def forward(self, *inputs: Any) -> Any:
            return functools.reduce(torch.div, inputs)

    class Rescale(nn.Module):  # type: ignore[misc,name-defined]
        """``x * scale + shift`` with numbers (``q * 0.125``, ``1 - x``)."""

        def __init__(self, scale: float = 1.0, shift: float = 0.0) -> None:
            super().__init__()
            self.scale, self.shift = scale, shift

        def forward(self, x: Any) -> Any:
            out = x if self.scale == 1 else x * self.scale
            return out if self.shift == 0 else out + self.shift

        def extra_repr(self) -> str:
            return f"scale={self.scale}, shift={self.shift}"

    class MatMul(Merge):
        def forward(self, a: Any, b: Any) -> Any:
            return torch.matmul(a, b)

    class ScaledDotProductAttention(nn.Module):  # type: ignore[misc,name-defined]
        """``F.scaled_dot_product_attention(q, k, v, …)`` (dropout 0: verify runs in eval)."""

        def __init__(self, is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False) -> None:
            super().__init__()
            self.is_causal, self.scale, self.enable_gqa = is_causal, scale, enable_gqa

        def forward(self, q: Any, k: Any, v: Any) -> Any:
            extra = {"enable_gqa": True} if self.enable_gqa else {}
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.is_causal, scale=self.scale, **extra)

        def extra_repr(self) -> str:
            return f"is_causal={self.is_causal}, scale={self.scale}, enable_gqa={self.enable_gqa}"

    class Multiply(Merge):
        def forward(self, *inputs: Any) -> Any:
            return functools.reduce(torch.mul, inputs)

    class Concat(Merge):
        def forward(self, *inputs: Any) -> Any:
            return torch.cat(inputs, dim=self.dim)

        def extra_repr(self) -> str:
            return f"dim={self.dim}"

    class Permute(nn.Module):  # type: ignore[misc,name-defined]
        """``x.permute(dims)`` (torchvision.ops.misc.Permute, without needing torchvision)."""

        def __init__(self, dims: list[int]) -> None:
            super().__init__()
            self.dims = list(dims)

        def forward(self, x: Any) -> Any:
            return x.permute(self.dims)

        def extra_repr(self) -> str:
            return f"dims={self.dims}"

    class Weighted(nn.Module):  # type: ignore[misc,name-defined]
        """A learned ``weight`` of ``shape``, broadcast against the input by the subclass's forward."""

        def __init__(self, shape: list[int]) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty(tuple(shape)))

        def extra_repr(self) -> str:
            return f"shape={list(self.weight.shape)}"

    class Scale(Weighted):
        """``x * weight`` (a layer scale)."""

        def forward(self, x: Any) -> Any:
            return x * self.weight

    class Bias(Weighted):
        """``x + weight`` (a learned position embedding)."""

        def forward(self, x: Any) -> Any:
            return x + self.weight

    class Reduce(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, dim: list[int], keepdim: bool = False) -> None:
            super().__init__()
            self.dim, self.keepdim = list(dim), keepdim

        def extra_repr(self) -> str:
            return f"dim={self.dim}, keepdim={self.keepdim}"

    class Sum(Reduce):
        """``torch.sum(x, dim, keepdim)``."""

        def forward(self, x: Any) -> Any:
            return torch.sum(x, self.dim, keepdim=self.keepdim)

    class Amax(Reduce):
        """``torch.amax(x, dim, keepdim)``."""

        def forward(self, x: Any) -> Any:
            return torch.amax(x, self.dim, keepdim=self.keepdim)

    class Mean(Reduce):
        """``torch.mean(x, dim, keepdim)``."""

        def forward(self, x: Any) -> Any:
            return torch.mean(x, self.dim, keepdim=self.keepdim)

    class Norm(Reduce):
        """``torch.linalg.vector_norm(x, p, dim, keepdim)``."""

        def __init__(self, dim: list[int], keepdim: bool = False, p: float = 2.0) -> None:
            super().__init__(dim, keepdim)
            self.p = p

        def forward(self, x: Any) -> Any:
            return torch.linalg.vector_norm(x, self.p, self.dim, keepdim=self.keepdim)

    class ClassToken(nn.Module):  # type: ignore[misc,name-defined]
        """``torch.cat([weight.expand(n, -1, …), x], dim=1)``: ``tokens`` learned vectors of ``features`` put first."""

        def __init__(self, tokens: int = 1, features: list[int] | None = None) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty((1, tokens, *(features or ()))))

        def forward(self, x: Any) -> Any:
            return torch.cat([self.weight.expand(x.shape[0], *(-1,) * (self.weight.dim() - 1)), x], dim=1)

        def extra_repr(self) -> str:
            return f"tokens={self.weight.shape[1]}, features={list(self.weight.shape[2:])}"

    class Token(nn.Module):  # type: ignore[misc,name-defined]
        """``weight.expand(n, -1, …)``: a learned (1, tokens, *features) tensor repeated along the input's batch."""

        def __init__(self, shape: list[int]) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty(tuple(shape)))

        def forward(self, x: Any) -> Any:
            return self.weight.expand(x.shape[0], *(-1,) * (self.weight.dim() - 1))

        def extra_repr(self) -> str:
            return f"shape={list(self.weight.shape)}"

    class Narrow(nn.Module):  # type: ignore[misc,name-defined]
        """``torch.narrow(x, dim, start, length)``: ``length`` entries of dimension ``dim`` from ``start``."""

        def __init__(self, dim: int, start: int, length: int) -> None:
            super().__init__()
            self.dim, self.start, self.length = dim, start, length

        def forward(self, x: Any) -> Any:
            return torch.narrow(x, self.dim, self.start, self.length)

        def extra_repr(self) -> str:
            return f"dim={self.dim}, start={self.start}, length={self.length}"

    class Slice(nn.Module):  # type: ignore[misc,name-defined]
        """``x[..., start:end:step]`` on dimension ``dim``."""

        def __init__(self, dim: int, start: int | None = None, end: int | None = None, step: int = 1) -> None:
            super().__init__()
            self.dim, self.start, self.end, self.step = dim, start, end, step

        def forward(self, x: Any) -> Any:
            index = [slice(None)] * x.dim()
            index[self.dim] = slice(self.start, self.end, self.step)
            return x[tuple(index)]

        def extra_repr(self) -> str:
            return f"dim={self.dim}, start={self.start}, end={self.end}, step={self.step}"

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
                if isinstance(out, tuple):  # a pool's (values, indices): the values flow on, a MaxUnpool may read the indices
                    values[name], values[name + INDICES] = out[0], out[1]
                else:
                    values[name] = out
            return out

    from .attention import attention_class
    from .attention_bias import attention_bias_class
    from .relative_attention import relative_attention_class
    from .std_conv import std_conv_classes  # timm's weight-standardised convolutions
    from .swin import (
        swin_classes,  # PatchMerge, ShiftedWindowAttention(V2): torchvision's Swin layers
    )

    return {"Add": Add, "Subtract": Subtract, "Multiply": Multiply, "Divide": Divide, "Rescale": Rescale, "MatMul": MatMul, "ScaledDotProductAttention": ScaledDotProductAttention, "Concat": Concat, "Permute": Permute, "Scale": Scale, "Bias": Bias, "ClassToken": ClassToken, "Token": Token,
            "Narrow": Narrow, "Slice": Slice, "Sum": Sum, "Mean": Mean, "Amax": Amax, "Norm": Norm, "SpecNet": SpecNet, "RelativePositionalMultiHeadAttention": relative_attention_class(torch),
            "MultiheadAttention": attention_class(torch), **swin_classes(torch), **std_conv_classes(torch),
            "AttentionBias": attention_bias_class(torch)}


def build_module(summary: Summary, torch: Any | None = None) -> Any:
    """The spec as an ``nn.Module`` on the meta device (no memory, no initialisation):
    each leaf is ``getattr(torch.nn, row.type)(**row.layer.torch_kwargs())`` of its bound layer (verify's
    own module for merges and the families torch.nn has no class for)."""
    torch = torch or import_torch()
    modules = []
    with torch.device("meta"):
        for row in summary.rows:
            modules.append(_build_leaf(torch, row))
    for row, module in zip(summary.rows, modules):
        if row.params and not row.trainable_params:
            module.requires_grad_(False)
    by_name = {row.name: module for row, module in zip(summary.rows, modules)}
    for row, module in zip(summary.rows, modules):
        if row.tie is not None:  # the same tensors as the layer it is tied to (buffers too)
            target = by_name[row.tie]
            for path, part in module.named_modules():  # its submodules too (MultiheadAttention's out_proj)
                twin = target.get_submodule(path)
                for key in list(part._parameters):
                    part._parameters[key] = twin._parameters.get(key)
                for key in list(part._buffers):
                    part._buffers[key] = twin._buffers.get(key)
    pools = unpool_sources(summary.rows)
    wiring = [(row.name, (*row.inputs, pools[row.index] + INDICES) if row.index in pools else row.inputs) for row in summary.rows]
    return _merge_classes(torch)["SpecNet"](summary.name, wiring, modules)


def unpool_sources(rows: Sequence[Row]) -> dict[int, str]:
    """Where each MaxUnpool row of a spec takes its indices from: the nearest max pool above it with
    ``return_indices: true`` whose output has the MaxUnpool's input shape, and whose indices no
    MaxUnpool nearer to it took (so that SegNet's decoder undoes its encoder's pools in reverse).
    A MaxUnpool without such a pool, or one whose pool's indices could point past its output (torch
    raises then, for some inputs), is a VerifyError."""
    open_pools: list[Row] = []
    found: dict[int, str] = {}
    for row in rows:
        if getattr(row.layer, "returns_indices", False):
            open_pools.append(row)
        if not row.type.startswith("MaxUnpool"):
            continue
        where = _row_label(row)
        pool = next((p for p in reversed(open_pools) if tuple(p.output_shape) == tuple(row.input_shape)), None)
        if pool is None:
            shape = "×".join(map(str, row.input_shape))
            raise VerifyError(
                f"{where}: MaxUnpool takes the indices of a max pool above it with return_indices: true and output {shape};"
                " the spec has none (add return_indices: true to the max pool it undoes)"
            )
        open_pools.remove(pool)
        dims: int = getattr(row.layer, "dims", 2)
        out: tuple[int, ...] = tuple(row.output_shape)[-dims:]
        reach, plane = _largest_index(pool), math.prod(out)
        if reach >= plane:
            size, source = "×".join(map(str, out)), "×".join(map(str, tuple(pool.input_shape)[-dims:]))
            raise VerifyError(
                f"{where}: the indices of {_row_label(pool)} can point up to {reach} in its {source} input, past this layer's"
                f" {size} output ({plane} positions): torch raises for some inputs; give the pool an input its windows tile"
            )
        found[row.index] = pool.name
    return found


def _largest_index(pool: Row) -> int:
    """The largest flat index a max pool's indices can hold: the last position its last window covers."""
    layer: Any = pool.layer
    dims: int = layer.dims
    sizes: tuple[int, ...] = tuple(pool.input_shape)[-dims:]  # type: ignore[assignment]
    outs: tuple[int, ...] = tuple(pool.output_shape)[-dims:]
    if not hasattr(layer, "kernel_size"):  # adaptive: the windows cover the whole input
        last = tuple(size - 1 for size in sizes)
    else:
        dilation = getattr(layer, "dilation", (1,) * dims)
        last = tuple(min((o - 1) * s - p + (k - 1) * d, size - 1)
                     for size, o, k, s, p, d in zip(sizes, outs, layer.kernel_size, layer.stride, layer.padding, dilation))
    index = 0
    for size, position in zip(sizes, last):
        index = index * size + position
    return index


def materialize(torch: Any, module: Any, device: Any, dtype: Any) -> None:
    """Give every parameter and buffer real, uninitialised storage on ``device`` (floating ones in
    ``dtype``). Values do not matter for shapes, so nothing is initialised. Unlike
    ``Module.to_empty``, ``torch.empty`` of a shape skips the Python reference of ``empty_like``
    (which imports sympy, about 0.4 s). A tensor shared by several modules (``tie:``) stays shared."""
    made: dict[int, Any] = {}
    for owner in module.modules():
        for key, param in owner._parameters.items():
            if param is not None:
                if id(param) not in made:
                    kind = dtype if param.is_floating_point() else param.dtype
                    made[id(param)] = torch.nn.Parameter(torch.empty(tuple(param.shape), dtype=kind, device=device), requires_grad=param.requires_grad)
                owner._parameters[key] = made[id(param)]
        for key, buffer in owner._buffers.items():
            if buffer is not None:
                if id(buffer) not in made:
                    kind = dtype if buffer.is_floating_point() else buffer.dtype
                    made[id(buffer)] = torch.empty(tuple(buffer.shape), dtype=kind, device=device)
                owner._buffers[key] = made[id(buffer)]


def torch_twin(torch: Any, layer: Layer) -> Any:
    """The torch module verify builds for an engine layer (on the current default device): its
    torch.nn class, or verify's own module for merges and the families torch.nn has no class for."""
    if layer.MANY_INPUTS or layer.OWN_MODULE:
        return _merge_classes(torch)[layer.type_name](**layer.torch_kwargs())
    return getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())


def _build_leaf(torch: Any, row: Row) -> Any:
    """:func:`torch_twin` of a row, with a one-line VerifyError where torch has no such class or refuses the arguments."""
    where = _row_label(row)
    own = row.is_merge or row.layer.OWN_MODULE
    if not own and getattr(torch.nn, row.type, None) is None:
        raise VerifyError(f"{where}: torch {torch.__version__} has no torch.nn.{row.type}")
    try:
        return torch_twin(torch, row.layer)
    except Exception as error:  # convcalc accepted arguments that torch's constructor refuses (or cannot allocate, even on meta)
        kwargs = row.layer.torch_kwargs()
        module = f"verify's module {row.type}" if own else f"torch.nn.{row.type}"
        raise VerifyError(
            f"{where}: convcalc accepts it, but {module}(**{kwargs!r}) raises {type(error).__name__}: {_first_line(error)}"
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
    estimate = spec_estimate(summary)
    check_element_counts(summary)
    if device != "meta":
        check_memory(estimate, limit, device, f"batch {summary.input_shape[0]}, {summary.dtype}: input, parameters, every layer's output and torch's working buffers")
    net = build_module(summary, torch)
    baseline = _cuda_start(torch, device)
    dt = torch_dtype(torch, summary.dtype)
    materialize(torch, net, target, dt)
    x = torch.zeros(summary.input_shape, dtype=dt, device=target) if device != "meta" else torch.empty(summary.input_shape, dtype=dt, device=target)
    batch_label = -1 if summary.input_shape[0] == 1 else summary.input_shape[0]
    single = device == "cpu" and summary.totals.macs < SINGLE_THREAD_MACS
    tracer, _, error = _run(torch, net, x, batch_label=batch_label, single=single)
    peak = _cuda_peak(torch, device, baseline)

    by_module: dict[int, list[Any]] = {}
    for call in tracer.calls:
        by_module.setdefault(id(call.module), []).append(call)
    checks = []
    counted: set[int] = set()  # a tensor shared by tied layers counts once, where it first appears
    for row, module in zip(summary.rows, net.layers):
        queue = by_module.get(id(module))
        if not queue or queue[0].output_shape is None:
            break
        call = queue.pop(0)
        if call is None:
            break
        torch_params = sum(p.numel() for p in module.parameters() if id(p) not in counted)
        counted.update(id(p) for p in module.parameters())
        expected = (row.output_shape, row.output_shape) if getattr(row.layer, "returns_indices", False) else row.output_shape
        checks.append(_compare(row.index, row.name, row.type, row.input_shape, expected, row.params, row.trainable_params,
                               row.macs, call.output_shape, torch_params, call.flops // 2, row=row, layer=row.layer))
    failure = None
    oom = _out_of_memory(torch, error, summary.name, device) if error is not None else None
    if oom is not None:  # an allocation failure is no disagreement
        raise oom
    if error is None and len(checks) < len(summary.rows):  # never "✓ all N agree" for fewer rows than the spec has
        row = summary.rows[len(checks)]
        failure = Mismatch(row.name, row.type, "verdict", "compared",
                           f"{_row_label(row)}: its torch module recorded no call, so the rows from it on ({len(summary.rows) - len(checks)}"
                           " of them) were not compared; this is a convcalc bug, please report it")
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
