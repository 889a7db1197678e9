"""Max/Avg pooling and adaptive pooling in 1, 2 and 3 dimensions: the engine agrees with
real torch layers (torch is the oracle).

Property tests draw random constructor arguments and inputs — int or per-axis tuple
kernel_size/stride/padding/dilation, the default stride (= kernel), ceil_mode,
count_include_pad, divisor_override, adaptive output sizes with ``None`` axes, batched and
unbatched inputs, wrong ranks, and in a "wild" case values torch refuses (padding above half
the kernel, negative padding, zero kernel/stride/dilation, divisor 0, negative output sizes).
For each case, ``torch_agrees`` (tests/conftest.py) asserts that convcalc raises
ShapeError/SpecError exactly when torch raises, and otherwise that the output shape is equal
and that parameters and MACs are 0, as FlopCounterMode counts them.

Deliberate differences: convcalc requires every input size and channel count to be ≥ 1 (torch
also accepts empty tensors), so the strategies draw them from 1 upwards only. The property tests
here leave ``return_indices`` False (the layer returns a pair then); tests/test_engine_unpool.py
checks return_indices=True (values and indices of the output shape) and MaxUnpool.
``CONVCALC_EXAMPLES_SCALE`` (default 1) multiplies the number of examples for a deeper run.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import strategies as st
from strategies import BATCHES, SCALE, check_cases, input_shapes, per_axis, values

import convcalc
from convcalc import formulas

#: Examples per family (MaxPool1d … AvgPool3d each; ¾ of it for each adaptive family).
EXAMPLES = int(400 * SCALE)

MAX_SIZE = {1: 12, 2: 10, 3: 6}


@st.composite
def pool_cases(draw, type_name: str) -> tuple[dict, tuple[int, ...]]:
    dims = int(type_name[-2])
    wild = draw(st.booleans())  # also values torch refuses
    kwargs: dict = {"kernel_size": draw(per_axis(dims, values([1, 2, 3, 4], [0], wild)))}
    optional = {
        "stride": st.none() | per_axis(dims, values([1, 2, 3], [0, -1], wild)),
        # more than half the kernel (refused) happens without being wild
        "padding": per_axis(dims, values([0, 0, 1, 1, 2], [-1], wild)),
        "ceil_mode": st.booleans(),
    }
    if type_name.startswith("MaxPool"):
        optional["dilation"] = per_axis(dims, values([1, 1, 2, 3], [0], wild))
        optional["return_indices"] = st.just(False)
    else:
        optional["count_include_pad"] = st.booleans()
        if dims > 1:
            optional["divisor_override"] = values([None, 1, 3, -2], [0], wild)
    for name, strategy in optional.items():
        if draw(st.booleans()):
            kwargs[name] = draw(strategy)
    return kwargs, draw(input_shapes(dims, MAX_SIZE[dims], wild))


POOLS = [f"{kind}{dims}d" for kind in ("MaxPool", "AvgPool") for dims in (1, 2, 3)]
ADAPTIVE = [f"Adaptive{kind}Pool{dims}d" for kind in ("Avg", "Max") for dims in (1, 2, 3)]


@pytest.mark.parametrize("type_name", POOLS)
def test_pool_agrees_with_torch(type_name, torch_agrees):
    check_cases(torch_agrees, type_name, pool_cases(type_name), EXAMPLES)


@st.composite
def ceil_cases(draw, type_name: str) -> tuple[dict, tuple[int, ...]]:
    """Valid arguments with ceil_mode, where the last window may start in the right padding."""
    dims = int(type_name[-2])
    kernel = draw(st.tuples(*[st.integers(1, 4)] * dims))
    kwargs = {
        "kernel_size": kernel,
        "stride": draw(st.tuples(*[st.integers(1, 4)] * dims)),
        "padding": tuple(draw(st.integers(0, k // 2)) for k in kernel),
        "ceil_mode": True,
    }
    sizes = tuple(draw(st.integers(1, MAX_SIZE[dims])) for _ in range(dims))
    return kwargs, (*draw(BATCHES), 2, *sizes)


@pytest.mark.parametrize("type_name", POOLS)
def test_ceil_mode_agrees_with_torch(type_name, torch_agrees):
    check_cases(torch_agrees, type_name, ceil_cases(type_name), EXAMPLES // 3)


@st.composite
def adaptive_cases(draw, type_name: str) -> tuple[dict, tuple[int, ...]]:
    dims = int(type_name[-2])
    wild = draw(st.booleans())
    size = values([0, 1, 2, 3, 5, 7, 13], [-1], wild)
    # None keeps the input's size on that axis (2-D and 3-D only; torch's 1-D layers refuse it)
    entry = size | st.none() if dims > 1 or wild else size
    output_size = draw(st.one_of(size, st.tuples(*[entry] * dims)))
    return {"output_size": output_size}, draw(input_shapes(dims, MAX_SIZE[dims], wild))


@pytest.mark.parametrize("type_name", ADAPTIVE)
def test_adaptive_pool_agrees_with_torch(type_name, torch_agrees):
    # output_size 0: torch returns an empty tensor, convcalc refuses (no calculating with empty outputs)
    agrees = functools.partial(torch_agrees, empty_is_error=True)
    check_cases(agrees, type_name, adaptive_cases(type_name), EXAMPLES * 3 // 4)


@pytest.mark.parametrize("type_name", ADAPTIVE)
@pytest.mark.parametrize("output_size", [0, "one zero"])
def test_adaptive_pool_output_size_0_is_refused(type_name, output_size):
    import torch

    dims = int(type_name[-2])
    size = 0 if output_size == 0 else (2,) * (dims - 1) + (0,)
    shape = (1, 2, *[4] * dims)
    assert getattr(torch.nn, type_name)(size)(torch.zeros(shape)).numel() == 0  # torch: empty, no error
    with pytest.raises(convcalc.SpecError, match="output_size 0 gives an empty output"):
        convcalc.layer(type_name, output_size=size)


# -- the course's exercises and corners ---------------------------------------------------------

COURSE = [
    # input (per axis), kwargs, expected output (per axis)
    (24, {"kernel_size": 2}, 12),
    (26, {"kernel_size": 2, "stride": 2, "padding": 1}, 14),
    (1, {"kernel_size": 2, "ceil_mode": True}, 1),  # ceil_mode: a window larger than the input
    (5, {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, 3),  # last window dropped
    (6, {"kernel_size": 3, "stride": 2, "ceil_mode": True}, 3),  # last window hangs over the edge
]


@pytest.mark.parametrize("type_name", POOLS)
@pytest.mark.parametrize("size, kwargs, expected", COURSE, ids=str)
def test_course_pool_examples(type_name, size, kwargs, expected, torch_agrees):
    dims = int(type_name[-2])
    pool = convcalc.layer(type_name, **kwargs)
    if type_name == "AvgPool3d" and size < kwargs["kernel_size"]:
        # torch's avg_pool3d alone wants the kernel to fit the input without its padding
        with pytest.raises(convcalc.ShapeError, match="kernel 2 is larger than the input 1"):
            pool.output_shape((1, 3, *[size] * dims))
        assert torch_agrees(type_name, kwargs, (1, 3, *[size] * dims)) == "error"
        return
    assert pool.output_shape((1, 3, *[size] * dims)) == (1, 3, *[expected] * dims)
    assert pool.output_shape((3, *[size] * dims)) == (3, *[expected] * dims)
    assert torch_agrees(type_name, kwargs, (1, 3, *[size] * dims)) == "ok"


TABLE = [
    ("AdaptiveAvgPool2d", {"output_size": (None, 3)}, (1, 5, 7), (1, 5, 3)),
    ("AdaptiveMaxPool3d", {"output_size": (2, None, 1)}, (2, 1, 4, 5, 6), (2, 1, 2, 5, 1)),
    ("AdaptiveAvgPool1d", {"output_size": 9}, (3, 4), (3, 9)),  # larger than the input
    # torch computes an all-1 adaptive average as a mean over the last axes: other ranks work
    ("AdaptiveAvgPool2d", {"output_size": 1}, (5, 7), (1, 1)),
    ("AdaptiveAvgPool2d", {"output_size": (1, None)}, (2, 3, 4, 5, 1), (2, 3, 4, 1, 1)),
    ("AdaptiveAvgPool3d", {"output_size": 1}, (1, 2, 3, 4, 5, 6), (1, 2, 3, 1, 1, 1)),
    ("MaxPool3d", {"kernel_size": 3, "stride": 1, "padding": 1}, (1, 2, 2, 2), (1, 2, 2, 2)),
]


@pytest.mark.parametrize("type_name, kwargs, shape, expected", TABLE, ids=str)
def test_pool_table(type_name, kwargs, shape, expected, torch_agrees):
    layer = convcalc.layer(type_name, **kwargs)
    assert layer.output_shape(shape) == expected
    assert torch_agrees(type_name, kwargs, shape) == "ok"
    # the arguments convcalc hands to the verifier rebuild the same layer
    assert torch_agrees(type_name, layer.torch_kwargs(), shape) == "ok"


REJECTED = [
    # arguments torch refuses, at construction or in forward
    ("MaxPool2d", {"kernel_size": 2, "padding": 2, "dilation": 3}, (1, 1, 8, 8)),  # dilation does not loosen it
    ("MaxPool1d", {"kernel_size": 2, "padding": 2, "dilation": 3}, (1, 1, 8)),
    ("AvgPool3d", {"kernel_size": 3, "padding": 2}, (1, 1, 8, 8, 8)),
    ("AvgPool3d", {"kernel_size": 3, "stride": 1, "padding": 1}, (1, 2, 2, 2)),  # kernel > unpadded input
    ("AdaptiveAvgPool2d", {"output_size": (1, 1)}, (5, 7)),  # a tuple wants a channel axis
    ("AdaptiveAvgPool2d", {"output_size": (1, None)}, (2, 3, 4, 5, 6)),  # 6 ≠ 1: no mean shortcut
    ("AdaptiveAvgPool2d", {"output_size": 1}, (7,)),
    ("AdaptiveMaxPool2d", {"output_size": 1}, (5, 7)),
    ("AvgPool2d", {"kernel_size": 2, "divisor_override": 0}, (1, 1, 4, 4)),
    ("MaxPool2d", {"kernel_size": 5}, (1, 1, 4, 8)),
    ("AvgPool1d", {"kernel_size": (2, 2)}, (1, 1, 8)),
    ("MaxPool1d", {"kernel_size": 2}, (1, 1, 1, 8)),
    ("AdaptiveAvgPool1d", {"output_size": (None,)}, (1, 1, 8)),
    ("AdaptiveMaxPool1d", {"output_size": None}, (1, 1, 8)),
    ("AdaptiveAvgPool2d", {"output_size": (2, 2, 2)}, (1, 1, 4, 4)),
    ("AdaptiveMaxPool2d", {"output_size": -1}, (1, 1, 4, 4)),
]


@pytest.mark.parametrize("type_name, kwargs, shape", REJECTED, ids=str)
def test_rejected_like_torch(type_name, kwargs, shape, torch_agrees, torch_refuses_alike):
    assert torch_agrees(type_name, kwargs, shape) == "error"
    torch_refuses_alike(type_name, kwargs, shape)  # and for the same reason


@pytest.mark.parametrize("type_name", ["MaxPool2d", "AdaptiveMaxPool2d"])
def test_return_indices_is_accepted(type_name):
    """torch returns (values, indices); convcalc gives the values' shape and says it returns indices."""
    kwargs = {"kernel_size": 2} if type_name == "MaxPool2d" else {"output_size": 2}
    layer = convcalc.layer(type_name, return_indices=True, **kwargs)
    assert layer.returns_indices and layer.output_shape((1, 1, 4, 4)) == (1, 1, 2, 2)
    assert not convcalc.layer(type_name, **kwargs).returns_indices


def test_oracle_catches_a_kept_ceil_window(torch_agrees, monkeypatch):
    """The comparison can fail: forgetting to drop ceil_mode's last window is caught."""
    kwargs = {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}
    assert torch_agrees("MaxPool2d", kwargs, (1, 1, 5, 5)) == "ok"

    def keeps_it(size, kernel, stride, padding, dilation, ceil_mode):
        return -(-(size + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1

    monkeypatch.setattr(formulas, "pool_out", keeps_it)
    with pytest.raises(AssertionError, match="output shape"):
        torch_agrees("MaxPool2d", kwargs, (1, 1, 5, 5))
