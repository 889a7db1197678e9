"""Torch as the oracle for the shape-only layer families: linear, norm, activation, resize, padding.

Every property test builds the layer twice — ``convcalc.layer(...)`` and ``torch.nn.<Name>(...)``
— on the same random arguments and input, and asserts the same verdict (convcalc raises
ShapeError/SpecError exactly when torch raises at construction or in forward) and, when both
work, the same output shape, parameter count and MACs (FlopCounterMode's flops // 2). The
layer that ``bind()`` returns must rebuild the torch module through ``torch_kwargs()``.

Conventions of the comparison (see the family modules' docstrings):
- torch runs the module in ``eval()`` mode (as torchinfo and ``convcalc verify`` do); what
  fails in training mode only is a warning in convcalc;
- an output with a zero-size dimension counts as an error (torch returns an empty tensor in a
  few such cases; convcalc refuses them, since no layer after it could run);
- arguments convcalc infers (in_features, num_features, num_channels) are left out of the
  convcalc spec now and then, and torch gets the value the input implies.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError
from convcalc.layers import IDENTITY, Window, make_layer
from convcalc.layers.activation import ACTIVATIONS, DROPOUTS, SOFTMAXES
from convcalc.layers.base import REQUIRED, lookup
from convcalc.layers.resize import UPSAMPLE_MODES

torch = pytest.importorskip("torch")
nn = torch.nn

FEW = settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])


# -- the oracle -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def agree(torch_agrees):
    """conftest's torch oracle with these families' contract: ``bind()``, the whole layer API,
    ``torch_kwargs()`` rebuilding the module, and an empty torch output counted as a refusal."""
    return functools.partial(torch_agrees, bound=True, empty_is_error=True)


# -- strategies -----------------------------------------------------------------------------------


def shapes(min_rank: int = 1, max_rank: int = 5, max_size: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(1, max_size), min_size=min_rank, max_size=max_rank).map(tuple)


def maybe(value: Any) -> st.SearchStrategy[Any]:
    """The value, or a sentinel meaning 'leave the argument out'."""
    return st.one_of(st.just(OMIT), st.just(value))


OMIT = object()


def spec(**kwargs: Any) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if value is not OMIT}


FLOATS = st.sampled_from([-1.0, -0.5, 0.0, 0.01, 0.25, 0.5, 1.0, 2.0, 20.0])
EPS = st.sampled_from([1e-5, 0.1, 0.0, -1e-3])


# -- linear.py --------------------------------------------------------------------------------------


@FEW
@given(shape=shapes(1, 4, 6), out=st.integers(1, 6), bias=st.booleans(), written=st.sampled_from(["none", "right", "wrong"]), wrong=st.integers(1, 6))
def test_linear_matches_torch(agree, shape, out, bias, written, wrong):
    kwargs = {"out_features": out, "bias": bias}
    if written == "right":
        kwargs["in_features"] = shape[-1]
    elif written == "wrong":
        kwargs["in_features"] = wrong
    agree("Linear", kwargs, shape, {"in_features": shape[-1], **kwargs})


@FEW
@given(shape=shapes(1, 5), start=st.integers(-6, 5), end=st.integers(-6, 5), omit=st.sampled_from(["", "start", "end", "both"]))
def test_flatten_matches_torch(agree, shape, start, end, omit):
    kwargs = spec(start_dim=OMIT if omit in ("start", "both") else start, end_dim=OMIT if omit in ("end", "both") else end)
    agree("Flatten", kwargs, shape)


@st.composite
def unflatten_cases(draw):
    shape = draw(shapes(1, 4, 8))
    dim = draw(st.integers(-len(shape) - 1, len(shape)))
    if draw(st.booleans()) and -len(shape) <= dim < len(shape):
        size = shape[dim]
        first = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
        sizes = [first, size // first]
        if draw(st.booleans()):
            sizes[draw(st.integers(0, 1))] = -1
    else:
        sizes = draw(st.lists(st.sampled_from([-1, -1, 0, 1, 2, 3, 4, -2]), min_size=0, max_size=3))
    return shape, dim, tuple(sizes)


@FEW
@given(unflatten_cases())
def test_unflatten_matches_torch(agree, case):
    shape, dim, sizes = case
    agree("Unflatten", {"dim": dim, "unflattened_size": sizes}, shape)


@FEW
@given(shape=shapes(1, 5))
def test_identity_matches_torch(agree, shape):
    assert agree("Identity", {}, shape) == "ok"


# -- norm.py ----------------------------------------------------------------------------------------


@st.composite
def channel_norm_cases(draw, kind):
    dims = draw(st.integers(1, 3))
    type_name = f"{kind}{dims}d"
    ranks = {"BatchNorm": [2, 3] if dims == 1 else [dims + 2], "InstanceNorm": [dims + 1, dims + 2]}[kind]
    rank = draw(st.sampled_from(ranks)) if draw(st.integers(0, 4)) else draw(st.integers(1, 6))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    kwargs = spec(
        eps=draw(maybe(draw(EPS))),
        momentum=draw(maybe(draw(st.sampled_from([0.1, 0.5, None])))),
        affine=draw(maybe(draw(st.booleans()))),
        track_running_stats=draw(maybe(draw(st.booleans()))),
        bias=draw(maybe(draw(st.booleans()))),
    )
    axis = 1 if kind == "BatchNorm" else len(shape) - dims - 1
    implied = shape[axis] if 0 <= axis < len(shape) and len(shape) > 1 else 3
    written = draw(st.sampled_from(["none", "right", "wrong"]))
    if written != "none":
        kwargs["num_features"] = implied if written == "right" else draw(st.integers(1, 4))
    return type_name, kwargs, shape, {"num_features": implied, **kwargs}


@SOME
@given(channel_norm_cases("BatchNorm"))
def test_batchnorm_matches_torch(agree, case):
    agree(*case[:3], case[3])


@SOME
@given(channel_norm_cases("InstanceNorm"))
def test_instancenorm_matches_torch(agree, case):
    agree(*case[:3], case[3])


@SOME
@given(
    shape=shapes(1, 5, 4),
    groups=st.integers(1, 4),
    written=st.sampled_from(["none", "right", "wrong"]),
    wrong=st.integers(1, 8),
    eps=EPS,
    affine=st.booleans(),
    bias=st.booleans(),
)
def test_groupnorm_matches_torch(agree, shape, groups, written, wrong, eps, affine, bias):
    kwargs: dict[str, Any] = {"num_groups": groups, "eps": eps, "affine": affine, "bias": bias}
    implied = shape[1] if len(shape) > 1 else groups
    if written != "none":
        kwargs["num_channels"] = implied if written == "right" else wrong
    agree("GroupNorm", kwargs, shape, {"num_channels": implied, **kwargs})


@st.composite
def trailing_norm_cases(draw):
    shape = draw(shapes(1, 5, 4))
    count = draw(st.integers(1, len(shape) + 1))
    normalized = list(shape[-count:]) if count <= len(shape) else [2, *shape]
    if draw(st.integers(0, 3)) == 0:  # sometimes wrong
        normalized[draw(st.integers(0, len(normalized) - 1))] = draw(st.integers(1, 4))
    value: Any = normalized[0] if len(normalized) == 1 and draw(st.booleans()) else normalized
    return shape, value


@FEW
@given(case=trailing_norm_cases(), eps=EPS, affine=st.booleans(), bias=st.booleans())
def test_layernorm_matches_torch(agree, case, eps, affine, bias):
    shape, normalized = case
    agree("LayerNorm", {"normalized_shape": normalized, "eps": eps, "elementwise_affine": affine, "bias": bias}, shape)


@FEW
@given(case=trailing_norm_cases(), eps=st.sampled_from([None, 1e-6, 0.0]), affine=st.booleans())
def test_rmsnorm_matches_torch(agree, case, eps, affine):
    shape, normalized = case
    agree("RMSNorm", {"normalized_shape": normalized, "eps": eps, "elementwise_affine": affine}, shape)


@FEW
@given(shape=shapes(1, 5, 4), size=st.integers(1, 6), alpha=FLOATS, beta=st.sampled_from([0.75, 1.0]), k=st.sampled_from([1.0, 2.0]))
def test_local_response_norm_matches_torch(agree, shape, size, alpha, beta, k):
    agree("LocalResponseNorm", {"size": size, "alpha": alpha, "beta": beta, "k": k}, shape)


# -- activation.py ------------------------------------------------------------------------------------

ELEMENTWISE = sorted([*ACTIVATIONS, *DROPOUTS, *SOFTMAXES, "Softmax2d", "GLU"])


def argument_values(name: str) -> st.SearchStrategy[Any]:
    if name == "inplace":
        return st.booleans()
    if name == "approximate":
        return st.sampled_from(["none", "tanh", "exact"])
    if name == "p":
        return st.sampled_from([0.0, 0.3, 0.5, 1.0, 1.5, -0.1])
    if name == "dim":
        return st.one_of(st.none(), st.integers(-5, 4))
    return FLOATS


@st.composite
def elementwise_cases(draw):
    type_name = draw(st.sampled_from(ELEMENTWISE))
    params = lookup(type_name)[1].PARAMS
    kwargs = {}
    for name, default in params.items():
        if default is REQUIRED or draw(st.booleans()):
            kwargs[name] = draw(argument_values(name))
    if type_name == "GLU" and kwargs.get("dim", 0) is None:
        del kwargs["dim"]
    return type_name, kwargs, draw(shapes(1, 5, 4))


@settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(elementwise_cases())
def test_elementwise_layers_match_torch(agree, case):
    agree(*case)


@FEW
@given(shape=shapes(1, 5, 4), count=st.integers(1, 5), init=FLOATS, omit=st.booleans())
def test_prelu_matches_torch(agree, shape, count, init, omit):
    agree("PReLU", {"init": init} if omit else {"num_parameters": count, "init": init}, shape)


# -- resize.py --------------------------------------------------------------------------------------

SCALES = st.sampled_from([0, 0.3, 0.5, 1 / 3, 1.0, 1.1, 1.5, 2, 2.5, 3])


@st.composite
def upsample_cases(draw):
    mode = draw(st.sampled_from(UPSAMPLE_MODES))
    rank = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}.get(mode) or draw(st.integers(3, 5))
    if not draw(st.integers(0, 4)):
        rank = draw(st.integers(2, 6))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    spatial = max(1, min(3, len(shape) - 2))
    count = spatial if draw(st.integers(0, 4)) else draw(st.integers(1, 3))
    size = draw(st.one_of(st.none(), st.integers(0, 6), st.lists(st.integers(1, 6), min_size=count, max_size=count).map(tuple)))
    scale = draw(st.one_of(st.none(), SCALES, st.lists(SCALES.filter(bool), min_size=count, max_size=count).map(tuple)))
    if size is not None and scale is not None and draw(st.integers(0, 3)):
        size, scale = (None, scale) if draw(st.booleans()) else (size, None)
    kwargs = spec(
        size=size,
        scale_factor=scale,
        mode=mode if mode != "nearest" or draw(st.booleans()) else OMIT,
        align_corners=draw(maybe(draw(st.sampled_from([None, True, False])))) if draw(st.integers(0, 2)) else OMIT,
        recompute_scale_factor=draw(maybe(draw(st.sampled_from([None, True, False])))) if draw(st.integers(0, 2)) else OMIT,
    )
    return kwargs, shape


@SOME
@given(upsample_cases())
def test_upsample_matches_torch(agree, case):
    kwargs, shape = case
    agree("Upsample", kwargs, shape)


@FEW
@given(case=upsample_cases(), bilinear=st.booleans())
def test_upsampling2d_matches_torch(agree, case, bilinear):
    kwargs, shape = case
    kwargs = {k: v for k, v in kwargs.items() if k in ("size", "scale_factor")}
    agree("UpsamplingBilinear2d" if bilinear else "UpsamplingNearest2d", kwargs, shape)


@st.composite
def shuffle_cases(draw):
    factor = draw(st.integers(1, 3))
    shape = list(draw(shapes(1, 5, 4)))
    if len(shape) >= 3 and draw(st.booleans()):  # make it fit now and then
        shape[-3] *= factor * factor
        shape[-2] *= factor
        shape[-1] *= factor
    return factor, tuple(shape)


@FEW
@given(case=shuffle_cases(), unshuffle=st.booleans())
def test_pixel_shuffle_matches_torch(agree, case, unshuffle):
    factor, shape = case
    if unshuffle:
        agree("PixelUnshuffle", {"downscale_factor": factor}, shape)
    else:
        agree("PixelShuffle", {"upscale_factor": factor}, shape)


@FEW
@given(shape=shapes(1, 5, 6), groups=st.integers(1, 4))
def test_channel_shuffle_matches_torch(agree, shape, groups):
    agree("ChannelShuffle", {"groups": groups}, shape)


# -- padding.py -------------------------------------------------------------------------------------


@st.composite
def padding_cases(draw, kinds=("Zero", "Constant", "Reflection", "Replication", "Circular"), low=-2):
    kind = draw(st.sampled_from(kinds))
    dims = draw(st.integers(1, 3))
    type_name = f"{kind}Pad{dims}d"
    if draw(st.integers(0, 3)) == 0:
        padding: Any = draw(st.integers(low, 3))
    else:
        padding = tuple(draw(st.lists(st.integers(low, 4), min_size=2 * dims, max_size=2 * dims)))
    kwargs: dict[str, Any] = {"padding": padding}
    if kind == "Constant":
        kwargs["value"] = draw(FLOATS)
    if draw(st.integers(0, 4)):  # mostly a rank the layer takes
        lead = draw(st.lists(st.integers(1, 2), min_size=1, max_size=2))
    else:
        lead = draw(st.lists(st.integers(1, 2), min_size=0, max_size=4))[: draw(st.integers(0, 4))]
    spatial = draw(st.lists(st.integers(1, 6), min_size=dims, max_size=dims))
    shape = tuple(lead + spatial)
    if not lead and draw(st.booleans()):
        shape = shape[1:] or shape
    return type_name, kwargs, shape


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(padding_cases())
def test_padding_layers_match_torch(agree, case):
    agree(*case)


@SOME
@given(padding_cases(kinds=("Circular",), low=-6))
def test_circular_padding_with_crops_matches_torch(agree, case):
    """Circular padding with a crop on one side and a wrap on the other: torch's copies may not fit."""
    agree(*case)


