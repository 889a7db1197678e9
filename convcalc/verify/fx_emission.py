"""``verify --emit-spec`` for graph models: trace the module with ``torch.fx``, map every node onto a
spec layer (``name:``/``from:`` wiring, ``Add``/``Multiply``/``Concat`` for ``+``/``*``/``torch.cat``,
``Flatten`` for ``torch.flatten``/``.view(n, -1)`` (any other reshape: Flatten + ``Unflatten``), ``Permute`` for ``.permute``, ``Scale`` for a parameter
times a tensor (a layer scale), ``Bias`` for a parameter plus a tensor (a position embedding), ``ClassToken`` for
expanded parameters concatenated before the tokens (a ViT's class token), functional layers as their modules, ``tie:`` for a
module called twice or weights shared, ``Narrow`` per piece of ``x.chunk``/``torch.split``, one
``ChannelShuffle`` for ShuffleNet's view → transpose → view), fold identical submodules into ``blocks:``, and prove the
result: the spec, built as torch modules with the model's weights, gives the model's output on the
same random input, and the same parameters, MACs and output shape.

:func:`fx_emission` returns None when fx cannot trace the model (the caller then tries the chain of
leaves); anything the graph holds that a spec cannot express is a :class:`VerifyError` naming the fx
node, the module whose forward made it, and the reason.

Python values computed from tensor sizes (``x.size()``, ``x.shape``, ``c // g``, ``h == 224``,
``torch._assert``) are plumbing: each node keeps the value the traced input gave, a layer that reads
one gets that value, and only a tensor op that uses one in a way a spec cannot express is refused.

The rows are :class:`~.fx_rows.Entry`; :mod:`.fx_text` folds them into ``blocks:`` and writes the YAML,
:mod:`.fx_proof` proves the written spec against the model.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConvcalcError
from ..layers import Layer, make_layer
from .attention import is_called_as_torch
from .equivalents import leaf_by_name, whole_module
from .fx_proof import _prove
from .fx_rows import INPUT, Entry, _dims, _first, _refusal_text, _scopes
from .fx_text import _Blocks, _flow, _text
from .report import VerifyError, VerifyReport
from .runtime import SINGLE_THREAD_MACS, _eval_mode, _threads, import_torch, torch_dtype
from .swin import (
    attention_layer,
    attention_state,
    is_patch_merging_pad,
    is_torchvision_attention,
)
from .user_models import torch_layer_class


@dataclass
class Emitted:
    """A proven spec: its text and its number of rows."""

    text: str
    rows: int
    blocks: list[str] = field(default_factory=list)


class _Refusal(Exception):
    def __init__(self, node: Any, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


def fx_emission(report: VerifyReport) -> Emitted | str:
    """The proven spec of ``report``'s module, or why torch.fx cannot trace it (a str); raises
    VerifyError if the graph holds something a spec cannot express."""
    torch = import_torch()
    model = report.module
    device = next((p.device for p in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    dt = torch_dtype(torch, report.dtype)
    graph = trace(torch, model)
    if isinstance(graph, str):
        return graph
    inputs = [n for n in graph.graph.nodes if n.op == "placeholder"]
    if len(inputs) > 1 and any(n.users and not n.args for n in inputs[1:]):  # an argument left at its default is a value
        second = next(n for n in inputs[1:] if n.users and not n.args)
        raise VerifyError(_refusal_text(report.name, second, f"is a second input of forward ({second.target}); a spec has one input"))
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(tuple(report.input_shape), generator=generator, dtype=dt).to(device)
    single = device.type == "cpu" and report.totals.macs < SINGLE_THREAD_MACS
    try:
        with torch.no_grad(), _eval_mode(model), _threads(torch, single):
            values = _Recorder(graph).shapes(x)
    except Exception as error:  # noqa: BLE001  the traced graph does not run: say so
        return f"the traced graph does not run ({type(error).__name__}: {_first(error)})"
    mapper = _Mapper(torch, graph, values, report.name)
    mapper.root = model  # the traced module keeps copies of attributes, not the modules that own them
    try:
        entries = mapper.map()
    except _Refusal as refusal:
        raise VerifyError(_refusal_text(report.name, refusal.node, refusal.reason)) from None
    _check_unused_parameters(model, entries, report.name)
    blocks = _Blocks(entries, mapper.output).find()
    text = _text(report, entries, blocks, mapper.checks, mapper.batch_bound, mapper.sized)
    from .emission import _load_text, check_totals

    summary = _load_text(text, report)
    check_totals(report, summary, tuple(values[mapper.output_node.args[0].name]))
    with _threads(torch, single):
        _prove(torch, report, graph, entries, summary, x)
    return Emitted(text, len(summary.rows), sorted(blocks))


# -- tracing ----------------------------------------------------------------------------------


def trace(torch: Any, model: Any) -> Any:
    """``torch.fx.symbolic_trace`` in eval mode, keeping as leaves the layers convcalc judges
    (torch's own, and subclasses that do not change how they compute); a str says why it failed."""
    import torch.fx

    class Tracer(torch.fx.Tracer):  # type: ignore[misc,name-defined]
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            if torch_layer_class(type(m)) is not None or leaf_by_name(m):
                return True
            return bool(super().is_leaf_module(m, qualname))

    try:
        with _eval_mode(model):
            tracer = Tracer()
            graph = tracer.trace(model)
            module = torch.fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as error:  # noqa: BLE001  any failure to trace falls back to the chain of leaves
        return f"{type(error).__name__}: {_first(error)}"
    _rewire_in_place(module.graph)
    module.graph.eliminate_dead_code()
    module.recompile()
    return module


def _rewire_in_place(graph: Any) -> None:
    """``out.mul_(self.gain)`` whose result is dropped (timm's NF-ResNet ``skipinit_gain``): fx records the call, but the
    code after it reads ``out``, so the graph computes without it (and dead-code elimination removes it). What reads the
    tensor after an in-place Tensor method reads that method's result instead, as Python would see it."""
    order = {node: number for number, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        target = node.target if node.op == "call_method" else ""
        if not (isinstance(target, str) and target.endswith("_") and not target.startswith("_") and node.args):
            continue
        tensor = node.args[0]
        if hasattr(tensor, "replace_all_uses_with"):
            tensor.replace_all_uses_with(node, delete_user_cb=lambda user, at=order[node]: order.get(user, -1) > at)


class _Recorder:
    """Runs the traced graph once and keeps each node's output shape (tensors), or the value
    itself for small Python values (sizes, ints); tuples of tensors as tuples of shapes."""

    def __init__(self, graph: Any) -> None:
        import torch.fx

        owner = self
        self.values: dict[str, Any] = {}

        class Interpreter(torch.fx.Interpreter):  # type: ignore[misc,name-defined]
            def run_node(self, n: Any) -> Any:
                result = super().run_node(n)
                owner.values[n.name] = _describe(result)
                return result

        self.interpreter = Interpreter(graph)

    def shapes(self, x: Any) -> dict[str, Any]:
        self.interpreter.run(x)
        return self.values


class Shape(tuple):  # type: ignore[type-arg]
    """A tensor's shape (to tell it from a tuple of Python ints that a node returned)."""


def _describe(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return Shape(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_describe(v) for v in value)
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return type(value).__name__


# -- nodes → entries --------------------------------------------------------------------------


def _functional(torch: Any) -> dict[Any, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]:
    """torch functions (and Tensor method names) → the torch.nn class that computes the same,
    and its constructor arguments from the call's (normalised) keyword arguments."""
    F = torch.nn.functional

    def keep(*names: str, **renamed: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def pick(kw: dict[str, Any]) -> dict[str, Any]:
            out = {name: kw[name] for name in names if name in kw}
            out.update({new: kw[old] for old, new in renamed.items() if old in kw})
            return out

        return pick

    table: dict[Any, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
    simple = {
        "ReLU": (F.relu, torch.relu, "relu", "relu_", F.relu_),
        "ReLU6": (F.relu6,),
        "SiLU": (F.silu,),
        "GELU": (F.gelu,),
        "Hardswish": (F.hardswish,),
        "Hardsigmoid": (F.hardsigmoid,),
        "Sigmoid": (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_"),
        "Tanh": (torch.tanh, F.tanh, "tanh", "tanh_"),
        "Mish": (F.mish,),
        "ELU": (F.elu,),
        "LeakyReLU": (F.leaky_relu,),
        "Hardtanh": (F.hardtanh,),
        "Softplus": (F.softplus,),
        "Softmax": (F.softmax, torch.softmax, "softmax"),
        "LogSoftmax": (F.log_softmax, torch.log_softmax, "log_softmax"),
    }
    args = {
        "ReLU": keep("inplace"),
        "ReLU6": keep("inplace"),
        "SiLU": keep("inplace"),
        "GELU": keep("approximate"),
        "Hardswish": keep("inplace"),
        "Hardsigmoid": keep("inplace"),
        "Sigmoid": keep(),
        "Tanh": keep(),
        "Mish": keep("inplace"),
        "ELU": keep("alpha", "inplace"),
        "LeakyReLU": keep("negative_slope", "inplace"),
        "Hardtanh": keep("min_val", "max_val", "inplace"),
        "Softplus": keep("beta", "threshold"),
        "Softmax": keep("dim"),
        "LogSoftmax": keep("dim"),
    }
    for name, targets in simple.items():
        for target in targets:
            table[target] = (name, args[name])
    pool = keep("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    avg = keep("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
    for dims in (1, 2, 3):
        table[getattr(F, f"max_pool{dims}d")] = (f"MaxPool{dims}d", pool)
        table[getattr(torch, f"max_pool{dims}d", None) or object()] = (f"MaxPool{dims}d", pool)
        table[getattr(F, f"avg_pool{dims}d")] = (f"AvgPool{dims}d", avg)
        table[getattr(F, f"adaptive_avg_pool{dims}d")] = (f"AdaptiveAvgPool{dims}d", keep("output_size"))
        table[getattr(F, f"adaptive_max_pool{dims}d")] = (f"AdaptiveMaxPool{dims}d", keep("output_size", "return_indices"))
    table[torch.adaptive_avg_pool1d] = ("AdaptiveAvgPool1d", keep("output_size"))
    table[F.interpolate] = ("Upsample", keep("size", "scale_factor", "mode", "align_corners"))
    table[F.pixel_shuffle] = ("PixelShuffle", keep("upscale_factor"))
    table[torch.pixel_shuffle] = ("PixelShuffle", keep("upscale_factor"))
    table[F.unfold] = ("Unfold", keep("kernel_size", "dilation", "padding", "stride"))
    table[F.fold] = ("Fold", keep("output_size", "kernel_size", "dilation", "padding", "stride"))
    return table


#: Tensor methods that read a tensor's sizes, not its values: their results are plumbing.
_SIZE_METHODS = ("size", "dim", "numel", "nelement", "ndimension")
#: Tensor methods (and, as functions, torch.chunk/split/tensor_split) that cut one dimension into pieces.
_PIECES = ("chunk", "split", "tensor_split")
_SWAPS = ("transpose", "swapaxes", "swapdims")
#: Functions and Tensor methods that return their input unchanged (in eval mode).
_PASS_METHODS = ("contiguous", "clone", "detach")
_ADD = ("add", "add_", "__add__", "__iadd__", "__radd__")
_MUL = ("mul", "mul_", "__mul__", "__imul__", "__rmul__")
_SUB = ("sub", "sub_", "subtract", "__sub__", "__isub__")
_DIV = ("div", "div_", "divide", "true_divide", "__truediv__", "__itruediv__")
#: The elementwise joins: spec merge → its Tensor method names (the functions are in :meth:`_Mapper.join`).
_JOIN_METHODS = {"Add": _ADD, "Subtract": _SUB, "Multiply": _MUL, "Divide": _DIV}
_JOIN_VERBS = {"Add": "adds", "Subtract": "subtracts", "Multiply": "multiplies", "Divide": "divides"}


class _Mapper:
    """Walks the traced graph in order and makes one entry (or two, or none) per node."""

    def __init__(self, torch: Any, graph: Any, values: dict[str, Any], model_name: str) -> None:
        self.torch = torch
        self.graph = graph
        self.values = values
        self.model_name = model_name
        self.table = _functional(torch)
        self.env: dict[str, Any] = {}  # fx node name → entry name, INPUT, or ("value", python value)
        self.entries: list[Entry] = []
        self.names: set[str] = {INPUT}
        self.module_rows: dict[int, str] = {}  # id(module) → the entry of its first call
        self.param_rows: dict[int, tuple[str, str]] = {}  # id(parameter) → (entry, parameter name)
        self.output = ""
        self.output_node: Any = None
        self.modules = dict(graph.named_modules())
        self.checks: list[str] = []  # the torch._assert nodes dropped (they held on the traced input)
        self.narrowed: dict[tuple[str, int], str] = {}  # (pieces node, index) → its Narrow entry
        self.made: dict[str, str] = {}  # fx node of a split view (or its transpose) → the row made for it
        self.batch_bound: list[str] = []  # the reshapes that reach the batch dimension
        self.sized: list[str] = []  # the rows whose numbers were computed from the traced input's sizes (x * x.size(1))
        self.root: Any = graph  # the model itself (fx_emission sets it)
        t = torch
        self.join_functions = {"Add": (operator.add, operator.iadd, t.add), "Subtract": (operator.sub, operator.isub, t.sub, t.subtract),
                               "Multiply": (operator.mul, operator.imul, t.mul),
                               "Divide": (operator.truediv, operator.itruediv, t.div, t.divide, t.true_divide)}
        self.attention_rows: set[str] = set()  # fx nodes of nn.MultiheadAttention calls (item 1: the weights)

    def map(self) -> list[Entry]:
        placeholders = 0
        for node in self.graph.graph.nodes:
            if node.op == "placeholder":
                if placeholders and node.users and not node.args:
                    raise _Refusal(node, f"forward takes a second input ({node.target}); a spec has one input")
                placeholders += 1
                # forward's other arguments keep their defaults (timm's attn_mask=None): Python values
                self.env[node.name] = INPUT if placeholders == 1 else ("value", node.args[0] if node.args else None)
            elif node.op == "get_attr":
                self.env[node.name] = ("attr", node.target)
            elif node.op == "output":
                self.output_node = node
                self.output = self.tensor(node, node.args[0], "the model's output")
                if self.output == INPUT:
                    raise _Refusal(node, "the model returns its input unchanged; a spec needs at least one layer")
            elif node.op == "call_module":
                self.call_module(node)
            else:
                self.call_function(node)
        return self._reachable()

    # -- helpers --------------------------------------------------------------------------
    def tensor(self, node: Any, arg: Any, what: str) -> str:
        """The entry name of a tensor argument, or a refusal saying what it is instead."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            value = self.env[arg.name]
            if isinstance(value, str):
                return value
            if value[0] == "attr":
                raise _Refusal(node, f"uses the parameter or buffer '{value[1]}' directly (not through its module); a spec has no such layer")
            if value[0] == "expanded":
                raise _Refusal(node, f"uses the parameter '{value[1]}' expanded to the batch other than before the tokens of a"
                               " torch.cat(…, dim=1) (a class token); a spec has no such layer")
            if value[0] == "gathered":
                raise _Refusal(node, f"uses the attention biases '{value[1]}'[:, index] other than added to attention scores;"
                               " a spec's AttentionBias adds them to its input")
            if value[0] in ("indexed", "pieces", "unbound"):
                raise _Refusal(node, f"uses the tuple that '{arg.name}' returns as one tensor; a spec wires tensors only")
            if value[0] in ("split", "swapped"):
                return self.unsplit(value)
            raise _Refusal(node, f"uses '{arg.name}' = {self.values.get(arg.name)!r}, a Python value computed from sizes, as a tensor;"
                           " a spec's layers take tensors")
        if isinstance(arg, (tuple, list, dict)):
            raise _Refusal(node, f"{what} is a {type(arg).__name__} of values; a spec has one tensor here")
        raise _Refusal(node, f"{what} is the constant {arg!r}; a spec computes on tensors only")

    def is_tensor(self, arg: Any) -> bool:
        import torch.fx

        return isinstance(arg, torch.fx.Node) and isinstance(self.env.get(arg.name), str)

    def is_value(self, arg: Any) -> bool:
        value = self.env.get(getattr(arg, "name", ""))
        return isinstance(value, tuple) and value[0] == "value"

    def plumbing(self, node: Any, method: bool) -> bool:
        """A node that computes a Python value from tensor sizes (``x.size()``, ``x.shape``, ``len(x)``)
        or from such values only (``c // groups``, ``h == 224``): the values the traced input gave
        are used where a layer reads them; nothing of it is a row."""
        if _holds_tensor(self.values.get(node.name)):
            return False
        if (method and node.target in _SIZE_METHODS) or node.target in (getattr, len, self.torch.numel):
            return True
        return all(self.is_value(a) for a in node.all_input_nodes)

    def resolve(self, arg: Any) -> Any:
        """``arg`` with every Python value computed in forward (sizes) replaced by what it was on the
        traced input; tensors stay fx nodes."""
        if hasattr(arg, "op"):
            return self.env[arg.name][1] if self.is_value(arg) else arg
        if isinstance(arg, (list, tuple)):
            return type(arg)(self.resolve(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self.resolve(v) for k, v in arg.items()}
        if isinstance(arg, slice):
            return slice(self.resolve(arg.start), self.resolve(arg.stop), self.resolve(arg.step))
        return arg

    def word(self, base: str) -> str:
        name = re.sub(r"\W", "_", base) or "node"
        if not re.match(r"[A-Za-z_]", name):
            name = "n" + name
        if name == INPUT:
            name += "_"
        candidate, number = name, 1
        while candidate in self.names:
            number += 1
            candidate = f"{name}_{number}"
        self.names.add(candidate)
        return candidate

    def add(self, node: Any, type_name: str, module: Any, inputs: list[str], *, name: str | None = None, target: str | None = None,
            layer: Layer | None = None, **extra: Any) -> str:
        """An entry for ``node``: ``module``'s layer (or ``layer``, the one a module kept whole computes), else
        a ``type_name`` row whose args the caller sets."""
        args: dict[str, Any] = {}
        if module is not None or layer is not None:
            from .emission import _spec_args
            from .user_models import layer_from_module

            if layer is None:
                try:
                    layer = layer_from_module(module)
                except ConvcalcError as error:
                    raise _Refusal(node, f"convcalc refuses it: {error.message}") from None
            if layer is None:
                raise _Refusal(node, f"'{node.target}' is a {_class_path(module)}, which convcalc does not know")
            type_name = layer.type_name
            args = _spec_args(layer)
        if target is None:
            target = node.target if node.op == "call_module" else re.sub(r"_\d+$", "", name or node.name)
        entry = Entry(name=self.word(name or node.name), type=type_name, args=args, inputs=inputs, node=node.name,
                      scopes=_scopes(node), layer=layer, target=target, module=module, **extra)
        self.entries.append(entry)
        return entry.name

    def whole(self, node: Any, module: Any, source: str) -> tuple[str, Layer]:
        """A module kept whole (MaxViT's attention, timm's Conv2dSame): the engine layers it computes, as a probe on
        its input's shape shows. Rows for the layers before the one that takes the module's weights (a
        ZeroPad2d before the conv) are added here; returns (the input of that one, its layer)."""
        from .equivalents import judge_whole

        shape = tuple(self.values[node.args[0].name])
        parameter = next(iter((*module.parameters(), *module.buffers())), None)
        dtype, device = (parameter.dtype, parameter.device) if parameter is not None else (self.torch.float32, self.torch.device("cpu"))
        proposal, why = judge_whole(self.torch, module, shape, dtype, device)
        if proposal is None:
            raise _Refusal(node, f"'{node.target}' is a {_class_path(module)}, which convcalc knows by name, but {why}")
        owner = proposal.owner or 0
        if owner != len(proposal.layers) - 1:
            raise _Refusal(node, f"'{node.target}' computes layers after the one with its weights; convcalc writes those before it only")
        for layer in proposal.layers[:owner]:
            source = self.add(node, "", None, [source], name=f"{node.target}.{layer.type_name.lower()}", layer=layer)
        return source, proposal.layers[owner]

    def _function_module(self, node: Any, class_name: str, kwargs: dict[str, Any]) -> Any:
        try:
            return getattr(self.torch.nn, class_name)(**kwargs)
        except Exception as error:  # noqa: BLE001  torch refuses the arguments: say which
            raise _Refusal(node, f"torch.nn.{class_name}(**{kwargs!r}) raises {type(error).__name__}: {_first(error)}") from None

    # -- parameters used directly: layer scales, F.layer_norm's weights ----------------------
    def is_parameter(self, arg: Any) -> bool:
        """Whether ``arg`` is a get_attr node (or a view of one): a parameter or buffer used without its module."""
        import torch.fx

        return isinstance(arg, torch.fx.Node) and isinstance(self.env.get(arg.name), tuple) and self.env[arg.name][0] == "attr"

    def parameter(self, node: Any, arg: Any, what: str) -> tuple[str, Any, tuple[int, ...]]:
        """(its path, the nn.Parameter, the shape it is used in) of a get_attr argument; a buffer or a
        constant tensor is refused (a spec's weights are parameters)."""
        attr = self.env[arg.name]
        path, shape = attr[1], attr[2] if len(attr) > 2 else None
        value: Any = self.graph
        for part in path.split("."):
            value = getattr(value, part)
        if not isinstance(value, self.torch.nn.Parameter):
            raise _Refusal(node, f"{what} the tensor '{path}', which is no parameter (a buffer or a constant); a spec's weights are learned")
        return path, value, tuple(value.shape) if shape is None else tuple(shape)

    def parameter_view(self, node: Any) -> None:
        """``self.gamma.reshape(1, -1, 1, 1)``: the same parameter, used in another shape (no row)."""
        path = self.env[node.args[0].name][1]
        after = self.values.get(node.name)
        self.env[node.name] = ("attr", path, tuple(after) if isinstance(after, tuple) else None)

    def owned(self, node: Any, type_name: str, params: list[Any], inputs: list[str], args: dict[str, Any], state: dict[str, Any],
              module: Any = None, name: str | None = None) -> str:
        """A row whose weights are model parameters used without their module; a parameter used again
        is the same layer again (``tie:``)."""
        first = {self.param_rows.get(id(p), (None, ""))[0] for p in params}
        tie = None
        if first != {None}:
            tie = next(iter(first))
            if len(first) > 1 or any(self.param_rows.get(id(p)) is None for p in params):
                raise _Refusal(node, f"uses the parameters of '{tie}' together with others; a spec ties whole layers (tie:)")
        trainable = any(p.requires_grad for p in params)
        name = self.add(node, type_name, module, inputs, name=name, tie=tie, again=tie, trainable=trainable, state=state, owns=tuple(params))
        if module is None:
            self.entries[-1].args = args
        first_row = next((e for e in self.entries if e.name == tie), None)
        if first_row is not None and (first_row.type, first_row.args) != (self.entries[-1].type, self.entries[-1].args):
            what = f"a {first_row.type} {_flow(first_row.args)}"
            raise _Refusal(node, f"uses the parameters of '{tie}' ({what}) again as a {self.entries[-1].type} {_flow(self.entries[-1].args)};"
                           " a spec ties a layer to one of the same type and arguments (tie:)")
        if tie is None:
            for key, p in zip(state, params):
                self.param_rows.setdefault(id(p), (name, key))
        return name

    def scale(self, node: Any) -> None:
        """``self.layer_scale * x``, ``x.mul(self.gamma)``: a ``Scale`` row with the parameter as its weight."""
        self.weighted(node, "Scale", "multiplies", "multiplies by", "the tensor it scales")

    def bias(self, node: Any) -> None:
        """``x + self.pos_embedding``, ``torch.add(x, p)``, ``x.add(p)`` (either order): a ``Bias`` row with the
        parameter as its weight (a learned position embedding)."""
        if node.kwargs.get("alpha", 1) != 1:
            raise _Refusal(node, f"adds the parameter with alpha={node.kwargs['alpha']!r}; a spec's Bias adds the parameter itself")
        self.weighted(node, "Bias", "adds", "adds", "the tensor it adds to")

    def weighted(self, node: Any, kind: str, verb: str, uses: str, what: str) -> None:
        """A tensor and one parameter, multiplied (Scale) or added (Bias): a row of ``kind`` whose weight is the
        parameter in the shape it is used in, named after it; a parameter used again is a ``tie:``."""
        operands = [a for a in (*node.args[:2], node.kwargs.get("other")) if a is not None]
        weights = [a for a in operands if self.is_parameter(a)]
        tensors = [a for a in operands if not self.is_parameter(a)]
        if len(operands) != 2 or len(weights) != 1:
            raise _Refusal(node, f"{verb} two parameters; a spec's {kind} {verb} a tensor and one parameter")
        source = self.tensor(node, tensors[0], what)
        path, param, shape = self.parameter(node, weights[0], uses)
        name = self.owned(node, kind, [param], [source], {"shape": list(shape)},
                          {"weight": param.detach().reshape(shape)}, name=path)  # named after the parameter: layer_scale, pos_embedding
        self.env[node.name] = name

    def expanded(self, node: Any) -> None:
        """``self.class_token.expand(n, -1, -1)``: a parameter of (1, tokens, …) repeated along the batch. No row
        of its own: a ``torch.cat`` that puts it before the tokens is a ClassToken (:meth:`class_token`)."""
        path, param, shape = self.parameter(node, node.args[0], "expands")
        out = self.values.get(node.name)
        if len(shape) < 2 or shape[0] != 1 or not isinstance(out, Shape) or len(out) != len(shape) or tuple(out[1:]) != tuple(shape[1:]):
            raise _Refusal(node, f"expands the parameter '{path}' of {_dims(shape)} to {_dims(out)}; a spec's ClassToken repeats a"
                           " parameter of (1, tokens, …) along the batch only")
        cats = (self.torch.cat, getattr(self.torch, "concat", None), getattr(self.torch, "concatenate", None))
        if all(user.op == "call_function" and user.target in cats for user in node.users):
            self.env[node.name] = ("expanded", path, param, shape)  # a torch.cat before the tokens: a ClassToken
            return
        # used as a tensor too (CaiT: x_cls + attn(cat(x_cls, x))): a Token row, the parameter repeated along the
        # input's batch; a cat that reads it is then a Concat
        self.env[node.name] = self.owned(node, "Token", [param], [INPUT], {"shape": list(shape)},
                                         {"weight": param.detach().reshape(shape)}, name=path)

    def join(self, node: Any) -> str | None:
        """The elementwise merge a node is (``x + y``, ``torch.mul``, ``x.div_(y)`` …), or None."""
        for kind, methods in _JOIN_METHODS.items():
            if (node.op == "call_method" and node.target in methods) or (node.op == "call_function" and node.target in self.join_functions[kind]):
                return kind
        return None

    def broadcast_view(self, node: Any) -> None:
        """``y.expand_as(x)`` / ``y.expand(...)`` of a tensor read only by elementwise joins (timm's ECA: ``x * y.expand_as(x)``):
        those broadcast it as the expand does, so it is no row; anything else reading it is refused."""
        source = self.tensor(node, node.args[0], "its input")
        shape = self.values.get(node.name)
        for user in node.users:
            elementwise = self.join(user) is not None
            others = [a for a in user.all_input_nodes if a is not node]
            covered = all(isinstance(self.values.get(a.name), Shape) and tuple(self.values[a.name]) == tuple(shape) for a in others)
            if not elementwise or not others or not covered:
                raise _Refusal(node, f"expands '{node.args[0].name}' to {_dims(shape)} for '{user.name}', which does not broadcast it"
                               " back; a spec broadcasts only where tensors are joined (Add, Multiply …)")
        self.env[node.name] = source

    def stack(self, node: Any) -> None:
        """``torch.stack([a, b], dim)``: each input given a new dimension of size 1 (an Unflatten), then a Concat along it."""
        kw = self._kwargs(node)
        tensors, dim = kw.get("tensors"), self.resolve(kw.get("dim", 0))
        if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
            raise _Refusal(node, "stacks other than a list of two or more tensors; a spec's Concat joins two or more")
        shape = self.values.get(tensors[0].name) if hasattr(tensors[0], "name") else None
        if not isinstance(shape, Shape) or not isinstance(dim, int) or isinstance(dim, bool) or not -len(shape) - 1 <= dim <= len(shape):
            raise _Refusal(node, f"stacks along {dim!r}, which convcalc cannot follow")
        dim %= len(shape) + 1
        grown = []
        for number, tensor in enumerate(tensors):
            source = self.tensor(node, tensor, "a tensor it stacks")
            size = self.values[tensor.name]
            at = min(dim, len(size) - 1)  # the dimension split into two: (1, size) before it, or (size, 1) at the end
            parts = [1, size[at]] if dim < len(size) else [size[at], 1]
            module = self._function_module(node, "Unflatten", {"dim": at, "unflattened_size": parts})
            grown.append(self.add(node, "", module, [source], name=f"{node.name}_unsqueeze_{number}", target=f"{re.sub(r'_[0-9]+$', '', node.name)}_unsqueeze"))
            self.entries[-1].node = ""
        self.env[node.name] = self.add(node, "Concat", None, grown)
        self.entries[-1].args = {"dim": dim}

    def addcmul(self, node: Any) -> None:
        """``torch.addcmul(self.beta, self.alpha, x)`` (ResMLP's Affine: beta + alpha · x): a Scale row, then a Bias row."""
        kw = self._kwargs(node)
        base, one, two = kw.get("input"), kw.get("tensor1"), kw.get("tensor2")
        value = self.resolve(kw.get("value", 1))
        weights = [a for a in (one, two) if self.is_parameter(a)]
        tensors = [a for a in (one, two) if not self.is_parameter(a)]
        if value != 1 or len(weights) != 1 or len(tensors) != 1 or not self.is_parameter(base):
            raise _Refusal(node, "calls torch.addcmul other than parameter + parameter × tensor; a spec has Scale and Bias for that")
        path, param, shape = self.parameter(node, weights[0], "multiplies by")
        scaled = self.owned(node, "Scale", [param], [self.tensor(node, tensors[0], "the tensor it scales")], {"shape": list(shape)},
                            {"weight": param.detach().reshape(shape)}, name=path)
        self.entries[-1].node = ""
        path, param, shape = self.parameter(node, base, "adds")
        self.env[node.name] = self.owned(node, "Bias", [param], [scaled], {"shape": list(shape)}, {"weight": param.detach().reshape(shape)}, name=path)

    def pad(self, node: Any) -> None:
        """``F.pad(x, (left, right, top, bottom, …), mode, value)``: the padding layer of that many axes and mode
        (ZeroPad for constant 0, ConstantPad, ReflectionPad, ReplicationPad, CircularPad), as torch's own."""
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input"), "its input")
        pads, mode, value = self.resolve(kw.get("pad")), self.resolve(kw.get("mode", "constant")), self.resolve(kw.get("value", None))
        if not isinstance(pads, (list, tuple)) or not pads or len(pads) % 2 or len(pads) > 6 or not all(isinstance(p, int) and not isinstance(p, bool) for p in pads):
            raise _Refusal(node, f"pads by {pads!r}; a spec's padding layers take 2, 4 or 6 whole numbers")
        axes = len(pads) // 2
        kinds = {"constant": "ConstantPad" if value not in (None, 0, 0.0) else "ZeroPad", "reflect": "ReflectionPad",
                 "replicate": "ReplicationPad", "circular": "CircularPad"}
        if mode not in kinds:
            raise _Refusal(node, f"pads in mode {mode!r}, which has no spec layer")
        args: dict[str, Any] = {"padding": list(pads)}
        if kinds[mode] == "ConstantPad":
            args["value"] = float(value)
        module = self._function_module(node, f"{kinds[mode]}{axes}d", args)
        self.env[node.name] = self.add(node, "", module, [source])

    def is_expanded(self, arg: Any) -> bool:
        value = self.env.get(getattr(arg, "name", ""))
        return isinstance(value, tuple) and value[0] == "expanded"

    def class_token(self, node: Any, tensors: Sequence[Any], dim: Any) -> None:
        """``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)`` (torchvision's ViT; timm's ``cls_token``
        and ``reg_token``, DeiT's class and distillation tokens, several parameters before one tensor): one
        ClassToken row, its weight the parameters concatenated in order, named after the first."""
        marks = [self.env[t.name] if self.is_expanded(t) else None for t in tensors]
        first = next(m for m in marks if m is not None)
        rank = len(self.values[node.name])
        if not isinstance(dim, int) or isinstance(dim, bool) or not -rank <= dim < rank or dim % rank != 1:
            raise _Refusal(node, f"concatenates the expanded parameter '{first[1]}' along dimension {dim!r}; a spec's ClassToken"
                           " puts its tokens first along dimension 1")
        lead = next((i for i, m in enumerate(marks) if m is None), len(marks))
        if lead == len(marks) or any(m is not None for m in marks[lead:]):
            later = next((m for m in marks[lead:] if m is not None), first)
            where = "after the tokens" if lead < len(marks) else "with no tensor after it"
            raise _Refusal(node, f"concatenates the expanded parameter '{later[1]}' {where}; a spec's ClassToken puts its"
                           " tokens before the input's")
        if len(marks) - lead > 1:
            raise _Refusal(node, f"concatenates the expanded parameter '{first[1]}' with {len(marks) - lead} tensors; a spec's"
                           " ClassToken puts its tokens before one tensor")
        source = self.tensor(node, tensors[-1], "the tensor it puts the tokens before")
        used = [m for m in marks[:lead] if m is not None]
        params = [m[2] for m in used]
        if len({id(p) for p in params}) != len(params):
            raise _Refusal(node, f"puts the parameter '{first[1]}' in more than once; a spec's ClassToken learns each token once")
        rows = {self.param_rows.get(id(p), (None, ""))[0] for p in params}
        if rows != {None}:  # used before: the same tokens again (a tie), or a part of them, which a spec cannot tie
            earlier = next((e for e in self.entries if e.name in rows), None)
            if len(rows) > 1 or earlier is None or earlier.type != "ClassToken" or [id(p) for p in earlier.owns] != [id(p) for p in params]:
                raise _Refusal(node, f"uses the parameter '{first[1]}' of '{next(iter(rows - {None}))}' in another layer or"
                               " combination; a spec ties whole layers (tie:)")
        weight = self.torch.cat([m[2].detach().reshape(m[3]) for m in used], dim=1)
        name = self.owned(node, "ClassToken", params, [source], {"tokens": sum(m[3][1] for m in used)}, {"weight": weight}, name=first[1])
        for p in params:
            self.param_rows.setdefault(id(p), (name, "weight"))
        self.env[node.name] = name

    def permute(self, node: Any) -> None:
        """``x.permute(0, 2, 3, 1)``, ``x.permute([0, 2, 3, 1])``, ``torch.permute(x, dims)``: a ``Permute`` row
        (dims computed from sizes, ``x.dim() - 1``, as the traced input gave them)."""
        source = self.tensor(node, node.args[0] if node.args else node.kwargs.get("input"), "its input")
        rest = [self.resolve(a) for a in node.args[1:]]
        dims: Any = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
        if not dims:
            dims = self.resolve(node.kwargs.get("dims", []))
        if not isinstance(dims, (list, tuple)) or not dims or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            raise _Refusal(node, f"permutes by dimensions computed in forward ({dims!r}); a spec's Permute takes constant dims")
        name = self.add(node, "Permute", None, [source])
        self.entries[-1].args = {"dims": [int(d) for d in dims]}
        self.env[node.name] = name

    def movedim(self, node: Any) -> None:
        """``x.movedim(1, -1)``, ``torch.moveaxis(x, (1, 2), (3, 1))``: a ``Permute`` row in torch's order
        (each source dimension goes to its destination, the others keep their order in the rest)."""
        given = {**dict(zip(("input", "source", "destination"), node.args)), **node.kwargs}
        source = self.tensor(node, given.get("input"), "its input")
        rank = len(self.values[node.name])  # a move keeps the rank
        moves = [self.resolve(given.get(key)) for key in ("source", "destination")]
        moves = [list(m) if isinstance(m, (list, tuple)) else [m] for m in moves]
        if len(moves[0]) != len(moves[1]) or not all(isinstance(d, int) and not isinstance(d, bool) and -rank <= d < rank for d in moves[0] + moves[1]):
            raise _Refusal(node, f"moves dimensions {moves[0]!r} to {moves[1]!r}, which convcalc cannot follow on a {rank}-D tensor")
        sources, destinations = ([d % rank for d in m] for m in moves)
        order: list[int | None] = [None] * rank
        for moved, place in zip(sources, destinations):
            order[place] = moved
        rest = iter(d for d in range(rank) if d not in sources)
        name = self.add(node, "Permute", None, [source])
        self.entries[-1].args = {"dims": [d if d is not None else next(rest) for d in order]}
        self.env[node.name] = name

    def narrow(self, node: Any) -> None:
        """``x.narrow(dim, start, length)``, ``torch.narrow(x, dim, start, length)``: a ``Narrow`` row (values
        computed from sizes as the traced input gave them)."""
        keys = ("input", "dim", "start", "length")
        given = {**dict(zip(keys, node.args)), **node.kwargs}
        source = self.tensor(node, given.get("input"), "its input")
        args = {key: self.resolve(given.get(key)) for key in keys[1:]}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in args.values()) or args["length"] < 1:
            raise _Refusal(node, f"narrows by {args!r}; a spec's Narrow takes whole numbers (length at least 1)")
        name = self.add(node, "Narrow", None, [source])
        self.entries[-1].args = args
        self.env[node.name] = name

    def batch_norm(self, node: Any) -> None:
        """``F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, …, eps)``
        in a BatchNorm subclass's own forward (timm's BatchNormAct2d): a BatchNorm row with that
        module's weights and running statistics."""
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input"), "its input")
        if kw.get("training"):
            raise _Refusal(node, "calls torch.nn.functional.batch_norm with training=True, which normalises with the batch's own statistics")
        args = {key: kw.get(key) for key in ("running_mean", "running_var", "weight", "bias")}
        path, owner = self.owner(args, self.torch.nn.modules.batchnorm._BatchNorm)
        if owner is None or args["running_mean"] is None or (args["weight"] is None) != (args["bias"] is None):
            raise _Refusal(node, "calls torch.nn.functional.batch_norm with tensors that are not one BatchNorm module's running statistics"
                           " and weights; a spec's BatchNorm has its own")
        rank = len(self.values[node.name])
        dims = 1 if rank <= 3 else rank - 2
        eps = kw.get("eps", owner.eps)
        module = self._function_module(node, f"BatchNorm{dims}d", {"num_features": owner.num_features, "eps": float(eps), "momentum": owner.momentum,
                                                                     "affine": args["weight"] is not None})
        state = {key: getattr(owner, key).detach() for key in ("weight", "bias") if args[key] is not None}
        state.update({key: getattr(owner, key).detach() for key in ("running_mean", "running_var", "num_batches_tracked")})
        params = [getattr(owner, key) for key in ("weight", "bias") if args[key] is not None]
        self.env[node.name] = self.owned(node, "", params, [source], {}, state, module, name=path or None)

    def owner(self, args: dict[str, Any], cls: Any) -> tuple[str, Any]:
        """(path, module) of the one ``cls`` module whose attributes of these names the (non-None)
        arguments are, e.g. a Linear's ``weight`` and ``bias``; (``""``, None) if there is none."""
        if not all(self.is_parameter(arg) for arg in args.values() if arg is not None):
            return "", None
        paths: dict[str, str] = {key: self.env[arg.name][1] for key, arg in args.items() if arg is not None}
        owners = {p.rsplit(".", 1)[0] if "." in p else "" for p in paths.values()}
        if len(owners) != 1:
            return "", None
        path = next(iter(owners))
        module = self.root.get_submodule(path)
        if not isinstance(module, cls) or any(p.rsplit(".", 1)[-1] != key for key, p in paths.items()):
            return "", None
        return path, module

    def linear(self, node: Any) -> None:
        """``F.linear(x, self.weight, self.bias)`` in an nn.Linear subclass's own forward (timm's Linear):
        a Linear row with that module's weights."""
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input"), "its input")
        args = {"weight": kw.get("weight"), "bias": kw.get("bias")}
        path, owner = self.owner(args, self.torch.nn.Linear)
        if owner is None or args["weight"] is None:
            raise _Refusal(node, "calls torch.nn.functional.linear with tensors that are not one Linear module's weight and bias;"
                           " a spec's Linear has its own")
        module = self._function_module(node, "Linear", {"in_features": owner.in_features, "out_features": owner.out_features,
                                                        "bias": args["bias"] is not None})
        params = [getattr(owner, key) for key in ("weight", "bias") if args[key] is not None]
        state = {key: getattr(owner, key).detach() for key in ("weight", "bias") if args[key] is not None}
        self.env[node.name] = self.owned(node, "", params, [source], {}, state, module, name=path or None)

    def group_norm(self, node: Any) -> None:
        """``F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)`` in an nn.GroupNorm subclass's own
        forward (timm's ``GroupNorm1``, metaformer's channel norm): a GroupNorm row with that module's weights."""
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input"), "its input")
        args = {"weight": kw.get("weight"), "bias": kw.get("bias")}
        path, owner = self.owner(args, self.torch.nn.GroupNorm)
        groups, eps = self.resolve(kw.get("num_groups")), self.resolve(kw.get("eps", 1e-5))
        if owner is None or (args["weight"] is None) != (args["bias"] is None) or (args["weight"] is None) == owner.affine:
            raise _Refusal(node, "calls torch.nn.functional.group_norm with tensors that are not one GroupNorm module's weight and bias;"
                           " a spec's GroupNorm has its own")
        if not isinstance(groups, int) or isinstance(groups, bool) or not isinstance(eps, (int, float)):
            raise _Refusal(node, "calls torch.nn.functional.group_norm with a number of groups or eps that is no constant")
        module = self._function_module(node, "GroupNorm", {"num_groups": groups, "num_channels": owner.num_channels, "eps": float(eps),
                                                           "affine": args["weight"] is not None})
        params = [getattr(owner, key) for key in ("weight", "bias") if args[key] is not None]
        state = {key: getattr(owner, key).detach() for key in ("weight", "bias") if args[key] is not None}
        if not params:
            self.env[node.name] = self.add(node, "", module, [source])
            return
        self.env[node.name] = self.owned(node, "", params, [source], {}, state, module, name=path or None)

    def layer_norm(self, node: Any) -> None:
        """``F.layer_norm(x, shape, self.weight, self.bias, eps)`` (torchvision's and timm's LayerNorm2d):
        a ``LayerNorm`` row with those parameters as its weights."""
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input"), "its input")
        normalized = kw.get("normalized_shape")
        eps = kw.get("eps", 1e-5)
        if not isinstance(normalized, (list, tuple)) or not all(isinstance(v, int) for v in normalized) or not isinstance(eps, (int, float)):
            raise _Refusal(node, "calls torch.nn.functional.layer_norm with a shape or eps computed in forward; a spec's LayerNorm takes constants")
        weight, bias = kw.get("weight"), kw.get("bias")
        for what, arg in (("weight", weight), ("bias", bias)):
            if arg is not None and not self.is_parameter(arg):
                raise _Refusal(node, f"calls torch.nn.functional.layer_norm with a {what} computed in forward; a spec's LayerNorm learns its own")
        if weight is None and bias is not None:
            raise _Refusal(node, "calls torch.nn.functional.layer_norm with a bias but no weight; nn.LayerNorm has no such form")
        shape = [int(v) for v in normalized]
        state: dict[str, Any] = {}
        params = []
        for key, arg in (("weight", weight), ("bias", bias)):
            if arg is not None:
                _, param, used = self.parameter(node, arg, f"normalizes with the {key}")
                if tuple(used) != tuple(param.shape):
                    raise _Refusal(node, f"normalizes with a view of the {key} '{self.env[arg.name][1]}'; a spec's LayerNorm has weights of normalized_shape")
                state[key] = param.detach()
                params.append(param)
        module = self._function_module(node, "LayerNorm", {"normalized_shape": shape, "eps": float(eps),
                                                           "elementwise_affine": weight is not None, "bias": bias is not None})
        if not params:
            self.env[node.name] = self.add(node, "", module, [source])
            return
        self.env[node.name] = self.owned(node, "", params, [source], {}, state, module)

    # -- call_module ----------------------------------------------------------------------
    def call_module(self, node: Any) -> None:
        module = self.modules[node.target]
        given = list(node.args) + [v for k, v in node.kwargs.items() if k in ("input", "x")]
        others = [k for k in node.kwargs if k not in ("input", "x")]
        if is_called_as_torch(self.torch, module):  # attn(x, x, x, ...): the one input of a MultiheadAttention row
            given, others = [self.self_attention(node)], []
            self.attention_rows.add(node.name)
        if len(given) != 1 or others:
            raise _Refusal(node, f"calls '{node.target}' with {len(given) + len(others)} arguments; a spec layer takes one tensor")
        source = self.tensor(node, given[0], "its input")
        if is_torchvision_attention(module):
            return self.window_attention(node, module, source)
        params = list(module.parameters())
        trainable = not params or any(p.requires_grad for p in params)
        tie, again, tied = None, None, False
        first = self.module_rows.get(id(module))
        if first is not None:
            again = first
            if params or list(module.buffers()):
                tie = first
        else:
            shared = {self.param_rows.get(id(p)) for p in params}
            owners = {row for row, _ in (s for s in shared if s is not None)}
            if owners:
                names = {name for name, _ in module.named_parameters()}
                owner = next(iter(owners))
                theirs = {pname for pid, (row, pname) in self.param_rows.items() if row == owner}
                whole = len(owners) == 1 and None not in shared and all(
                    self.param_rows.get(id(p)) == (owner, n) for n, p in module.named_parameters()
                ) and names == theirs
                if not whole:
                    raise _Refusal(node, f"'{node.target}' shares some of its parameters with '{owner}' but not all of them"
                                   " under the same names; a spec ties whole layers (tie:)")
                tie, tied = owner, True
        layer = None
        if whole_module(module) and torch_layer_class(type(module)) is None:
            source, layer = self.whole(node, module, source)
        name = self.add(node, "", module, [source], name=node.target, tie=tie, again=again, tied=tied, trainable=trainable, layer=layer)
        if first is None:
            self.module_rows[id(module)] = name
            for pname, p in module.named_parameters():
                self.param_rows.setdefault(id(p), (name, pname))
        returns = self.values.get(node.name)
        self.env[node.name] = ("indexed", name) if isinstance(returns, tuple) and not isinstance(returns, Shape) else name

    def window_attention(self, node: Any, module: Any, source: str) -> None:
        """torchvision's Swin ``ShiftedWindowAttention``/``ShiftedWindowAttentionV2`` (kept an fx leaf): one row of the
        family of that name owning all its parameters (qkv, proj, V1's bias table, V2's cpb_mlp and logit_scale)."""
        from .emission import _spec_args

        try:
            layer = attention_layer(module)
        except ConvcalcError as error:
            raise _Refusal(node, f"convcalc refuses it: {error.message}") from None
        params = list(module.parameters())
        self.env[node.name] = self.owned(node, layer.type_name, params, [source], _spec_args(layer), attention_state(module), name=node.target)

    def self_attention(self, node: Any) -> Any:
        """The query of an ``nn.MultiheadAttention`` call a spec's MultiheadAttention row computes: self-attention
        (query, key and value the same node) without masks; its weights (item 1) are refused where they are used."""
        import inspect

        try:
            bound = inspect.signature(self.torch.nn.MultiheadAttention.forward).bind(None, *node.args, **node.kwargs)
        except TypeError as error:
            raise _Refusal(node, f"calls '{node.target}' with arguments MultiheadAttention.forward does not take ({error})") from None
        bound.apply_defaults()
        given = {k: self.resolve(v) for k, v in bound.arguments.items() if k != "self"}
        query, key, value = given["query"], given["key"], given["value"]
        if not (query is key and key is value):
            names = ", ".join(getattr(v, "name", repr(v)) for v in (query, key, value))
            raise _Refusal(node, f"calls the MultiheadAttention '{node.target}' with query, key, value = {names}: cross-attention;"
                           " a spec's MultiheadAttention is self-attention (attn(x, x, x))")
        for name in ("key_padding_mask", "attn_mask"):
            if given[name] is not None:
                raise _Refusal(node, f"calls the MultiheadAttention '{node.target}' with {name}; a spec's MultiheadAttention takes no mask")
        if given["is_causal"]:
            raise _Refusal(node, f"calls the MultiheadAttention '{node.target}' with is_causal=True; a spec's MultiheadAttention takes no mask")
        return query

    # -- call_function / call_method ------------------------------------------------------
    def call_function(self, node: Any) -> None:
        target = node.target
        method = node.op == "call_method"
        label = target if method else getattr(target, "__name__", str(target))
        if target is operator.getitem:
            return self.getitem(node)
        if label == "_assert":  # it held on this input (else the graph would not have run): dropped
            self.checks.append(node.name)
            self.env[node.name] = ("value", None)
            return None
        if self.plumbing(node, method):
            self.env[node.name] = ("value", self.values.get(node.name))
            return None
        if (method and target in _PIECES) or target in (self.torch.chunk, self.torch.split, self.torch.tensor_split):
            return self.pieces(node)
        if (method and target in _SWAPS) or target in (self.torch.transpose, self.torch.swapaxes, self.torch.swapdims):
            return self.transpose(node)
        join = self.join(node)
        if join == "Add":
            if any(self.is_gathered(a) for a in (*node.args[:2], node.kwargs.get("other"))):
                return self.attention_bias(node)
            if any(self.is_parameter(a) for a in (*node.args[:2], node.kwargs.get("other"))):
                return self.bias(node)
            return self.merge(node, "Add", "adds")
        if (method and target in ("matmul", "__matmul__", "bmm", "mm")) or target in (operator.matmul, self.torch.matmul, self.torch.bmm, self.torch.mm):
            return self.matmul(node)
        if target is getattr(self.torch.nn.functional, "scaled_dot_product_attention", None):
            return self.attention(node)
        if (method and target == "unbind") or target is self.torch.unbind:
            return self.unbind(node)
        if join == "Multiply" and any(self.is_parameter(a) for a in (*node.args[:2], node.kwargs.get("other"))):
            return self.scale(node)
        if join is not None:
            return self.merge(node, join, _JOIN_VERBS[join])
        if not method and is_patch_merging_pad(target):  # torchvision's Swin PatchMerging: pad to even, 2×2 patches → channels
            source = self.tensor(node, node.args[0] if node.args else node.kwargs.get("x"), "its input")
            self.env[node.name] = self.add(node, "PatchMerge", None, [source])
            return None
        if (method and target == "permute") or target is self.torch.permute:
            return self.permute(node)
        if (method and target == "narrow") or target is self.torch.narrow:
            return self.narrow(node)
        if (method and target in ("movedim", "moveaxis")) or target in (self.torch.movedim, self.torch.moveaxis):
            return self.movedim(node)
        if target is self.torch.nn.functional.batch_norm:
            return self.batch_norm(node)
        if target is self.torch.nn.functional.linear and any(self.is_parameter(a) for a in node.all_input_nodes):
            return self.linear(node)
        if target is self.torch.nn.functional.layer_norm:
            return self.layer_norm(node)
        if target is self.torch.nn.functional.group_norm and any(self.is_parameter(a) for a in node.all_input_nodes):
            return self.group_norm(node)
        if (method and target in ("view", "reshape")) and self.is_parameter(node.args[0]):
            return self.parameter_view(node)
        if method and target == "expand" and self.is_parameter(node.args[0]):
            return self.expanded(node)
        if method and target in ("expand", "expand_as") and self.is_tensor(node.args[0]):
            return self.broadcast_view(node)
        if target is self.torch.stack:
            return self.stack(node)
        if target is self.torch.addcmul:
            return self.addcmul(node)
        if target is self.torch.nn.functional.pad:
            return self.pad(node)
        if target in (self.torch.cat, getattr(self.torch, "concat", None), getattr(self.torch, "concatenate", None)):
            return self.concat(node)
        if (method and target == "flatten") or target is self.torch.flatten:
            return self.flatten(node)
        if (method and target in ("view", "reshape", "view_as", "reshape_as", "unsqueeze", "squeeze")) or target in (
                self.torch.reshape, self.torch.unsqueeze, self.torch.squeeze):
            return self.reshape(node)  # a new or dropped size-1 dimension is a reshape too (Unflatten / Flatten)
        if (method and target == "mean") or target is self.torch.mean:
            return self.mean(node)
        if (method and target == "sum") or target is self.torch.sum:
            return self.reduction(node, "Sum")
        if (method and target == "norm") or target in (self.torch.norm, self.torch.linalg.vector_norm):
            return self.reduction(node, "Norm")
        if (method and target == "amax") or target is self.torch.amax:
            return self.reduction(node, "Amax")
        if (method and target == "max") or target is self.torch.max:
            return self.maximum(node)
        if (method and target in _PASS_METHODS) or label in ("stochastic_depth", "dropout", "dropout2d", "dropout1d", "dropout3d", "alpha_dropout"):
            return self.passes(node, label)
        if target in self.table:
            return self.functional(node, *self.table[target])
        what = f"the Tensor method .{target}()" if method else _qualified(self.torch, target)
        attrs = [self.env[a.name][1] for a in node.all_input_nodes if isinstance(self.env.get(a.name), tuple) and self.env[a.name][0] == "attr"]
        if attrs:
            raise _Refusal(node, f"calls {what} with the parameter or buffer '{attrs[0]}' directly (not through a module); a spec has no such layer")
        raise _Refusal(node, f"calls {what}, which has no spec layer")

    def _kwargs(self, node: Any) -> dict[str, Any]:
        """The call's arguments by name (``input`` first for methods)."""
        if node.op == "call_method":
            return {"input": node.args[0], **{f"arg{i}": a for i, a in enumerate(node.args[1:], 1)}, **node.kwargs}
        from torch.fx.operator_schemas import normalize_function

        try:
            pair = normalize_function(node.target, tuple(node.args), dict(node.kwargs), normalize_to_only_use_kwargs=True)
        except Exception:  # noqa: BLE001  no signature to normalise with
            pair = None
        if pair is None:
            return {"input": node.args[0] if node.args else None, **{f"arg{i}": a for i, a in enumerate(node.args[1:], 1)}, **node.kwargs}
        return dict(pair.kwargs)

    def getitem(self, node: Any) -> None:
        source, index = node.args
        value = self.env.get(getattr(source, "name", ""), None)
        if isinstance(value, tuple) and value[0] == "indexed" and index != 0 and getattr(source, "name", "") in self.attention_rows:
            raise _Refusal(node, f"uses the attention weights of '{source.target}' (item {index!r} of what it returns); a spec's"
                           " MultiheadAttention gives the attention output only")
        if isinstance(value, tuple) and value[0] == "indexed" and index == 0:
            self.env[node.name] = value[1]  # a pool's (values, indices): the values flow on, as in a spec
            return
        if isinstance(value, tuple) and value[0] == "value":
            item = self.values.get(node.name)
            self.env[node.name] = ("value", item)
            return
        index = self.resolve(index)
        if isinstance(value, tuple) and value[0] == "pieces" and isinstance(index, int):
            return self.piece(node, value, index)
        if isinstance(value, tuple) and value[0] == "unbound" and isinstance(index, int):
            _, tensor, dim, source_node = value
            return self.slicing(node, source_node, tensor, (*(slice(None),) * dim, index))
        if isinstance(value, tuple) and value[0] in ("split", "swapped"):  # a split view indexed: its rows first
            value = self.unsplit(value)
        if isinstance(value, str):
            return self.slicing(node, source, value, index)
        if (isinstance(value, tuple) and value[0] == "attr" and isinstance(index, tuple) and len(index) == 2
                and index[0] == slice(None) and self.is_parameter(index[1])):
            return self.gathered(node, source, index[1])
        raise _Refusal(node, f"takes item {index!r} of '{getattr(source, 'name', source)}', which a spec cannot wire")

    def gathered(self, node: Any, table: Any, index: Any) -> None:
        """``self.attention_biases[:, self.attention_bias_idxs]`` (LeViT, EfficientFormer): a (heads, h·w) parameter
        indexed by timm's relative-offset buffer. No row of its own: the sum that adds it to attention scores is an
        ``AttentionBias`` row (:meth:`attention_bias`), once the buffer is the index of a grid and stride."""
        from .attention_bias import find_grid

        path, param, _ = self.parameter(node, table, "indexes")
        value: Any = self.graph
        for part in self.env[index.name][1].split("."):
            value = getattr(value, part)
        found = find_grid(self.torch, param, value) if isinstance(value, self.torch.Tensor) else None
        if found is None:
            raise _Refusal(node, f"indexes the parameter '{path}' with '{self.env[index.name][1]}', which is not the relative-offset"
                           " index of a grid (LeViT's attention_bias_idxs); a spec's AttentionBias computes only that one")
        (h, w), stride = found
        self.env[node.name] = ("gathered", path, param, {"num_heads": int(param.shape[0]), "resolution": [h, w], "stride": stride})

    def is_gathered(self, arg: Any) -> bool:
        return hasattr(arg, "name") and isinstance(self.env.get(arg.name), tuple) and self.env[arg.name][0] == "gathered"

    def attention_bias(self, node: Any) -> None:
        """``attn + self.attention_biases[:, self.attention_bias_idxs]``: an ``AttentionBias`` row on the scores, its
        weight the parameter (named after it); used again, a ``tie:``."""
        operands = [a for a in (*node.args[:2], node.kwargs.get("other")) if a is not None]
        tables = [a for a in operands if self.is_gathered(a)]
        tensors = [a for a in operands if not self.is_gathered(a)]
        if len(operands) != 2 or len(tables) != 1 or node.kwargs.get("alpha", 1) != 1:
            raise _Refusal(node, "adds attention biases other than to one tensor; a spec's AttentionBias adds them to its input")
        source = self.tensor(node, tensors[0], "the scores it adds attention biases to")
        _, path, param, args = self.env[tables[0].name]
        self.env[node.name] = self.owned(node, "AttentionBias", [param], [source], args, {"weight": param.detach()}, name=path)

    def slicing(self, node: Any, source_node: Any, source: str, index: Any) -> None:
        """``x[:, :16]``, ``x[..., 2:]``, ``x[:, 0]``: a Narrow row per sliced dimension, a Slice row per dimension
        sliced with a step (``x[:, ::2]``), and a Flatten that drops each dimension an integer picks (its size is 1
        after its Narrow). New axes and tensor indices have no spec layer."""
        shape = self.values.get(source_node.name)
        items = list(index) if isinstance(index, tuple) else [index]
        what = f"indexes or slices the tensor '{source_node.name}' ([{_index_text(index)}])"
        if not isinstance(shape, Shape) or items.count(Ellipsis) > 1:
            raise _Refusal(node, f"{what}, which convcalc cannot follow")
        if Ellipsis in items:
            at = items.index(Ellipsis)
            items[at : at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
        if len(items) > len(shape):
            raise _Refusal(node, f"{what}: more indices than the {len(shape)} dimensions of {_dims(shape)}")
        cuts: list[tuple[int, int, int]] = []  # (dim, start, length)
        strided: list[tuple[int, int, int, int]] = []  # (dim, start, end, step): a Slice row each
        picked: list[int] = []
        for dim, item in enumerate(items):
            if isinstance(item, slice) and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (item.start, item.stop, item.step)):
                start, stop, step = item.indices(shape[dim])
                if step < 1:
                    raise _Refusal(node, f"{what} with step {step}; torch slices with positive steps only")
                if not range(start, stop, step):
                    raise _Refusal(node, f"{what}: dimension {dim} becomes empty; a spec computes on non-empty tensors")
                if step != 1:
                    strided.append((dim, start, stop, step))
                elif (start, stop) != (0, shape[dim]):
                    cuts.append((dim, start, stop - start))
            elif isinstance(item, int) and not isinstance(item, bool) and -shape[dim] <= item < shape[dim]:
                cuts.append((dim, item % shape[dim], 1))
                picked.append(dim)
            else:
                raise _Refusal(node, f"{what}; a spec has no layer for {'a new axis' if item is None else 'this index'} ({item!r})")
        if picked and len(shape) - len(picked) < 1:
            raise _Refusal(node, f"{what}: it picks a single value; a spec's output is a tensor")
        name = source
        base = re.sub(r"_\d+$", "", node.name)
        steps: list[tuple[str, dict[str, int]]] = [("Narrow", {"dim": d, "start": a, "length": n}) for d, a, n in cuts]
        steps += [("Slice", {"dim": d, "start": a, "end": e, "step": k}) for d, a, e, k in strided]
        rank = len(shape)
        for dim in reversed(picked):  # the highest first: the lower ones keep their index
            span = (dim, dim + 1) if dim + 1 < rank else (dim - 1, dim)
            steps.append(("Flatten", {"start_dim": span[0], "end_dim": span[1]}))
            rank -= 1
        if not steps:
            self.env[node.name] = source
            return
        for number, (kind, args) in enumerate(steps, 1):
            last = number == len(steps)
            label = "" if number == 1 else f"_{kind.lower()}"
            module = self._function_module(node, kind, args) if kind == "Flatten" else None
            name = self.add(node, kind, module, [name], name=node.name + label, target=base + label)
            if module is None:
                self.entries[-1].args = args
            if not last:
                self.entries[-1].node = ""  # a step on the way: the proof compares the last one with the node
        self.env[node.name] = name

    def merge(self, node: Any, kind: str, verb: str) -> None:
        kw = node.kwargs
        if kw.get("alpha", 1) != 1:
            raise _Refusal(node, f"{verb} with alpha={kw['alpha']!r}; a spec's {kind} has no factor")
        if kw.get("rounding_mode") is not None:
            raise _Refusal(node, f"divides with rounding_mode={kw['rounding_mode']!r}; a spec's Divide divides exactly")
        operands = list(node.args[:2]) + [kw[k] for k in ("other",) if k in kw]
        neutral = 1 if kind in ("Multiply", "Divide") else 0  # x + 0, 1 * x (MobileOne's sums that start at 0), x - 0, x / 1: x itself
        tensors = [a for a in operands if self.is_tensor(a)]
        others = [self.resolve(a) for a in operands if not self.is_tensor(a)]
        first = bool(operands) and self.is_tensor(operands[0])  # x - c, not c - x
        if len(operands) == 2 and len(tensors) == 1 and len(others) == 1 and type(others[0]) in (int, float):
            number = others[0]
            if number == neutral and (first or kind in ("Add", "Multiply")):
                self.env[node.name] = self.tensor(node, tensors[0], "an operand")
                return
            if any(hasattr(a, "op") for a in operands if not self.is_tensor(a)):
                self.sized.append(node.name)  # q / math.sqrt(q.size(-1)): that size's number, as the traced input gave it
            return self.rescale(node, kind, tensors[0], float(number), first)
        if len(operands) != 2 or not all(self.is_tensor(a) for a in operands):
            constant = next((a for a in operands if not self.is_tensor(a)), None)
            if constant is not None and not hasattr(constant, "op"):
                raise _Refusal(node, f"{verb} the constant {constant!r}; a spec's {kind} joins tensors only")
            for a in operands:
                self.tensor(node, a, f"an operand of {kind}")
        inputs = [self.tensor(node, a, "an operand") for a in operands]
        self.env[node.name] = self.add(node, kind, None, inputs)

    def rescale(self, node: Any, kind: str, tensor: Any, number: float, first: bool) -> None:
        """A tensor and a number: ``q * 0.125``, ``x / 8``, ``16 * sigmoid``, ``1 - x``, ``x + 3`` is a ``Rescale``
        row (x · scale + shift); a number divided by a tensor has none."""
        source = self.tensor(node, tensor, "its operand")
        if kind == "Divide" and not first:
            raise _Refusal(node, f"divides the number {number!r} by a tensor; a spec has no reciprocal layer")
        if kind == "Divide" and number == 0:
            raise _Refusal(node, "divides by 0; a spec computes with finite numbers")
        scale, shift = {"Add": (1.0, number), "Subtract": (1.0, -number) if first else (-1.0, number),
                        "Multiply": (number, 0.0), "Divide": (1.0 / number, 0.0)}[kind]
        try:
            layer = make_layer("Rescale", scale=scale, shift=shift)
        except ConvcalcError as error:
            raise _Refusal(node, f"convcalc refuses it: {error.message}") from None
        self.env[node.name] = self.add(node, "", None, [source], layer=layer)

    def matmul(self, node: Any) -> None:
        """``a @ b``, ``torch.matmul``/``bmm``/``mm`` of two tensors: a ``MatMul`` row with its inputs in order."""
        kw = self._kwargs(node)
        operands = [kw.get(k) for k in ("input", "other", "mat2", "arg1")]
        operands = [a for a in operands if a is not None][:2] if node.op != "call_function" or node.target is not operator.matmul else list(node.args[:2])
        if len(operands) != 2:
            raise _Refusal(node, "multiplies other than two tensors; a spec's MatMul takes two")
        inputs = [self.tensor(node, a, "an operand of MatMul") for a in operands]
        self.env[node.name] = self.add(node, "MatMul", None, inputs)

    def attention(self, node: Any) -> None:
        """``F.scaled_dot_product_attention(q, k, v, is_causal=…, scale=…)``: a ``ScaledDotProductAttention`` row
        (dropout 0, as verify runs in eval); a mask is a tensor a spec cannot give it."""
        kw = self._kwargs(node)
        if self.resolve(kw.get("attn_mask")) is not None:  # forward's attn_mask=None is a value: no mask
            raise _Refusal(node, "calls scaled_dot_product_attention with an attn_mask; a spec's attention takes query, key and value only")
        dropout = self.resolve(kw.get("dropout_p", 0.0))
        if dropout not in (0, 0.0):
            raise _Refusal(node, f"calls scaled_dot_product_attention with dropout_p={dropout!r} in eval; a spec's attention has no dropout")
        inputs = [self.tensor(node, kw.get(k), f"its {k}") for k in ("query", "key", "value")]
        args = {k: self.resolve(kw.get(k, default)) for k, default in (("is_causal", False), ("scale", None), ("enable_gqa", False))}
        if not all(isinstance(args[k], bool) for k in ("is_causal", "enable_gqa")) or not (args["scale"] is None or isinstance(args["scale"], (int, float))):
            raise _Refusal(node, "calls scaled_dot_product_attention with is_causal, scale or enable_gqa computed in forward; a spec takes constants")
        try:
            layer: Any = make_layer("ScaledDotProductAttention", **args)
        except ConvcalcError as error:
            raise _Refusal(node, f"convcalc refuses it: {error.message}") from None
        self.env[node.name] = self.add(node, "ScaledDotProductAttention", None, inputs)
        self.entries[-1].args = {k: v for k, v in (("is_causal", layer.is_causal), ("scale", layer.scale), ("enable_gqa", layer.enable_gqa))
                                 if v not in (False, None)}

    def unbind(self, node: Any) -> None:
        """``q, k, v = qkv.unbind(0)``: each item used is that index of the dimension (a Narrow and a Flatten, as ``x[i]``)."""
        kw = self._kwargs(node)
        source_node = kw.get("input")
        source = self.tensor(node, source_node, "its input")
        dim = self.resolve(kw.get("dim", kw.get("arg1", 0)))
        shape = self.values.get(getattr(source_node, "name", ""))
        if not isinstance(dim, int) or isinstance(dim, bool) or not isinstance(shape, Shape) or not -len(shape) <= dim < len(shape):
            raise _Refusal(node, f"unbinds dimension {dim!r} of {_dims(shape)}, which convcalc cannot follow")
        self.env[node.name] = ("unbound", source, dim % len(shape), source_node)

    def concat(self, node: Any) -> None:
        kw = self._kwargs(node)
        tensors = kw.get("tensors", kw.get("input"))
        dim = kw.get("dim", 0)
        if not isinstance(tensors, (list, tuple)):
            raise _Refusal(node, "concatenates a sequence fx cannot see into; a spec's Concat names its inputs")
        if not isinstance(dim, int):
            raise _Refusal(node, f"concatenates along a computed dimension ({dim!r})")
        if any(self.is_expanded(t) for t in tensors):
            return self.class_token(node, tensors, dim)
        inputs = [self.tensor(node, t, "an input of torch.cat") for t in tensors]
        if len(inputs) == 1:
            self.env[node.name] = inputs[0]
            return
        name = self.add(node, "Concat", None, inputs)
        if dim != 1:
            self.entries[-1].args = {"dim": dim}
        self.env[node.name] = name

    def flatten(self, node: Any) -> None:
        kw = self._kwargs(node)
        start = self.resolve(kw.get("start_dim", kw.get("arg1", 0)))
        end = self.resolve(kw.get("end_dim", kw.get("arg2", -1)))
        marker = self.env.get(getattr(kw.get("input"), "name", ""))
        if isinstance(marker, tuple) and marker[0] == "swapped" and marker[3] == 1 and isinstance(start, int) and isinstance(end, int):
            rank = len(self.values[kw["input"].name])
            if (start % rank, end % rank) == (1, 2):
                return self.shuffle(node, marker)
        source = self.tensor(node, kw.get("input"), "its input")
        module = self._function_module(node, "Flatten", {"start_dim": start, "end_dim": end})
        self.env[node.name] = self.add(node, "", module, [source])

    def reshape(self, node: Any) -> None:
        source_node = node.args[0]
        before = self.values.get(source_node.name)
        after = self.values.get(node.name)
        marker = self.env.get(getattr(source_node, "name", ""))
        if isinstance(marker, tuple) and marker[0] == "swapped" and marker[3] == 1 and isinstance(after, tuple) and after == marker[2]:
            return self.shuffle(node, marker)
        source = self.tensor(node, source_node, "its input")
        if not isinstance(before, tuple) or not isinstance(after, tuple):
            raise _Refusal(node, f"reshapes {_dims(before)} to {_dims(after)}, which convcalc cannot follow")
        span = _collapsed(before, after)
        if span is None:
            split = _split(before, after)
            if split is not None:  # perhaps a channel shuffle's first step: decided by what reads it
                self.env[node.name] = ("split", source, before, split[0], split[1], node)
                return
            self.env[node.name] = self.regroup(node, source, before, after)
            return
        if span == "same":
            self.env[node.name] = source
            return
        module = self._function_module(node, "Flatten", {"start_dim": span[0], "end_dim": span[1]})
        self.env[node.name] = self.add(node, "", module, [source])

    def mean(self, node: Any) -> None:
        """``x.mean([2, 3])`` over every spatial axis of N×C×… is an AdaptiveAvgPool to 1 (and a Flatten
        without keepdim), as a hand-written spec says it; a mean over other dimensions is a ``Mean`` row."""
        kw = self._kwargs(node)
        shape = self.values.get(getattr(kw.get("input"), "name", ""))
        dims: Any = self.resolve(kw.get("dim", kw.get("arg1")))
        keep = self.resolve(kw.get("keepdim", kw.get("arg2", False)))
        rank = len(shape) if isinstance(shape, tuple) else 0
        wanted = dims if isinstance(dims, (list, tuple)) else [dims]
        if 3 <= rank <= 5 and dims is not None and all(isinstance(d, int) for d in wanted) and sorted(d % rank for d in wanted) == list(range(2, rank)):
            source = self.tensor(node, kw.get("input"), "its input")
            pool = self._function_module(node, f"AdaptiveAvgPool{rank - 2}d", {"output_size": 1})
            name = self.add(node, "", pool, [source])
            if not keep:
                flat = self._function_module(node, "Flatten", {"start_dim": 1, "end_dim": -1})
                name = self.add(node, "", flat, [name], name=f"{node.name}_flatten", target=re.sub(r"_\d+$", "", node.name) + "_flatten")
            self.env[node.name] = name
            return
        self.reduction(node, "Mean")

    def reduction(self, node: Any, kind: str) -> None:
        """``x.sum(dim=1)``, ``torch.mean(x, (1, 2), keepdim=True)``: a ``Sum``/``Mean`` row (dims computed from sizes
        as the traced input gave them); a reduction of every dimension, or one with a dtype, has none."""
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input"), "its input")
        dims: Any = self.resolve(kw.get("dim", kw.get("arg1")))
        keep = self.resolve(kw.get("keepdim", kw.get("arg2", False)))
        verb = {"Sum": "sums", "Mean": "averages", "Norm": "takes the norm of", "Amax": "takes the largest of"}[kind]
        extra: dict[str, Any] = {}
        if kind == "Norm":  # x.norm(p, dim, keepdim), torch.norm(input, p, dim, keepdim), linalg.vector_norm(x, ord, dim, keepdim)
            p = self.resolve(kw.get("p", kw.get("ord", 2)))
            dims = self.resolve(kw.get("dim", kw.get("arg2")))
            keep = self.resolve(kw.get("keepdim", kw.get("arg3", False)))
            if p == "fro":
                p = 2
            if isinstance(p, bool) or not isinstance(p, (int, float)):
                raise _Refusal(node, f"takes the norm with p={p!r}; a spec's Norm is a vector norm of a number p")
            extra["p"] = float(p)
        if dims is None or (isinstance(dims, (list, tuple)) and not dims):
            raise _Refusal(node, f"{verb} every element into one number; a spec's {kind} reduces named dimensions, the batch kept")
        if kw.get("dtype") is not None or (kind != "Norm" and kw.get("arg3") is not None):
            raise _Refusal(node, f"{verb} with a dtype; a spec's {kind} keeps its input's dtype")
        try:
            layer = make_layer(kind, dim=list(dims) if isinstance(dims, (list, tuple)) else dims, keepdim=keep, **extra)
            layer.output_shape(tuple(self.values[kw["input"].name]))
        except ConvcalcError as error:
            raise _Refusal(node, f"convcalc refuses it: {error.message}") from None
        self.env[node.name] = self.add(node, "", None, [source], layer=layer)

    def maximum(self, node: Any) -> None:
        """``x.max(dim)``, ``torch.max(x, dim, keepdim)``: (values, indices); the values (item 0, as VOLO's
        ``x_aux.max(1)[0]`` reads them) are an ``Amax`` row over that one dimension, the indices have no spec layer.
        ``x.max()`` of everything and ``torch.max(a, b)`` (elementwise) are refused."""
        kw = self._kwargs(node)
        dim = self.resolve(kw.get("dim", kw.get("arg1")))
        if hasattr(dim, "op") or kw.get("other") is not None:
            raise _Refusal(node, "takes the elementwise maximum of two tensors (torch.max(a, b)); a spec has no such layer")
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise _Refusal(node, "takes the largest value of every element (x.max()); a spec's Amax reduces named dimensions, the batch kept")
        source = self.tensor(node, kw.get("input"), "its input")
        keep = self.resolve(kw.get("keepdim", kw.get("arg2", False)))
        try:
            layer = make_layer("Amax", dim=dim, keepdim=keep)
            layer.output_shape(tuple(self.values[kw["input"].name]))
        except ConvcalcError as error:
            raise _Refusal(node, f"convcalc refuses it: {error.message}") from None
        self.env[node.name] = ("indexed", self.add(node, "", None, [source], layer=layer))

    def passes(self, node: Any, label: str) -> None:
        kw = self._kwargs(node)
        if kw.get("training", False) and kw.get("p", 0.0) not in (0, 0.0):
            raise _Refusal(node, f"calls {label} with training=True, which drops at random even in eval mode")
        source = kw.get("input", node.args[0] if node.args else None)
        marker = self.env.get(getattr(source, "name", ""))
        if isinstance(marker, tuple) and marker[0] in ("split", "swapped") and label in _PASS_METHODS:
            self.env[node.name] = marker  # a channel shuffle's .contiguous()
            return
        self.env[node.name] = self.tensor(node, source, "its input")

    def transpose(self, node: Any) -> None:
        """``.transpose(1, 2)`` of a view that split the channels into (groups, C / groups): the middle
        step of a channel shuffle. Any other transpose has no spec layer."""
        kw = self._kwargs(node)
        source = kw.get("input")
        # torch.transpose/swapdims name them dim0, dim1; torch.swapaxes axis0, axis1; a method call by position
        dims = [self.resolve(kw.get(k, kw.get(axis, kw.get(f"arg{i}")))) for i, k, axis in ((1, "dim0", "axis0"), (2, "dim1", "axis1"))]
        marker = self.env.get(getattr(source, "name", ""))
        if isinstance(marker, tuple) and marker[0] == "split" and all(isinstance(d, int) for d in dims):
            rank = len(self.values[node.name])
            if sorted(d % rank for d in dims) == [marker[3], marker[3] + 1]:
                self.env[node.name] = ("swapped", *marker[1:], node)
                return
        name = self.tensor(node, source, "its input")
        rank = len(self.values[node.name])  # a transpose keeps the rank
        if not all(isinstance(d, int) and not isinstance(d, bool) and -rank <= d < rank for d in dims):
            what = f"the Tensor method .{node.target}()" if node.op == "call_method" else _qualified(self.torch, node.target)
            raise _Refusal(node, f"calls {what} with dimensions {dims[0]!r} and {dims[1]!r}, which convcalc cannot follow")
        order = list(range(rank))
        a, b = (d % rank for d in dims)
        order[a], order[b] = order[b], order[a]
        self.env[node.name] = self.add(node, "Permute", None, [name])  # two dimensions swapped
        self.entries[-1].args = {"dims": order}

    def shuffle(self, node: Any, marker: tuple[Any, ...]) -> None:
        """The last step of view → transpose(1, 2) → view back: one ChannelShuffle row."""
        source, groups = marker[1], marker[4]
        module = self._function_module(node, "ChannelShuffle", {"groups": groups})
        self.env[node.name] = self.add(node, "", module, [source], name="channel_shuffle", target="channel_shuffle")

    def unsplit(self, marker: tuple[Any, ...]) -> str:
        """The rows of a split view (and its transpose) that something other than a channel shuffle
        reads: an Unflatten (and a Permute), made once, named after their fx nodes."""
        kind, source, before, dim, groups, view = marker[:6]
        if view.name not in self.made:
            module = self._function_module(view, "Unflatten", {"dim": dim, "unflattened_size": (groups, before[dim] // groups)})
            self.made[view.name] = self.add(view, "", module, [source])
        name = self.made[view.name]
        if kind == "swapped":
            swap = marker[6]
            if swap.name not in self.made:
                order = list(range(len(before) + 1))
                order[dim], order[dim + 1] = order[dim + 1], order[dim]
                self.made[swap.name] = self.add(swap, "Permute", None, [name])
                self.entries[-1].args = {"dims": order}
            name = self.made[swap.name]
        return name

    def regroup(self, node: Any, source: str, before: tuple[int, ...], after: tuple[int, ...]) -> str:
        """Any other reshape: the dimensions between the ones it keeps at both ends are joined
        (Flatten) and split again (Unflatten). One that reaches the batch dimension holds for the
        traced batch only (the spec says so)."""
        start = 0
        while start < min(len(before), len(after)) and before[start] == after[start]:
            start += 1
        end = 0  # dimensions kept at the end
        while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
            end += 1
        if start + end == min(len(before), len(after)):  # only sizes of 1 come or go: take a neighbour along
            start, end = (start - 1, end) if start > 0 else (start, end - 1)
        joined, split = before[start : len(before) - end], after[start : len(after) - end]
        if start == 0:
            self.batch_bound.append(node.name)
        name = source
        if len(joined) > 1:
            flat = self._function_module(node, "Flatten", {"start_dim": start, "end_dim": start + len(joined) - 1})
            name = self.add(node, "", flat, [name], name=f"{node.name}_flatten", target=re.sub(r"_\d+$", "", node.name) + "_flatten")
            self.entries[-1].node = ""  # a step on the way: the proof compares the Unflatten with the node
        if len(split) > 1:
            module = self._function_module(node, "Unflatten", {"dim": start, "unflattened_size": split})
            name = self.add(node, "", module, [name])
        elif self.entries and self.entries[-1].name == name:
            self.entries[-1].node = node.name
        return name

    def pieces(self, node: Any) -> None:
        """``x.chunk(2, dim=1)``, ``torch.split`` …: a tuple of consecutive slices of one dimension,
        each a Narrow row where an item of it is used."""
        kw = self._kwargs(node)
        source_node = kw.get("input", kw.get("tensor"))
        source = self.tensor(node, source_node, "its input")
        dim = self.resolve(kw.get("dim", kw.get("arg2", 0)))
        shape, out = self.values.get(source_node.name), self.values.get(node.name)  # type: ignore[union-attr]  # a node: tensor() said so
        if not isinstance(dim, int) or not isinstance(shape, Shape) or not isinstance(out, tuple) or not all(isinstance(o, Shape) for o in out):
            raise _Refusal(node, f"splits along {dim!r} into {out!r}, which convcalc cannot follow")
        dim %= len(shape)
        spans, start = [], 0
        for piece in out:
            spans.append((start, piece[dim]))
            start += piece[dim]
        self.env[node.name] = ("pieces", source, dim, spans, node, shape[dim])

    def piece(self, node: Any, pieces: tuple[Any, ...], index: int) -> None:
        _, source, dim, spans, made, size = pieces
        start, length = spans[index]
        if length == size:
            self.env[node.name] = source
            return
        key = (made.name, index % len(spans))
        if key not in self.narrowed:
            self.narrowed[key] = self.add(node, "Narrow", None, [source], name=f"{made.name}_{key[1]}",
                                          target=f"{re.sub(r'_[0-9]+$', '', made.name)}_{key[1]}")
            self.entries[-1].args = {"dim": dim, "start": start, "length": length}
        self.env[node.name] = self.narrowed[key]

    def functional(self, node: Any, class_name: str, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        kw = self._kwargs(node)
        source = self.tensor(node, kw.get("input", kw.get("self")), "its input")
        kw = {k: v if k in ("input", "self") else self.resolve(v) for k, v in kw.items()}
        if any(_holds_node(v) for k, v in kw.items() if k not in ("input", "self")):
            raise _Refusal(node, f"calls {_qualified(self.torch, node.target)} with arguments computed in forward; a spec's {class_name} takes constants")
        extra = {k: v for k, v in kw.items() if k.startswith("arg")}
        if extra:
            raise _Refusal(node, f"calls .{node.target}() with positional arguments convcalc does not read ({extra!r})")
        arguments = convert(kw)
        if class_name in ("Softmax", "LogSoftmax") and kw.get("dtype") is not None:
            raise _Refusal(node, f"calls {class_name.lower()} with dtype={kw['dtype']!r}; a spec's {class_name} keeps the dtype")
        if class_name.startswith("MaxPool") and arguments.get("stride") is None:
            arguments.pop("stride", None)
        if class_name.startswith("AvgPool") and arguments.get("stride") is None:
            arguments.pop("stride", None)
        module = self._function_module(node, class_name, arguments)
        name = self.add(node, "", module, [source])
        returns = self.values.get(node.name)
        self.env[node.name] = ("indexed", name) if isinstance(returns, tuple) and not isinstance(returns, Shape) else name

    def _reachable(self) -> list[Entry]:
        """The entries the output depends on (computations whose result is dropped are not rows)."""
        by_name = {e.name: e for e in self.entries}
        needed, todo = set(), [self.output]
        while todo:
            name = todo.pop()
            if name in needed or name == INPUT:
                continue
            needed.add(name)
            entry = by_name[name]
            todo.extend(entry.inputs)
            if entry.tie:
                todo.append(entry.tie)
        kept = [e for e in self.entries if e.name in needed]
        for entry in kept:
            if entry.tie is not None and entry.tie not in needed:
                entry.tie = None
        if kept[-1].name != self.output:
            raise _Refusal(self.output_node, "the output is computed before other rows it does not use; a spec ends with its output")
        return kept


def _class_path(module: Any) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _qualified(torch: Any, target: Any) -> str:
    """``torch.nn.functional.conv2d``, ``torch.roll``, ``operator.sub``: how a user writes the call."""
    name = getattr(target, "__name__", None) or str(target)
    for prefix, owner in (("torch.nn.functional", torch.nn.functional), ("torch", torch), ("operator", operator)):
        if getattr(owner, name, None) is target:
            return f"{prefix}.{name}"
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__qualname__', name)}".lstrip(".")


def _index_text(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            parts.append(":".join("" if v is None else str(v) for v in (item.start, item.stop)) + ("" if item.step is None else f":{item.step}"))
        else:
            parts.append(str(getattr(item, "name", item)))
    return ", ".join(parts)


def _collapsed(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[int, int] | str | None:
    """(start, end) if ``after`` is ``before`` with dimensions start..end multiplied into one;
    "same" if nothing changes; None for any other reshape."""
    if before == after:
        return "same"
    if len(after) >= len(before):
        return None
    for start in range(len(before)):
        end = start + len(before) - len(after)
        if end >= len(before):
            break
        if before[:start] == after[:start] and before[end + 1 :] == after[start + 1 :] and math.prod(before[start : end + 1]) == after[start]:
            return (start, end - len(before) if end == len(before) - 1 else end)
    return None


def _holds_tensor(value: Any) -> bool:
    """Whether a recorded value is (or holds) a tensor's shape."""
    return isinstance(value, Shape) or (isinstance(value, tuple) and any(_holds_tensor(v) for v in value))


def _holds_node(value: Any) -> bool:
    if hasattr(value, "op"):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_node(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_node(v) for v in value.values())
    return False


def _split(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[int, int] | None:
    """(dimension, first size) if ``after`` is ``before`` with one dimension split in two
    (``C`` → ``groups × C / groups``); None for any other reshape."""
    if len(after) != len(before) + 1:
        return None
    for dim in range(len(before)):
        if before[:dim] == after[:dim] and before[dim + 1 :] == after[dim + 2 :] and after[dim] * after[dim + 1] == before[dim]:
            return dim, after[dim]
    return None


def _check_unused_parameters(model: Any, entries: list[Entry], name: str) -> None:
    """A parameter the traced forward never uses (an auxiliary head in eval mode) has no row."""
    used = {id(p) for e in entries if e.module is not None and e.state is None for p in e.module.parameters()}
    used |= {id(p) for e in entries for p in e.owns}
    unused: dict[str, int] = {}
    for path, p in model.named_parameters():
        if id(p) not in used:
            owner = path.rsplit(".", 1)[0] if "." in path else path
            top = owner.split(".")[0]
            unused[top] = unused.get(top, 0) + p.numel()
    if unused:
        top, count = max(unused.items(), key=lambda item: item[1])
        module = model.get_submodule(top) if top in dict(model.named_children()) else None
        kind = f" ({_class_path(module)})" if module is not None else ""
        total = sum(unused.values())
        raise VerifyError(
            f"--emit-spec: cannot write {name} as a spec: '{top}'{kind} holds {count:,} parameters"
            f"{f' (of {total:,} in all)' if total != count else ''} that the forward pass (eval mode) never uses,"
            " and a spec has rows only for what runs; nothing written"
        )
