"""Modules of no torch.nn class convcalc knows, judged as the engine layers they are shown to compute.

verify judges a module call with the engine's rule for its torch.nn class. Some modules are no
such class, yet compute what engine layers compute: torchvision's ``Permute``
(``torch.permute(x, self.dims)``) and MaxViT's ``SwapAxes`` (``torch.swapaxes(x, self.a, self.b)``), ``StochasticDepth`` and timm's ``DropPath`` (the input itself in
eval, as verify runs), and subclasses of a torch.nn layer with a forward of their own — timm's
``LayerNorm`` (torch's layer norm again), torchvision's and timm's ``LayerNorm2d`` (a LayerNorm over
the channels of N×C×H×W: permute, normalize, permute back), and a module of one parameter that
multiplies its input by it (timm's ``LayerScale``/``LayerScale2d``, metaformer's ``Scale``, a user's
``x * self.weight``), the engine's Scale, adds it (a user's position embedding, ``x + self.pos``), the
engine's Bias, or puts it in front of its tokens (a class token module), the engine's ClassToken.

Neither a class name nor its attributes decide. They only *propose* engine layers (:class:`Proposal`).
The proposal holds when the module, run on a random input of the shape it received (no two values
alike) in eval mode, gives what verify's own torch modules for those layers give with the module's
parameters loaded: bit for bit for a permutation, the identity or a scale, within float tolerance for
a norm. A scale is probed again with random values in its weight (a copy of the module): equal values,
as a layer scale starts, cannot show which axis it scales.
Only then does the row get the engine's numbers, compared with what the call really did (output
shape, params, MACs) like any other row: ✓ or ✗. A proposal the probe does not bear out leaves
the row not judged, with the reason. On ``--device meta`` a module with parameters has no values
to probe and stays not judged; one without any is probed on the CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from .. import formulas
from ..errors import ConvcalcError
from ..layers import Layer, Shape, make_layer
from ..layers.catalog import CATALOG
from ..sizes import format_shape
from .runtime import _Engine, _eval_mode, _first_line
from .swin import attention_layer, is_torchvision_attention

#: Regularizers that are the identity in eval() (torchvision.ops and timm.layers), proposed as Identity.
IDENTITY_IN_EVAL = ("StochasticDepth", "DropPath", "DropBlock2d", "DropBlock3d")
#: (rtol, atol) of values computed another way (torch.testing.assert_close's defaults per dtype).
TOLERANCES = {"torch.float16": (1e-3, 1e-5), "torch.bfloat16": (1.6e-2, 1e-5), "torch.float32": (1.3e-6, 1e-5), "torch.float64": (1e-7, 1e-7)}
#: Engine families that normalize the trailing dimensions: a subclass may apply them to the channels.
TRAILING_NORMS = ("LayerNorm", "RMSNorm")


@dataclass(frozen=True)
class Proposal:
    """Engine layers a module may compute, in order, and how their torch twin is compared with it."""

    judged_as: str  # "Permute", "Identity", "LayerNorm over the channels (Permute, LayerNorm, Permute)"
    layers: tuple[Layer, ...]
    #: the twin must give the module's output bit for bit (a permutation, the identity), else within tolerance
    exact: bool
    #: which of ``layers`` takes the module's parameters and buffers (its state_dict); None: it has none
    owner: int | None = None
    #: the module's one parameter, by name, that the owner's ``weight`` takes in the owner's shape (a Scale:
    #: timm's ``gamma`` of (C,) used as (C, 1, 1)); then the probe also runs with random values in it
    weight: str | None = None

    @property
    def layer(self) -> Layer | None:
        """The one engine layer (a spec row) of a proposal of one layer, else None."""
        return self.layers[0] if len(self.layers) == 1 else None


def torch_base_class(cls: type) -> type | None:
    """The nearest torch.nn class above ``cls`` whose rule the engine has (a subclass's forward may
    compute something else: that is for the probe to show); None if the nearest one is unknown."""
    for base in cls.__mro__:
        if not base.__module__.startswith("torch.nn."):
            continue
        return base if base.__name__ in CATALOG else None  # torch's spelling only: no guessing from case
    return None


def proposals(module: Any, shape: Shape) -> list[Proposal]:
    """What ``module`` (a leaf of no class the engine judges) may compute on ``shape``, in the order tried.
    A name proposes only with the attributes its computation needs (a Permute's ``dims``, a SwapAxes'
    ``a`` and ``b``) and, for a permutation or an identity, without parameters or buffers."""
    from .user_models import layer_as

    cls = type(module)
    stateless = next(iter(module.parameters()), None) is None and next(iter(module.buffers()), None) is None
    found: list[Proposal] = []
    try:
        if cls.__name__ == "Permute" and stateless and _int_list(getattr(module, "dims", None)):
            found.append(Proposal("Permute", (make_layer("Permute", dims=list(module.dims)),), exact=True))
        swap = (getattr(module, "a", None), getattr(module, "b", None))
        if cls.__name__ == "SwapAxes" and stateless and _int_list(swap) and all(-len(shape) <= d < len(shape) for d in swap):
            dims = list(range(len(shape)))  # torchvision's maxvit.SwapAxes: torch.swapaxes(x, a, b)
            a, b = (d % len(shape) for d in swap)
            dims[a], dims[b] = b, a
            found.append(Proposal("Permute", (make_layer("Permute", dims=dims),), exact=True))
        if cls.__name__ in IDENTITY_IN_EVAL and stateless:
            found.append(Proposal("Identity", (make_layer("Identity"),), exact=True))
        if cls.__name__ in WHOLE_MODULES:  # timm's Conv2dSame, MaxViT's attention (a leaf kept whole: kept_whole)
            found.extend(p for p in [WHOLE_MODULES[cls.__name__](module, shape)] if p is not None)
        if is_torchvision_attention(module):  # torchvision's Swin attention, a leaf kept whole (kept_whole)
            layer = attention_layer(module).bind(shape)  # its twin needs dim, the input's channels
            found.append(Proposal(layer.type_name, (layer,), exact=False, owner=0))
        base = torch_base_class(cls)
        if base is None:
            found.extend(_weight_proposals(module, shape))
        if base is not None and base is not cls:
            layer = layer_as(base, module)
            found.append(Proposal(f"{base.__name__} (torch's)", (layer,), exact=False, owner=0))
            normalized = getattr(layer, "normalized_shape", ())
            if layer.type_name in TRAILING_NORMS and len(normalized) == 1 and len(shape) >= 3:
                rank = len(shape)
                last = [0, *range(2, rank), 1]  # the channels to the end, and back
                back = [0, rank - 1, *range(1, rank - 1)]
                found.append(
                    Proposal(
                        f"{layer.type_name} over the channels (Permute, {layer.type_name}, Permute)",
                        (make_layer("Permute", dims=last), layer, make_layer("Permute", dims=back)),
                        exact=False,
                        owner=1,
                    )
                )
    except ConvcalcError:
        pass  # the engine refuses the attributes: nothing to propose from them
    return found


def _weight_proposals(module: Any, shape: Shape) -> list[Proposal]:
    """``x * weight`` (timm's ``LayerScale``/``LayerScale2d``, metaformer's ``Scale``, a user's ``x * self.weight``),
    ``x + weight`` (a user's ``PosEmbed``: a learned position embedding) and ``torch.cat([weight.expand(n, -1, -1), x],
    dim=1)`` (a class token): proposed for a module with exactly one parameter, no buffers and no children, whatever
    its name. The weight may act in its own shape, per channel of N×C×… (a (C,) parameter viewed as (C, 1, …, 1)) or
    along the last axis; the probe says which, if any, and whether it multiplies or adds (every Scale is tried
    first). A parameter of (1, tokens, *input[2:]) may be a class token."""
    if next(iter(module.children()), None) is not None or next(iter(module.buffers()), None) is not None:
        return []
    named = list(module.named_parameters())
    if len(named) != 1 or not shape:
        return []
    name, parameter = named[0]
    own = tuple(parameter.shape)
    count = parameter.numel()
    shapes = [own]  # () too: a scalar weight (nn.Parameter(torch.tensor(0.5)))
    if len(shape) >= 3 and shape[1] == count:
        shapes.append((count, *(1,) * (len(shape) - 2)))  # per channel of N×C×…
    if shape[-1] == count:
        shapes.append((count,))  # along the last axis (channels last)
    found = []
    for kind in ("Scale", "Bias"):
        for weight_shape in dict.fromkeys(shapes):
            layer = make_layer(kind, shape=list(weight_shape))
            shown = "×".join(map(str, weight_shape)) or "scalar"
            found.append(Proposal(f"{kind} {shown}", (layer,), exact=True, owner=0, weight=name))
    if len(own) == len(shape) >= 2 and own[0] == 1 and own[2:] == tuple(shape[2:]):
        layer = make_layer("ClassToken", tokens=own[1], features=list(own[2:]))
        found.append(Proposal(f"ClassToken {layer.describe()}", (layer,), exact=True, owner=0, weight=name))
    return found


#: Modules with children that compute one engine layer as a whole (their children's rows would not say
#: what the module does between them): the class name → what proposes the layer from the module's
#: attributes. Emission keeps them as fx leaves and writes one row, once a probe bears the proposal out.
def _relative_attention(module: Any, shape: Shape) -> Proposal | None:
    """torchvision's MaxViT ``RelativePositionalMultiHeadAttention(feat_dim, head_dim, max_seq_len)``."""
    head_dim, max_seq_len = getattr(module, "head_dim", None), getattr(module, "max_seq_len", None)
    if not _int_list([head_dim, max_seq_len]) or len(shape) != 4:
        return None
    layer = make_layer("RelativePositionalMultiHeadAttention", feat_dim=shape[-1], head_dim=head_dim, max_seq_len=max_seq_len)
    return Proposal("RelativePositionalMultiHeadAttention", (layer,), exact=False, owner=0)


#: timm's TensorFlow-like "same" layers (``Conv2dSame``, ``AvgPool2dSame``): torch's layer after ``pad_same``,
#: the asymmetric zero padding that gives ceil(in / stride) (formulas.tf_same_padding) for the input's size.
TF_SAME = ("Conv2dSame", "AvgPool2dSame")


def _tf_same(module: Any, shape: Shape) -> Proposal | None:
    """A ZeroPad2d of TensorFlow's "same" padding for ``shape`` (none where it is 0), then the module's
    torch class with its own arguments (its padding is 0: timm passes 0 to the constructor)."""
    from .user_models import layer_as

    base = torch_base_class(type(module))
    if base is None or base.__name__ not in ("Conv2d", "AvgPool2d") or len(shape) not in (3, 4):
        return None
    layer = layer_as(base, module)
    kernel, stride = getattr(layer, "kernel_size", ()), getattr(layer, "stride", ())
    dilation = getattr(layer, "dilation", (1, 1))
    if not (_int_list(kernel) and _int_list(stride) and _int_list(dilation)) or len(kernel) != 2:
        return None
    (top, bottom), (left, right) = (formulas.tf_same_padding(n, k, s, d) for n, k, s, d in zip(shape[-2:], kernel, stride, dilation))
    pads = [left, right, top, bottom]
    layers = (make_layer("ZeroPad2d", padding=pads), layer) if any(pads) else (layer,)
    shown = f"ZeroPad2d {pads}, {base.__name__}" if any(pads) else base.__name__
    return Proposal(f"{type(module).__name__}: TF 'same' padding ({shown})", layers, exact=False, owner=len(layers) - 1)


#: timm's weight-standardised convolutions (``timm.layers.std_conv``): nn.Conv2d subclasses whose forward standardises
#: the weight (and ScaledStdConv2d's scales it by ``gain · scale``) before ``F.conv2d``; the ``…Same`` ones pad the
#: input first as TensorFlow's "same" does (``pad_same``) where their ``same_pad`` says so (a stride or an even kernel).
STD_CONVS = ("StdConv2d", "ScaledStdConv2d", "StdConv2dSame", "ScaledStdConv2dSame")


def _std_conv(module: Any, shape: Shape) -> Proposal | None:
    """The StdConv2d / ScaledStdConv2d family with the module's Conv2d arguments and ``eps`` (ScaledStdConv2d's
    ``gamma`` from its ``scale``, gamma / sqrt(fan_in)), after a ZeroPad2d of TF "same" padding for ``shape`` where a
    ``…Same`` module pads; None where the module is not such a conv (a probe decides)."""
    from .user_models import layer_as

    base = torch_base_class(type(module))
    eps, weight = getattr(module, "eps", None), getattr(module, "weight", None)
    if base is None or base.__name__ != "Conv2d" or not isinstance(eps, float) or weight is None or getattr(module, "padding_mode", "zeros") != "zeros":
        return None
    conv = layer_as(base, module)
    kwargs = {name: getattr(conv, name) for name in conv.PARAMS if name != "padding_mode"}
    name = type(module).__name__.removesuffix("Same")
    pads: list[int] = []
    if type(module).__name__.endswith("Same") and getattr(module, "same_pad", None) is not False:
        if getattr(module, "same_pad", None) is not True or len(shape) not in (3, 4):
            return None
        (top, bottom), (left, right) = (formulas.tf_same_padding(n, k, s, d)
                                        for n, k, s, d in zip(shape[-2:], kwargs["kernel_size"], kwargs["stride"], kwargs["dilation"]))
        pads = [left, right, top, bottom]
    if name == "ScaledStdConv2d":
        scale, gain = getattr(module, "scale", None), getattr(module, "gain", None)
        if not isinstance(scale, float) or gain is None or tuple(gain.shape) != (kwargs["out_channels"], 1, 1, 1):
            return None
        kwargs["gamma"] = scale * weight[0].numel() ** 0.5
    layer = make_layer(name, **kwargs, eps=eps)
    if any(pads):
        return Proposal(f"{type(module).__name__}: TF 'same' padding (ZeroPad2d {pads}, {name})",
                        (make_layer("ZeroPad2d", padding=pads), layer), exact=False, owner=1)
    return Proposal(f"{name} (weight standardised)", (layer,), exact=False, owner=0)


WHOLE_MODULES = {"RelativePositionalMultiHeadAttention": _relative_attention, **{name: _tf_same for name in TF_SAME},
                 **{name: _std_conv for name in STD_CONVS}}


def whole_module(module: Any) -> bool:
    """Whether ``module``'s class is one of :data:`WHOLE_MODULES` (by name only: a probe decides)."""
    return type(module).__name__ in WHOLE_MODULES


def leaf_by_name(module: Any) -> bool:
    """Whether emit-spec's trace keeps ``module`` as one fx leaf for its class: torchvision's Swin attention and
    :data:`WHOLE_MODULES` (a probe then decides what it computes)."""
    return is_torchvision_attention(module) or whole_module(module)


def kept_whole(module: Any) -> bool:
    """Whether verify runs ``module`` as one leaf (its children unhooked) and judges it by a probe: a module kept
    whole by name that has children (torchvision's Swin attention, which passes its Linears' weights to a
    function and never calls them; MaxViT's attention — torchvision's, or verify's own module of that name in a
    spec). One without children is a leaf anyway."""
    return leaf_by_name(module) and next(iter(module.children()), None) is not None


def judge_whole(torch: Any, module: Any, shape: Shape, dtype: Any, device: Any) -> tuple[Proposal | None, str]:
    """(the engine layers ``module`` computes as a whole on ``shape``, each bound to its input, "") once a
    probe bears them out, else (None, why not)."""
    try:
        proposal = WHOLE_MODULES[type(module).__name__](module, shape)
    except ConvcalcError as error:
        return None, f"convcalc refuses its attributes: {error.message}"
    if proposal is None:
        return None, f"its attributes or its {format_shape(tuple(shape))} input are not those of {type(module).__name__}"
    why, _ = probe(torch, module, proposal, shape, dtype, device)
    if why is not None:
        return None, why
    bound, current = [], tuple(shape)
    try:
        for layer in proposal.layers:
            bound.append(layer.bind(current))
            current = bound[-1].output_shape(current)
    except ConvcalcError as error:
        return None, f"convcalc refuses it: {error.message}"
    return replace(proposal, layers=tuple(bound)), ""


def _int_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def engine_numbers(proposal: Proposal, shape: Shape) -> _Engine:
    """The engine's output shape, params and MACs of the proposal's layers one after another (or its refusal)."""
    params = macs = 0
    current = shape
    bound_layers = []
    try:
        for layer in proposal.layers:
            bound = layer.bind(current)
            out = bound.output_shape(current)
            params += bound.num_params
            macs += bound.macs(current)
            bound_layers.append(bound)
            current = out
    except ConvcalcError as error:
        return _Engine(proposal.layer, error=error.message, judged_as=proposal.judged_as)
    one = bound_layers[0] if len(bound_layers) == 1 else None
    return _Engine(one, current, params, macs, judged_as=proposal.judged_as)


def probe(torch: Any, module: Any, proposal: Proposal, shape: Shape, dtype: Any, device: Any) -> tuple[str | None, Proposal]:
    """(None, the proposal as shown) when ``module`` computes what the proposal's layers compute on a random
    input of ``shape`` (in eval mode, the module's own parameters in the twin), else (why not (one line), it).
    A proposal with a ``weight`` is probed again with random values in that parameter (a copy of the module):
    a layer scale of equal values cannot show along which axis it acts. A module that computes the layers
    but writes its result into its input is shown "(in place)"."""
    where = f"not {proposal.judged_as}:"
    why, wrote = _probe_once(torch, module, proposal, shape, dtype, device, where)
    if why is None and proposal.weight is not None:
        try:
            other = copy.deepcopy(module)
            with torch.no_grad():
                values = dict(other.named_parameters())[proposal.weight]
                generator = torch.Generator(device="cpu").manual_seed(1)
                values.copy_(torch.rand(tuple(values.shape), generator=generator, dtype=values.dtype).add_(0.5).to(values.device))
        except Exception as error:  # noqa: BLE001  the user's module does not copy
            return f"{where} a copy with other weights, which would show the axis it scales, fails ({type(error).__name__}: {_first_line(error)})", proposal
        why, wrote_again = _probe_once(torch, other, proposal, shape, dtype, device, f"{where} with random weights,")
        wrote = wrote or wrote_again
    if why is None and wrote:
        proposal = replace(proposal, judged_as=f"{proposal.judged_as} (in place)")
    return why, proposal


def _probe_once(torch: Any, module: Any, proposal: Proposal, shape: Shape, dtype: Any, device: Any, where: str) -> tuple[str | None, bool]:
    """One probe: (why not, or None; whether the module wrote into its input)."""
    from .specs import torch_twin

    try:
        twins = [torch_twin(torch, layer) for layer in proposal.layers]
        twin = torch.nn.Sequential(*twins).to(device=device, dtype=dtype)
        if proposal.weight is not None:
            owner = twins[proposal.owner or 0]
            with torch.no_grad():
                owner.weight.copy_(dict(module.named_parameters())[proposal.weight].reshape(owner.weight.shape))
        elif proposal.owner is not None:
            twins[proposal.owner].load_state_dict(module.state_dict())
    except Exception as error:  # noqa: BLE001  the module's tensors do not fit the layer's
        return f"{where} its parameters are not the layer's ({type(error).__name__}: {_first_line(error)})", False
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device=device)
    with torch.no_grad(), _eval_mode(module):
        try:
            expected = twin(x)  # verify's own modules never write into their input
        except Exception as error:  # noqa: BLE001  the layers refuse this input: the module cannot be them
            return f"{where} the layer refuses its {format_shape(tuple(shape))} input ({type(error).__name__}: {_first_line(error)})", False
        given = x.clone()  # its own copy: a module that writes into its input cannot pass for the twin
        try:
            got = module(given)
        except Exception as error:  # noqa: BLE001  the user's module, on another input of the same shape
            return f"{where} on a random {format_shape(tuple(shape))} input it raises {type(error).__name__}: {_first_line(error)}", False
    wrote = not torch.equal(given, x)
    if not isinstance(got, torch.Tensor):
        return f"{where} it returns a {type(got).__name__}, not a tensor", wrote
    if tuple(got.shape) != tuple(expected.shape):
        return f"{where} on a random {format_shape(tuple(shape))} input its output is {format_shape(tuple(got.shape))}, not {format_shape(tuple(expected.shape))}", wrote
    if got.dtype != expected.dtype:
        return f"{where} its output is {got.dtype}, the layer's {expected.dtype}", wrote
    rtol, atol = (0.0, 0.0) if proposal.exact else TOLERANCES.get(str(got.dtype), (1.3e-6, 1e-5))
    if not (torch.equal(got, expected) if proposal.exact else torch.allclose(got, expected, rtol=rtol, atol=atol)):
        gap = (got.double() - expected.double()).abs().max().item()
        return f"{where} on a random {format_shape(tuple(shape))} input its values differ from the layer's (by up to {gap:.3g})", wrote
    return None, wrote