# -- tables: torch's corners, spelled out --------------------------------------------------------------

CORNERS = [
    # (type, kwargs, input, convcalc's output or None for an error)
    ("Linear", {"out_features": 10}, (1, 1568), (1, 10)),
    ("Linear", {"out_features": 10}, (1568,), (10,)),
    ("Linear", {"out_features": 4}, (2, 3, 5), (2, 3, 4)),  # the last dimension only
    ("Linear", {"in_features": 1152, "out_features": 4}, (1, 1568), None),
    ("Flatten", {}, (1, 32, 7, 7), (1, 1568)),
    ("Flatten", {}, (5,), None),  # start_dim 1 of a 1-D input
    ("Flatten", {"start_dim": 0}, (5,), (5,)),
    ("Flatten", {"start_dim": -1, "end_dim": 0}, (2, 3), None),
    ("Unflatten", {"dim": 1, "unflattened_size": [32, -1, 7]}, (1, 1568), (1, 32, 7, 7)),
    ("Unflatten", {"dim": 1, "unflattened_size": [32, 8, 7]}, (1, 1568), None),
    ("BatchNorm1d", {}, (4, 3), (4, 3)),
    ("BatchNorm1d", {}, (1, 3), (1, 3)),  # eval mode: running statistics
    ("BatchNorm1d", {"track_running_stats": False}, (1, 3), None),  # one value per channel
    ("BatchNorm1d", {}, (3,), None),
    ("BatchNorm2d", {}, (3, 8, 8), None),  # no unbatched form
    ("BatchNorm2d", {"num_features": 4}, (1, 3, 8, 8), None),
    ("BatchNorm2d", {"num_features": 4, "affine": False, "track_running_stats": False}, (2, 3, 8, 8), (2, 3, 8, 8)),
    ("BatchNorm2d", {"eps": -1e-3}, (2, 3, 8, 8), None),
    ("BatchNorm2d", {"eps": 0.0}, (2, 3, 8, 8), (2, 3, 8, 8)),
    ("BatchNorm3d", {}, (1, 3, 2, 2, 2), (1, 3, 2, 2, 2)),
    ("InstanceNorm2d", {}, (3, 8, 8), (3, 8, 8)),
    ("InstanceNorm2d", {}, (1, 3, 1, 1), None),  # one position: no statistics
    ("InstanceNorm2d", {"track_running_stats": True}, (1, 3, 1, 1), (1, 3, 1, 1)),
    ("InstanceNorm1d", {"num_features": 5}, (2, 3, 4), (2, 3, 4)),  # torch only warns
    ("InstanceNorm1d", {"num_features": 5, "affine": True}, (2, 3, 4), None),
    ("GroupNorm", {"num_groups": 3}, (1, 4, 2, 2), None),
    ("GroupNorm", {"num_groups": 2, "num_channels": 6, "affine": False}, (1, 4, 2, 2), (1, 4, 2, 2)),
    ("GroupNorm", {"num_groups": 4}, (1, 4), None),  # one value per group
    ("LayerNorm", {"normalized_shape": [7, 7]}, (1, 32, 7, 7), (1, 32, 7, 7)),
    ("LayerNorm", {"normalized_shape": [32, 7]}, (1, 32, 7, 7), None),
    ("PReLU", {"num_parameters": 3}, (1, 3, 4, 4), (1, 3, 4, 4)),
    ("PReLU", {"num_parameters": 3}, (3,), None),  # a 1-D input has channel size 1
    ("Softmax", {"dim": 2}, (1, 10), None),
    ("Softmax", {}, (1, 10), (1, 10)),
    ("Dropout", {"p": 1.5}, (1, 10), None),
    ("Dropout1d", {}, (1, 3, 4, 4), None),
    ("Dropout2d", {}, (1, 10), (1, 10)),  # a warning only
    ("GLU", {}, (1, 10), (1, 5)),
    ("GLU", {"dim": 1}, (1, 5, 2), None),
    ("Hardtanh", {"min_val": 1.0, "max_val": 1.0}, (1, 3), None),
    ("CELU", {"alpha": 0.0}, (1, 3), None),
    ("Upsample", {"scale_factor": 2}, (1, 3, 5, 7), (1, 3, 10, 14)),
    ("Upsample", {"scale_factor": 1.5}, (1, 3, 5), (1, 3, 7)),  # floor
    ("Upsample", {"scale_factor": 0.3}, (1, 3, 2, 2), None),  # floor(0.6) = 0
    ("Upsample", {"size": 4, "scale_factor": 0}, (1, 3, 2, 2), (1, 3, 4, 4)),  # torch drops a 0 scale
    ("Upsample", {"size": (4, 6), "mode": "bilinear", "align_corners": True}, (1, 3, 2, 2), (1, 3, 4, 6)),
    ("Upsample", {"scale_factor": 2, "mode": "bilinear"}, (1, 3, 5), None),  # bilinear needs 4-D
    ("Upsample", {"scale_factor": 2, "mode": "nearest", "align_corners": False}, (1, 3, 5, 5), None),
    ("Upsample", {"size": 4, "scale_factor": 2}, (1, 3, 5, 5), None),
    ("Upsample", {}, (1, 3, 5, 5), None),
    ("Upsample", {"scale_factor": 2}, (3, 5), None),  # dimension 0 is always the batch
    ("UpsamplingNearest2d", {"scale_factor": 2}, (1, 3, 5), (1, 3, 10)),  # torch lets it take 3-D
    ("UpsamplingBilinear2d", {"scale_factor": 2}, (1, 3, 5, 5), (1, 3, 10, 10)),
    ("PixelShuffle", {"upscale_factor": 2}, (1, 8, 3, 3), (1, 2, 6, 6)),
    ("PixelShuffle", {"upscale_factor": 2}, (1, 6, 3, 3), None),
    ("PixelUnshuffle", {"downscale_factor": 2}, (1, 2, 6, 6), (1, 8, 3, 3)),
    ("PixelUnshuffle", {"downscale_factor": 2}, (1, 2, 6, 5), None),
    ("ZeroPad2d", {"padding": (1, 2, 3, 4)}, (1, 3, 5, 5), (1, 3, 12, 8)),
    ("ZeroPad2d", {"padding": 1}, (5, 5), (7, 7)),  # constant padding takes any rank ≥ 2
    ("ZeroPad2d", {"padding": -2}, (1, 3, 5, 5), (1, 3, 1, 1)),  # negative padding crops
    ("ZeroPad2d", {"padding": (-3, 1, 0, 0)}, (1, 3, 5, 2), None),  # crops more than there is
    ("ConstantPad1d", {"padding": 2, "value": 3.5}, (1, 3, 5), (1, 3, 9)),
    ("ReflectionPad2d", {"padding": 2}, (1, 3, 2, 2), None),  # pad < size
    ("ReflectionPad2d", {"padding": 1}, (1, 3, 2, 2), (1, 3, 4, 4)),
    ("ReflectionPad2d", {"padding": 1}, (2, 2), None),  # needs 3-D or 4-D
    ("ReplicationPad1d", {"padding": 9}, (1, 3, 1), (1, 3, 19)),
    ("CircularPad2d", {"padding": 2}, (1, 3, 2, 2), (1, 3, 6, 6)),  # pad ≤ size
    ("CircularPad2d", {"padding": 3}, (1, 3, 2, 2), None),
    ("CircularPad1d", {"padding": (-1, 2)}, (1, 1, 2), None),  # torch's copies overlap
    ("CircularPad1d", {"padding": (-1, 2)}, (1, 2, 2), (1, 2, 3)),  # … unless there are 2 channels
]


