"""Verifying a user's nn.Module: import it, run it as written, recompute every leaf convcalc knows,
and write a sequential one back as a spec (``--emit-spec``)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import math
import os
import re
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConvcalcError, SpecError
from ..graph import MB, Totals, totals_of
from ..layers import Layer, Shape, lookup, make_layer
from ..layers.base import suggest
from ..reader import check_regular
from ..sizes import DTYPE_BYTES
from .attention import AttentionCall, expected_outputs
from .memory import RUNTIME_BYTES, python_estimate
from .report import LayerCheck, Mismatch, VerifyError, VerifyReport, _compare, _elements
from .runtime import (
    DEFAULT_MAX_MEMORY,
    OWN,
    _Call,
    _cuda_peak,
    _cuda_start,
    _Engine,
    _eval_mode,
    _out_of_memory,
    _first_line,
    _MemoryGuard,
    _run,
    _threads,
    _Tracer,
    check_memory,
    format_bytes,
    import_torch,
    parse_memory,
    resolve_device,
    torch_dtype,
)

#: convcalc's own folder: traceback frames inside it are not the user's.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_python_model(target: str, kwargs: Mapping[str, Any] | None = None, *, meta: bool = False) -> Any:
    """``path/to/model.py:Net`` or ``package.module:factory`` (called with ``kwargs``) → an nn.Module.

    ``meta``: construct it under ``torch.device("meta")`` (parameters without memory, to estimate
    what a run needs before anything is allocated); None if the constructor fails there, since some
    models compute on their tensors while they are built. Anything the user's code raises —
    ``sys.exit()`` and ``KeyboardInterrupt`` included — is a one-line VerifyError naming its line.
    """
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
        if meta:
            with torch.device("meta"):
                made = obj(**kwargs)
        else:
            made = obj(**kwargs)
    except BaseException as error:  # the user's code: sys.exit and ^C included
        if meta and isinstance(error, Exception):
            return None
        call = f"{attribute}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        raise VerifyError(f"{call} raised {_error_text(error)}{_user_frame(error)}") from None
    if not isinstance(made, torch.nn.Module):
        raise VerifyError(f"{attribute}(...) returned a {type(made).__name__}, not a torch.nn.Module")
    return made


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {_first_line(error)}"


def _package_root(path: str) -> tuple[str, str]:
    """(folder to put on sys.path, dotted module name) for a file, as ``python -m`` would import it:
    a file inside packages (folders with ``__init__.py``) is imported under its full dotted name,
    so that it can import its own package (``from tests.fixtures import …``)."""
    folder, stem = os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]
    parts = [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")) and os.path.dirname(folder) != folder:
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    return folder, ".".join(parts)


def _import_target(where: str) -> Any:
    """A module from a file path (anything with / or ending in .py) or a dotted module name."""
    if where.endswith(".py") or "/" in where or os.sep in where:
        path = os.path.abspath(where)
        check_regular(where, what="Python file")  # /dev/zero or a pipe would be read forever
        root, dotted = _package_root(path)
        if "." in dotted and all(part.isidentifier() for part in dotted.split(".")):
            return _import_module(where, dotted, [root, os.path.dirname(path)])
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
        except BaseException as error:  # the user's code: sys.exit and ^C included
            sys.modules.pop(name, None)
            raise VerifyError(f"importing {where} raised {_error_text(error)}{_user_frame(error)}") from None
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        return module
    here = os.getcwd()
    return _import_module(where, where, [] if here in sys.path or "" in sys.path else [here])


def _import_module(where: str, dotted: str, folders: Sequence[str]) -> Any:
    """``importlib.import_module(dotted)`` with ``folders`` on sys.path meanwhile (like ``python -m``)."""
    added = [folder for folder in folders if folder not in sys.path]
    for folder in reversed(added):
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        hint = f" (imported as {dotted} from {added[0] if added else '.'})" if dotted != where else ""
        raise VerifyError(f"cannot import {where!r}{hint}: {error}{_user_frame(error)}") from None
    except BaseException as error:  # the user's code: sys.exit and ^C included
        raise VerifyError(f"importing {where} raised {_error_text(error)}{_user_frame(error)}") from None
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def torch_layer_class(cls: type) -> type | None:
    """The torch.nn class convcalc judges ``cls`` as: itself, or the torch layer it subclasses
    when no class in between changes how it computes (timm's ``Linear`` is an ``nn.Linear``);
    None for anything else."""
    for base in cls.__mro__:
        if not base.__module__.startswith("torch.nn."):
            continue
        try:
            name, _ = lookup(base.__name__)
        except SpecError:
            return None  # the nearest torch class is one convcalc does not know
        if name != base.__name__:
            return None
        for method in ("forward", "_conv_forward"):
            if getattr(cls, method, None) is not getattr(base, method, None):
                return None
        return base
    return None


def class_path(module: Any) -> str:
    """``timm.layers.linear.Linear``: where a module's class is defined."""
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def layer_from_module(module: Any) -> Layer | None:
    """The engine's layer for a torch.nn module, from its constructor attributes; None if the
    engine does not know the type (or it is a subclass that changes ``forward``). Raises SpecError
    if the engine refuses the arguments."""
    base = torch_layer_class(type(module))
    if base is None:
        return None
    return layer_as(base, module)


def layer_as(base: type, module: Any) -> Layer:
    """The engine's layer of the torch.nn class ``base`` (one convcalc knows) with ``module``'s
    constructor attributes. Raises SpecError if the engine refuses them."""
    name, family = lookup(base.__name__)
    kwargs = {}
    for key, default in family.PARAMS.items():
        attribute = family.ATTRIBUTES.get(key, key)
        if not hasattr(module, attribute):
            continue
        value = getattr(module, attribute)
        if isinstance(default, bool) and not isinstance(value, bool):
            value = value is not None  # bias=True leaves a Parameter, bias=False leaves None
        kwargs[key] = _plain(value)
    return make_layer(name, **kwargs)


def _engine_call(module: Any, shape: Shape | None, attention: AttentionCall | None = None) -> _Engine | None:
    """The engine's numbers for one call of ``module`` on ``shape``; None where it has none. ``attention``: how an
    ``nn.MultiheadAttention`` was called (a call the engine cannot judge, such as cross-attention, is None)."""
    if attention is not None and attention.reason:
        return None
    try:
        layer = layer_from_module(module)
    except ConvcalcError as error:
        return _Engine(None, error=error.message)
    if layer is None or shape is None:
        return None
    try:
        bound = layer.bind(shape)
        out = bound.output_shape(shape)
        if attention is not None:
            return _Engine(bound, expected_outputs(bound, shape, attention), bound.num_params, bound.macs(shape))
        return _Engine(bound, (out, out) if getattr(bound, "returns_indices", False) else out, bound.num_params, bound.macs(shape))
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
    estimate: int | None = None,
    inputs: tuple[Sequence[Any], Mapping[str, Any]] | None = None,
) -> VerifyReport:
    """Run a user's module once on ``(batch, *input_shape)`` and recompute every leaf convcalc knows.

    ``inputs``: ``(args, kwargs)`` of tensors to call the module with instead (``convcalc.summary``'s
    several inputs, dict inputs, ``input_data``); they are moved to ``device`` as they are, the
    model is not cast to ``dtype`` (which then only labels the memory lines), ``input_shape``
    and ``batch`` are the first tensor's, and the memory guard counts the outputs as they come
    (no meta estimate: that runs the model on one input).

    The MACs total is FlopCounterMode's count over the whole forward pass (÷ 2); work a module does
    in its own forward, outside its children, is a row of its own (``attn (own forward)``).
    ``estimate``: the bytes a run needs, if already measured on a meta-built copy (see
    :func:`convcalc.verify.memory.python_estimate`); else it is measured here before running.
    """
    limit = parse_memory(max_memory) if isinstance(max_memory, str) else max_memory
    torch = import_torch()
    name = name or type(model).__name__
    _refuse_script(torch, model, name)
    _refuse_quantized(model, name)
    target, label = resolve_device(torch, device)
    dt = torch_dtype(torch, dtype)
    size = DTYPE_BYTES[dtype]
    full = (batch, *input_shape)
    tensors = [v for v in (*inputs[0], *inputs[1].values()) if isinstance(v, torch.Tensor)] if inputs is not None else []
    if inputs is not None and not tensors:
        raise VerifyError(f"{name}: the input holds no tensor")
    if inputs is not None:
        full = tuple(tensors[0].shape)
        batch = full[0] if full else 1
    _materialise_lazy(torch, model, full, dt, name, inputs)
    params = list({id(p): p for p in model.parameters()}.values())
    total_params = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    fixed = (math.prod(full) + total_params) * size
    if inputs is not None:
        fixed = sum(t.numel() * t.element_size() for t in tensors) + total_params * size
    if device != "meta":
        if estimate is None and inputs is None:
            estimate = python_estimate(torch, model, full, dt)
        if estimate is not None:
            check_memory(estimate, limit, device, "input, parameters, every tensor the forward pass creates and torch's working buffers, measured on meta")
        else:
            check_memory(fixed + RUNTIME_BYTES, limit, device, "input and parameters, before any activation")
    baseline = _cuda_start(torch, device)
    moved: tuple[tuple[Any, ...], dict[str, Any]] | None = None
    try:
        if inputs is not None:
            model = model.to(device=target)
            moved = (tuple(_to(torch, v, target) for v in inputs[0]), {k: _to(torch, v, target) for k, v in inputs[1].items()})
            x = next(v for v in (*moved[0], *moved[1].values()) if isinstance(v, torch.Tensor))
        else:
            model = model.to(device=target, dtype=dt) if dt != torch.float32 else model.to(device=target)
            x = torch.zeros(full, dtype=dt, device=target) if device != "meta" else torch.empty(full, dtype=dt, device=target)
    except BaseException as failure:
        raise _out_of_memory(torch, failure, name, device) or VerifyError(f"moving {name} to {device} raised {_error_text(failure)}") from None
    running = [fixed + RUNTIME_BYTES]
    #: calls of modules the engine has no rule for, called with one floating tensor: (dtype, device) to probe them with
    unknown: dict[int, tuple[Any, Any]] = {}

    def before(call: _Call, first: Any) -> None:
        call.engine = _engine_call(call.module, call.input_shape, call.attention)
        if call.engine is None and call.arguments == 1 and first is not None and first.is_floating_point():
            unknown[id(call)] = (first.dtype, first.device)
        if device != "meta" and estimate is None and call.engine is not None and call.engine.output_shape is not None:
            running[0] += _elements(call.engine.output_shape) * size
            if running[0] > limit:
                raise _MemoryGuard(call.path)

    def after(call: _Call) -> None:
        if device != "meta" and estimate is None and (call.engine is None or call.engine.output_shape is None) and call.output_shape is not None:
            running[0] += _elements(call.output_shape) * size
            if running[0] > limit:
                raise _MemoryGuard(call.path)

    batch_label = -1 if batch == 1 else batch
    try:
        tracer, _, error = _run(torch, model, x, batch_label=batch_label, before_leaf=before, after_leaf=after, inputs=moved)
    except _MemoryGuard as guard:
        raise VerifyError(
            f"verifying {name} on {device} would allocate more than --max-memory {format_bytes(limit)}"
            f" (input, parameters and the outputs up to '{guard}'); use --device meta to check the shapes"
            " without allocating, a smaller --batch or --input, or raise --max-memory"
        ) from None
    if error is not None:
        raise _out_of_memory(torch, error, name, device) or _model_failure(torch, model, x, name, tracer, error, moved)
    peak = _cuda_peak(torch, device, baseline)

    reasons = _judge_equivalents(torch, tracer.calls, unknown)
    reasons.update({id(call): call.attention.reason for call in tracer.calls if call.attention is not None and call.attention.reason})
    checks = _attribute_params(model, tracer.calls, [_check_call(index, call, reasons.get(id(call), "")) for index, call in enumerate(tracer.calls)])
    totals = _totals(checks, full, dtype, total_params, trainable, tracer.total_flops // 2)
    if inputs is not None:  # every input tensor, in its own dtype, not only the first
        input_mb = sum(t.numel() * t.element_size() for t in tensors) / MB
        totals = dataclasses.replace(totals, input_mb=input_mb, total_mb=totals.total_mb - totals.input_mb + input_mb)
    return VerifyReport(
        name=name,
        kind="module",
        input_shape=full,
        dtype=dtype,
        device=label,
        torch_version=str(torch.__version__),
        checks=checks,
        totals=totals,
        estimate_bytes=estimate if estimate is not None else fixed + sum(c.output_elements for c in checks) * size,
        peak_bytes=peak,
        classic=tracer.classic,
        sequential=_why_not_sequential(tracer.calls, checks, tracer.output_is_last),
        module=model,
        calls_modules=[call.module for call in tracer.calls],
        input_shapes=tuple(tuple(t.shape) for t in tensors),
    )


def verify_python_target(
    target: str,
    input_shape: Sequence[int],
    kwargs: Mapping[str, Any] | None = None,
    *,
    batch: int = 1,
    dtype: str = "float32",
    device: str = "cpu",
    max_memory: int | str = DEFAULT_MAX_MEMORY,
) -> VerifyReport:
    """``verify path/model.py:Net``: build the model on ``meta`` first and estimate what a run needs
    (parameters, every tensor of the forward pass, torch's working buffers), refuse above
    ``max_memory`` before anything is allocated, then build it for real and verify it."""
    limit = parse_memory(max_memory) if isinstance(max_memory, str) else max_memory
    torch = import_torch()
    full = (batch, *input_shape)
    estimate = None
    if device != "meta":
        sketch = load_python_model(target, kwargs, meta=True)
        if sketch is not None and not isinstance(sketch, torch.jit.ScriptModule):
            estimate = python_estimate(torch, sketch, full, torch_dtype(torch, dtype))
            del sketch
        if estimate is not None:
            check_memory(estimate, limit, device, "input, parameters, every tensor the forward pass creates and torch's working buffers, measured on meta")
    model = load_python_model(target, kwargs)
    return verify_python(model, input_shape, batch=batch, dtype=dtype, device=device, max_memory=limit, estimate=estimate)


def _refuse_script(torch: Any, model: Any, name: str) -> None:
    """A TorchScript module runs no Python hooks, so no layer of it can be judged: say so."""
    if isinstance(model, torch.jit.ScriptModule):
        raise VerifyError(
            f"{name} is a TorchScript module ({type(model).__name__}): TorchScript runs no Python forward hooks,"
            " so verify cannot see its layers; verify the Python module before torch.jit.script / torch.jit.trace"
        )


#: Where torch's quantized modules live: their weights are packed (not parameters) and
#: FlopCounterMode counts none of their kernels.
_QUANTIZED = ("torch.ao.nn.quantized.", "torch.nn.quantized.", "torch.ao.nn.intrinsic.quantized.", "torch.nn.intrinsic.quantized.")


def _refuse_quantized(model: Any, name: str) -> None:
    """A quantized module (``quantize_dynamic``, ``convert``) hides its weights in packed objects and
    runs kernels FlopCounterMode does not count: parameters and MACs would both read 0. Say so."""
    for path, module in model.named_modules():
        if type(module).__module__.startswith(_QUANTIZED):
            raise VerifyError(
                f"{name} holds quantized modules ('{path or name}' is a {class_path(module)}): their weights are packed,"
                " not parameters, and FlopCounterMode counts none of their kernels, so neither parameters nor MACs"
                " can be measured; verify the float model before quantization"
            )


def _to(torch: Any, value: Any, device: Any) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _materialise_lazy(torch: Any, model: Any, full: Shape, dt: Any, name: str, inputs: Any = None) -> None:
    """``nn.Lazy*`` modules get their parameters from their first forward: run one on a one-sample
    zero input on the CPU, then they are ordinary layers (``LazyConv2d`` becomes ``Conv2d``)."""
    lazy = torch.nn.parameter.is_lazy
    if not any(lazy(t) for t in (*model.parameters(), *model.buffers())):
        return
    try:
        with torch.no_grad(), _eval_mode(model):
            model(*inputs[0], **inputs[1]) if inputs is not None else model(torch.zeros((1, *full[1:]), dtype=dt))
    except BaseException as error:  # the user's code: sys.exit and ^C included
        raise VerifyError(f"{name}: the first forward pass, which gives its Lazy modules their parameters, raised {_error_text(error)}{_user_frame(error)}") from None


def _judge_equivalents(torch: Any, calls: Sequence[_Call], unknown: Mapping[int, tuple[Any, Any]]) -> dict[int, str]:
    """Give the calls of modules of no class the engine judges the engine layers they are shown to
    compute (:mod:`.equivalents`), after the run (the probes are not counted by FlopCounterMode);
    returns why not, for the calls where a proposal did not hold. One probe per module (or
    stateless class and attributes) and shape."""
    from .equivalents import judge, probe_key

    reasons: dict[int, str] = {}
    seen: dict[Any, tuple[_Engine | None, str]] = {}
    with _threads(torch, True):  # one layer on one input: a thread pool costs more than it saves
        _probe_calls(torch, calls, unknown, reasons, seen, judge, probe_key)
    return reasons


def _probe_calls(torch: Any, calls: Sequence[_Call], unknown: Mapping[int, tuple[Any, Any]], reasons: dict[int, str],
                 seen: dict[Any, tuple[_Engine | None, str]], judge: Any, probe_key: Any) -> None:
    for call in calls:
        if id(call) not in unknown or call.own or call.input_shape is None or not _is_shape(call.output_shape):
            continue
        dtype, device = unknown[id(call)]
        key = probe_key(call.module, call.input_shape, dtype)
        if key not in seen:
            seen[key] = judge(torch, call.module, call.input_shape, dtype, device)
        call.engine, reason = seen[key]
        if reason:
            reasons[id(call)] = reason


def _is_shape(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, int) for v in value)