def probe_key(module: Any, shape: Shape, dtype: Any) -> Any:
    """What a probe's answer depends on: the module itself, or — for a module without parameters or
    buffers — its class and public attributes (torchvision's 36 Permutes of a ConvNeXt share 2 answers)."""
    if next(iter(module.parameters()), None) is not None or next(iter(module.buffers()), None) is not None:
        return (id(module), shape, dtype)
    attributes = tuple(sorted((k, repr(v)) for k, v in vars(module).items() if not k.startswith("_") and k != "training"))
    return (type(module), attributes, shape, dtype)


def judge(torch: Any, module: Any, shape: Shape, dtype: Any, device: Any) -> tuple[_Engine | None, str]:
    """(the engine's numbers for the first proposal the probe bears out, "") or (None, why not judged);
    (None, "") where nothing is proposed."""
    found = proposals(module, shape)
    if not found:
        return None, ""
    if device.type == "meta":
        if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
            return None, (
                f"may be {' or '.join(p.judged_as for p in found)}, which only its values can show, and on meta it has none;"
                " verify on cpu to judge it"
            )
        device = torch.device("cpu")
    reasons: list[str] = []
    for proposal in found:
        why, shown = probe(torch, module, proposal, shape, dtype, device)
        if why is None:
            return engine_numbers(shown, shape), ""
        reasons.append(why)
    return None, "; ".join(reasons)