@pytest.mark.parametrize("type_name, kwargs, shape, expected", CORNERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CORNERS)])
def test_corners(agree, type_name, kwargs, shape, expected):
    torch_kwargs = dict(kwargs)
    if type_name == "Linear":
        torch_kwargs.setdefault("in_features", shape[-1])
    elif type_name.startswith(("BatchNorm", "InstanceNorm")):
        dims = int(type_name[-2])
        axis = 1 if type_name.startswith("BatchNorm") else len(shape) - dims - 1
        torch_kwargs.setdefault("num_features", shape[axis] if 0 <= axis < len(shape) else 3)
    elif type_name == "GroupNorm":
        torch_kwargs.setdefault("num_channels", shape[1] if shape[1] % kwargs["num_groups"] == 0 else kwargs["num_groups"])
    verdict = agree(type_name, kwargs, shape, torch_kwargs)
    if expected is None:
        assert verdict == "error"
    else:
        assert verdict == "ok"
        assert convcalc.layer(type_name, **kwargs).output_shape(shape) == expected


# -- contract details ------------------------------------------------------------------------------

MY_FAMILIES = ("linear", "norm", "activation", "resize", "padding", "scale", "tokens")


def my_layer_names() -> list[str]:
    from convcalc.layers.catalog import CATALOG

    return sorted(name for name, module in CATALOG.items() if module in MY_FAMILIES)