def _check_call(index: int, call: _Call, not_judged: str = "") -> LayerCheck:
    module = call.module
    type_name = type(module).__name__
    torch_macs = call.flops // 2
    depth = call.path.count(".")
    if call.own:  # work outside the children: counted, not judged
        return LayerCheck(index, call.path, type_name, (), (), 0, 0, torch_macs, None, None, torch_macs,
                          known=False, depth=depth, class_path=class_path(module), own=True)
    torch_params = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    input_shape: Any = call.input_shape if call.input_shape is not None else ()
    output = call.output_shape if call.output_shape is not None else ()
    engine = call.engine
    if (engine is not None and engine.error is None and engine.output_shape is not None and engine.params != torch_params
            and not engine.judged_as and _reparametrized(module)):
        engine = None  # weight_norm's weight_g/weight_v: the layer's parameters are not its class's; shown, not judged
        # (not for a module judged by its probe, whose parameters went into the layer: timm's ``gamma`` is a Scale's weight)
    if engine is None:
        return LayerCheck(index, call.path, type_name, input_shape, output, torch_params, trainable, torch_macs,
                          output, torch_params, torch_macs, known=False, depth=depth, class_path=class_path(module),
                          not_judged=not_judged)
    if engine.error is not None or engine.output_shape is None:
        refusal = Mismatch(call.path, type_name, "verdict", engine.error, "runs")
        return LayerCheck(index, call.path, type_name, input_shape, output, torch_params, trainable, torch_macs,
                          output, torch_params, torch_macs, mismatches=(refusal,), depth=depth, layer=engine.layer,
                          class_path=class_path(module), judged_as=engine.judged_as)
    check = _compare(index, call.path, type_name, input_shape, engine.output_shape, engine.params,
                     engine.params if trainable == torch_params else trainable, engine.macs, output, torch_params, torch_macs,
                     layer=engine.layer, depth=depth)
    return dataclasses.replace(check, class_path=class_path(module), judged_as=engine.judged_as)


def _reparametrized(module: Any) -> bool:
    """Whether a layer holds parameters its torch class does not create (``nn.utils.weight_norm``'s
    ``weight_g`` and ``weight_v`` in place of ``weight``): its weight is computed from them."""
    return any(key not in ("weight", "bias") for key, value in module._parameters.items() if value is not None)


def _attribute_params(model: Any, calls: Sequence[_Call], checks: list[LayerCheck]) -> list[LayerCheck]:
    """Give each own-forward row the parameters its module used without calling the module that
    holds them (``F.linear(x, self.qkv.weight)``): those of no leaf that ran, under the innermost
    own-forward module. Then the rows' parameters, like their MACs, add up to the total."""
    owners = [index for index, c in enumerate(checks) if c.own]
    if not owners:
        return checks
    ran = {id(p) for call in calls if not call.own for p in call.module.parameters()}
    paths = {id(m): path for path, m in model.named_modules()}
    innermost_first = sorted(((paths.get(id(calls[i].module), ""), i) for i in owners), key=lambda item: -len(item[0]))
    extra = {i: [0, 0] for i in owners}
    for name, param in model.named_parameters():  # each shared parameter once
        if id(param) in ran:
            continue
        for path, index in innermost_first:
            if not path or name.startswith(path + "."):
                extra[index][0] += param.numel()
                extra[index][1] += param.numel() if param.requires_grad else 0
                break
    return [dataclasses.replace(c, params=extra[i][0], trainable_params=extra[i][1]) if i in extra else c for i, c in enumerate(checks)]