INFERRED = {"in_features", "num_features", "num_channels"}


@pytest.mark.parametrize("type_name", my_layer_names())
def test_params_are_torchs_keywords_in_torchs_order(type_name):
    """PARAMS: torch's keyword names, in torch's order, with torch's defaults (REQUIRED where torch has
    none, None for the arguments convcalc infers from the input). A family torch.nn has no class for
    (Permute) is held to the module verify builds for it."""
    _, cls = lookup(type_name)
    if cls.OWN_MODULE:
        from convcalc.verify.specs import _merge_classes

        signature = inspect.signature(_merge_classes(torch)[type_name].__init__)
    else:
        signature = inspect.signature(getattr(nn, type_name).__init__)
    torch_params = {
        name: p.default
        for name, p in signature.parameters.items()
        if name not in ("self", "device", "dtype", "min_value", "max_value")
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    assert list(cls.PARAMS) == list(torch_params), type_name
    for name, default in cls.PARAMS.items():
        theirs = torch_params[name]
        if name in INFERRED:
            assert default is None and theirs is inspect.Parameter.empty
        elif default is REQUIRED:
            assert theirs is inspect.Parameter.empty, name
        else:
            assert default == theirs or (isinstance(theirs, float) and math.isclose(default, theirs)), (name, default, theirs)


def test_every_catalogued_name_is_registered():
    for type_name in my_layer_names():
        assert lookup(type_name)[0] == type_name


@pytest.mark.parametrize(
    "type_name, kwargs, shape",
    [
        ("ReLU", {}, (1, 3, 8, 8)),
        ("Dropout", {"p": 0.3}, (1, 3, 8, 8)),
        ("BatchNorm2d", {}, (1, 3, 8, 8)),
        ("GroupNorm", {"num_groups": 1}, (1, 3, 8, 8)),
        ("LayerNorm", {"normalized_shape": [8]}, (1, 3, 8, 8)),
        ("InstanceNorm2d", {}, (1, 3, 8, 8)),
        ("PReLU", {}, (1, 3, 8, 8)),
        ("Softmax", {"dim": 1}, (1, 3, 8, 8)),
        ("Identity", {}, (1, 3, 8, 8)),
        ("LocalResponseNorm", {"size": 2}, (1, 3, 8, 8)),
    ],
)
def test_shape_preserving_layers_leave_the_receptive_field(type_name, kwargs, shape):
    assert make_layer(type_name, **kwargs).bind(shape).window(shape) == IDENTITY


def test_padding_layers_are_unit_windows():
    layer = make_layer("ZeroPad2d", padding=(1, 2, 3, 4))  # left, right, top, bottom
    assert layer.window((1, 3, 8, 8)) == [Window(1, 1, 3), Window(1, 1, 1)]  # H first, then W
    assert make_layer("ReflectionPad1d", padding=2).window((1, 3, 8)) == [Window(1, 1, 2)]
    assert make_layer("ConstantPad3d", padding=-1, value=0).window((1, 1, 4, 4, 4)) == [Window(1, 1, -1)] * 3


@pytest.mark.parametrize(
    "type_name, kwargs, shape",
    [
        ("Linear", {"out_features": 3}, (1, 8)),
        ("Flatten", {}, (1, 3, 8, 8)),
        ("Unflatten", {"dim": 1, "unflattened_size": [2, 4]}, (1, 8)),
        ("Upsample", {"scale_factor": 2}, (1, 3, 8, 8)),
        ("PixelShuffle", {"upscale_factor": 2}, (1, 4, 8, 8)),
        ("PixelUnshuffle", {"downscale_factor": 2}, (1, 4, 8, 8)),
        ("Softmax", {"dim": -1}, (1, 3, 8, 8)),  # mixes the positions of an axis
    ],
)
def test_undefined_receptive_fields(type_name, kwargs, shape):
    assert make_layer(type_name, **kwargs).bind(shape).window(shape) is None


@pytest.mark.parametrize("type_name, kwargs", [("Softmax", {"dim": 3}), ("GLU", {"dim": 2}), ("Flatten", {})])
def test_window_never_raises_on_a_probe_shape(type_name, kwargs):
    """The model diagnosis probes layers this way: a layer without a sliding window answers None."""
    assert make_layer(type_name, **kwargs).window((1,)) is None


def test_describe():
    assert make_layer("Linear", out_features=32).bind((1, 1568)).describe() == "1568→32"
    assert make_layer("Dropout", p=0.3).describe() == "p=0.3"
    assert make_layer("Upsample", scale_factor=2).describe() == "scale=2"
    assert make_layer("Upsample", size=(4, 6), mode="bilinear").describe() == "size=4x6 bilinear"
    assert make_layer("ZeroPad2d", padding=1).describe() == "p=1"
    assert make_layer("LeakyReLU", negative_slope=0.2).describe() == "negative_slope=0.2"
    assert make_layer("ReLU").describe() == ""
    assert make_layer("GroupNorm", num_groups=8).describe() == "groups=8"
    assert make_layer("PixelShuffle", upscale_factor=2).describe() == "r=2"


def test_inferred_arguments_are_filled_by_bind():
    assert make_layer("Linear", out=10).bind((1, 1568)).in_features == 1568
    assert make_layer("BatchNorm2d").bind((1, 16, 8, 8)).num_features == 16
    assert make_layer("InstanceNorm1d").bind((16, 8)).num_features == 16
    assert make_layer("GroupNorm", num_groups=4).bind((1, 16, 8, 8)).num_channels == 16
    assert make_layer("BatchNorm2d").bind((1, 16, 8, 8)).num_params == 32


def test_unknown_inferred_argument_is_an_error_not_a_crash():
    with pytest.raises(ShapeError, match="in_features is not known yet"):
        _ = make_layer("Linear", out=10).num_params
    assert make_layer("BatchNorm2d", affine=False).num_params == 0


# -- messages: the layer, the rule, a value that works -----------------------------------------------


@pytest.mark.parametrize(
    "type_name, kwargs, shape, words",
    [
        ("Linear", {"in_features": 1152, "out_features": 10}, (1, 1568), ["in_features = 1568", "the spec says 1152", "use in_features: 1568"]),
        ("Linear", {"in_features": 1568, "out_features": 10}, (1, 32, 7, 7), ["in_features = 7", "Flatten", "1568 (32×7×7)"]),
        ("BatchNorm2d", {"num_features": 32}, (1, 16, 8, 8), ["num_features = 16", "says 32", "use num_features: 16"]),
        ("GroupNorm", {"num_groups": 3}, (1, 16, 8, 8), ["16 channels", "num_groups=3", "1, 2, 4, 8, 16"]),
        ("LayerNorm", {"normalized_shape": [8, 7]}, (1, 3, 8, 8), ["last 2 dimensions", "use normalized_shape: [8, 8]"]),
        ("Flatten", {"start_dim": 2}, (4, 5), ["start_dim=2 is out of range", "from -2 to 1"]),
        ("Unflatten", {"dim": 1, "unflattened_size": [3, 5]}, (1, 16), ["multiplies to 15", "must multiply to 16"]),
        ("PReLU", {"num_parameters": 3}, (1, 4, 8, 8), ["num_parameters 3", "use num_parameters: 4"]),
        ("Softmax", {"dim": 2}, (1, 10), ["dim=2 is out of range", "from -2 to 1"]),
        ("Upsample", {"scale_factor": 0.3}, (1, 3, 2, 2), ["floor(2 × 0.3) = 0", "scale_factor ≥ 0.5"]),
        ("Upsample", {"scale_factor": 2, "mode": "trilinear"}, (1, 3, 8, 8), ["'trilinear' needs a 5-D"]),
        ("PixelShuffle", {"upscale_factor": 2}, (1, 6, 3, 3), ["divisible by upscale_factor² = 4", "e.g. 8"]),
        ("ReflectionPad2d", {"padding": 4}, (1, 3, 4, 4), ["smaller than the input size 4", "padding ≤ 3"]),
        ("CircularPad1d", {"padding": 5}, (1, 3, 4), ["more than once", "padding ≤ 4"]),
        ("ZeroPad1d", {"padding": -2}, (1, 3, 4), ["= 0", "crop at most 3"]),
    ],
)
def test_shape_errors_explain_themselves(type_name, kwargs, shape, words):
    with pytest.raises(ShapeError) as caught:
        make_layer(type_name, **kwargs).bind(shape).output_shape(shape)
    message = str(caught.value)
    assert message.startswith(type_name) and "\n" not in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(
    "type_name, kwargs, words",
    [
        ("Dropout", {"p": 1.5}, ["p (the dropout probability)", "between 0.0 and 1.0", "1.5"]),
        ("Linear", {}, ["needs out_features"]),
        ("GroupNorm", {"num_groups": 3, "num_channels": 16}, ["divisible by num_groups (3)", "1, 2, 4, 8, 16"]),
        ("Hardtanh", {"min_val": 2.0, "max_val": 1.0}, ["max_val (1) must be greater than min_val (2)", "max_val: 4"]),
        ("GELU", {"approximate": "tan"}, ["'none', 'tanh'", "did you mean tanh?"]),
        ("Upsample", {"size": 4, "scale_factor": 2}, ["only one of size or scale_factor"]),
        ("Upsample", {}, ["give size or scale_factor", "scale_factor: 2"]),
        ("Upsample", {"scale_factor": 2, "align_corners": True}, ["interpolating modes", "leave it out"]),
        ("Upsample", {"scale_factor": 2, "mode": "bilnear"}, ["did you mean bilinear?"]),
        ("ZeroPad2d", {"padding": [1, 2]}, ["needs 4 values (left, right, top, bottom)"]),
        ("Unflatten", {"dim": 1, "unflattened_size": [-1, -1]}, ["only one size", "-1"]),
        ("BatchNorm2d", {"eps": -1.0}, ["eps must not be negative", "1e-05"]),
        ("Flatten", {"start_dim": 3, "end_dim": 1}, ["comes after end_dim", "start_dim: 1"]),
        ("Threshold", {"threshold": 0.1}, ["needs value"]),
    ],
)
def test_spec_errors_explain_themselves(type_name, kwargs, words):
    with pytest.raises(SpecError) as caught:
        make_layer(type_name, **kwargs)
    message = str(caught.value)
    assert message.startswith(type_name) and "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_training_only_failures_are_warnings():
    warned = make_layer("BatchNorm1d").bind((1, 8)).warnings((1, 8))
    assert any("training mode" in line for line in warned)
    assert make_layer("BatchNorm1d").bind((2, 8)).warnings((2, 8)) == []
    assert any("Flatten" in line for line in make_layer("Linear", out=3).warnings((1, 3, 4, 4)))


@pytest.mark.parametrize("type_name", ["ReLU", "Dropout", "Softmax", "GLU", "Linear", "BatchNorm2d", "ZeroPad2d", "Upsample"])
def test_layers_pickle_and_compare_by_value(type_name):
    import pickle

    kwargs = {"Linear": {"out_features": 3}, "ZeroPad2d": {"padding": 1}, "Upsample": {"scale_factor": 2}}.get(type_name, {})
    layer = make_layer(type_name, **kwargs)
    assert pickle.loads(pickle.dumps(layer)) == layer == make_layer(type_name, **kwargs)