def _totals(checks: Sequence[LayerCheck], full: Shape, dtype: str, params: int, trainable: int, macs: int) -> Totals:
    """torchsummary's totals over the leaf calls; parameters counted once each, over the whole model;
    MACs: FlopCounterMode's whole forward pass (the rows, own forwards included, add up to it)."""
    return totals_of(
        params=params,
        trainable=trainable,
        macs=macs,
        output_elements=sum(c.output_elements for c in checks),
        input_shape=full,
        dtype=dtype,
    )


def _model_failure(torch: Any, model: Any, x: Any, name: str, tracer: _Tracer, error: BaseException, inputs: Any = None) -> VerifyError:
    """The user model's exception in one line: type, message, the module that raised, the user's line.

    If the forward pass runs without FlopCounterMode, the counter is at fault, not the model: say that."""
    if isinstance(error, Exception) and _runs_plainly(torch, model, inputs if inputs is not None else ((x,), {})):
        return VerifyError(
            f"torch's FlopCounterMode fails on {name} ({_error_text(error)}) although its forward pass runs without it:"
            " a torch limitation, not an error in the model; MACs cannot be measured"
        )
    frame = tracer.stack[-1] if tracer.stack else None
    path, module = (frame.path, frame.module) if frame is not None else (name, None)
    kind = f" ({type(module).__name__})" if module is not None else ""
    text = f"{name} raised in '{path}'{kind}: {_error_text(error)}{_user_frame(error)}"
    call = tracer.calls[-1] if tracer.calls and tracer.calls[-1].module is module else None
    if call is not None and call.engine is not None and call.engine.error:
        text += f"; convcalc agrees: {call.engine.error}"
    return VerifyError(text)


def _runs_plainly(torch: Any, model: Any, inputs: Any) -> bool:
    try:
        with torch.no_grad(), _eval_mode(model):
            model(*inputs[0], **inputs[1])
    except BaseException:
        return False
    return True


def _why_not_sequential(calls: Sequence[_Call], checks: Sequence[LayerCheck], output_is_last: bool) -> str | None:
    """None when the leaves ran as a chain convcalc can write as a spec, else the reason."""
    if not calls:
        return "the model has no leaf modules"
    seen: set[int] = set()
    for call, check in zip(calls, checks):
        if call.own:
            path = call.path[: -len(OWN)]
            return f"'{path}' ({check.class_path}) computes in its own forward, outside its child modules"
        if id(call.module) in seen:
            return f"'{call.path}' runs more than once"
        seen.add(id(call.module))
        if not call.chained:
            return f"'{call.path}' does not read the previous module's output (the forward computes something between them)"
        if not check.known:
            return f"'{call.path}' is a {check.class_path}, which convcalc does not know"
        if check.layer is None and check.judged_as and not check.mismatches:
            return f"'{call.path}' ({check.class_path}) computes {check.judged_as}: several spec rows for one module"
        if check.layer is None:
            return f"convcalc refuses '{call.path}'"
    if not output_is_last:
        return "the model's output is not its last module's output"
    return None


def _plain(value: Any) -> Any:
    """torch.Size and nested tuples → tuples of Python numbers."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return value


def _user_frame(error: BaseException) -> str:
    """`` (model.py:12)``: the innermost traceback frame outside torch and convcalc."""
    torch_root = os.sep + "torch" + os.sep
    found = ""
    for frame in traceback.extract_tb(error.__traceback__):
        name = frame.filename
        if name.startswith(_PACKAGE) or torch_root in name or name.startswith("<"):
            continue
        found = f" ({os.path.relpath(name) if not os.path.relpath(name).startswith('..') else name}:{frame.lineno})"
    return found


def _suggest(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean Net?"``, else the first classes (capitalised names) among ``choices``."""
    close = suggest(word, choices)
    if close:
        return close
    models = [c for c in choices if c[:1].isupper()]
    return f" (it has: {', '.join(models[:8])})" if models else ""
