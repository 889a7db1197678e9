"""Conv1d/2d/3d: the engine agrees with real torch layers (torch is the oracle).

Property tests draw random constructor arguments and inputs — int or per-axis tuple
kernel_size/stride/padding/dilation, ``padding='same'|'valid'``, every padding_mode (negative
padding included for the non-zeros modes), groups, bias, batched and unbatched inputs, wrong
ranks and channel mismatches, and now and then values torch refuses (a zero kernel, a zero or
negative stride, groups ≤ 0). For each case, ``torch_agrees`` (tests/conftest.py) asserts
that convcalc raises ShapeError/SpecError exactly when torch raises, and otherwise that the
output shape, the parameter count and the MACs (FlopCounterMode's flops // 2) are equal.

Deliberate difference: convcalc requires every input size and channel count to be ≥ 1 (torch
also accepts empty tensors), so the strategies draw sizes and channels from 1 upwards only.
``CONVCALC_EXAMPLES_SCALE`` (default 1) multiplies the number of examples for a deeper run.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from strategies import BATCHES, SCALE, channel_counts, check_cases, input_shapes, per_axis, values

import convcalc
from convcalc import formulas

#: Examples per family (Conv1d, Conv2d, Conv3d each).
EXAMPLES = int(700 * SCALE)

#: Largest spatial size, kernel and dilation drawn per number of spatial axes.
MAX_SIZE = {1: 12, 2: 10, 3: 6}
KERNELS = {1: [1, 2, 3, 4, 5], 2: [1, 2, 3, 4, 5], 3: [1, 2, 3]}
DILATIONS = {1: [1, 1, 2, 3], 2: [1, 1, 2, 3], 3: [1, 1, 2]}


@st.composite
def conv_cases(draw, dims: int) -> tuple[dict, tuple[int, ...]]:
    wild = draw(st.booleans())  # also values torch refuses
    groups = draw(values([1, 1, 2, 3], [0, -1], wild))
    in_channels = draw(channel_counts(groups, wild))
    kwargs: dict = {
        "in_channels": in_channels,
        "out_channels": draw(channel_counts(groups, wild)),
        "kernel_size": draw(per_axis(dims, values(KERNELS[dims], [0], wild))),
    }
    mode = draw(st.sampled_from(["zeros", "zeros", "zeros", "reflect", "replicate", "circular"]))
    # negative padding: refused in zeros mode, a crop in the others
    pads = values([0, 0, 1, 2, 3], [-1], wild) if mode == "zeros" else st.sampled_from([-2, -1, 0, 1, 1, 2, 3])
    numbers = per_axis(dims, pads)
    padding = draw(st.one_of(numbers, numbers, numbers, st.sampled_from(["same", "valid"])))
    optional = {
        "stride": per_axis(dims, values([1, 1, 2, 3], [0, -1], wild)),
        "padding": st.just(padding),
        "dilation": per_axis(dims, values(DILATIONS[dims], [0], wild)),
        "groups": st.just(groups),
        "bias": st.booleans(),
        "padding_mode": st.just(mode),
    }
    for name, strategy in optional.items():
        # mostly given explicitly; sometimes left to the default (groups only when it is 1)
        if draw(st.integers(0, 3)) or (name == "groups" and groups != 1):
            kwargs[name] = draw(strategy)
    return kwargs, draw(input_shapes(dims, MAX_SIZE[dims], wild, channels=in_channels))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_agrees_with_torch(dims, torch_agrees):
    check_cases(torch_agrees, f"Conv{dims}d", conv_cases(dims), EXAMPLES)


@st.composite
def valid_conv_cases(draw, dims: int) -> tuple[dict, tuple[int, ...]]:
    """Arguments and an input torch accepts, so every example compares numbers."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel = draw(st.tuples(*[st.sampled_from(KERNELS[dims])] * dims))
    dilation = draw(st.tuples(*[st.sampled_from(DILATIONS[dims])] * dims))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]  # the dilated kernels
    if draw(st.booleans()):
        padding = "same"
        stride: tuple[int, ...] = (1,) * dims
        # reflect needs each side's padding below the size, circular at most the size
        sizes = tuple(draw(st.integers(s // 2 + 1, MAX_SIZE[dims] + 2)) for s in spans)
    else:
        padding = draw(st.tuples(*[st.integers(0, 2)] * dims))
        stride = draw(st.tuples(*[st.integers(1, 3)] * dims))
        sizes = tuple(
            draw(st.integers(max(1, s - 2 * p, p + 1), max(1, s - 2 * p, p + 1) + MAX_SIZE[dims]))
            for s, p in zip(spans, padding)
        )
    kwargs = {
        "in_channels": groups * draw(st.integers(1, 2)),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": draw(st.booleans()),
        "padding_mode": mode,
    }
    return kwargs, (*draw(BATCHES), kwargs["in_channels"], *sizes)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_valid_conv_matches_torch_numbers(dims, torch_agrees):
    check_cases(torch_agrees, f"Conv{dims}d", valid_conv_cases(dims), EXAMPLES // 3, expect="ok")


# -- the course's exercises --------------------------------------------------------------------

COURSE = [
    # input (H×W), kwargs, expected output (H×W)
    ((227, 227), {"kernel_size": 11, "stride": 4}, (55, 55)),
    ((64, 64), {"kernel_size": 7, "stride": 2}, (29, 29)),
    ((32, 32), {"kernel_size": 5, "padding": 2}, (32, 32)),
    ((32, 64), {"kernel_size": 5}, (28, 60)),
    ((64, 32), {"kernel_size": 3, "padding": 1}, (64, 32)),
]


@pytest.mark.parametrize("size, kwargs, expected", COURSE, ids=lambda v: str(v))
def test_course_conv_examples(size, kwargs, expected, torch_agrees):
    conv = convcalc.layer("Conv2d", in_channels=3, out_channels=8, **kwargs)
    assert conv.output_shape((1, 3, *size)) == (1, 8, *expected)
    assert conv.output_shape((3, *size)) == (8, *expected)
    assert torch_agrees("Conv2d", {"in_channels": 3, "out_channels": 8, **kwargs}, (1, 3, *size)) == "ok"


def test_kernel_larger_than_input_message(torch_agrees):
    conv = convcalc.layer("Conv2d", in_channels=1, out_channels=1, kernel_size=11)
    with pytest.raises(convcalc.ShapeError) as caught:
        conv.output_shape((1, 1, 8, 8))
    assert (
        "kernel 11 (dilated: 11) is larger than the padded input 8 (input 8 + 2×0 padding);"
        " use an input of at least 11 or padding ≥ 2"
    ) in str(caught.value)
    assert torch_agrees("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 11}, (1, 1, 8, 8)) == "error"


REJECTED = [
    # arguments torch refuses, at construction or in forward
    ("Conv1d", {"in_channels": 1, "out_channels": 1, "kernel_size": (3, 3)}, (1, 1, 8)),
    ("Conv1d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": (2, 2)}, (1, 1, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": (3, 3, 3)}, (1, 1, 8, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "dilation": (1, 1, 1)}, (1, 1, 8, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": "full"}, (1, 1, 8, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding_mode": "mirror"}, (1, 1, 8, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2, "padding": "same"}, (1, 1, 8, 8)),
    ("Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 4}, (1, 4, 8, 8)),
    ("Conv2d", {"in_channels": 3, "out_channels": 6, "kernel_size": 3}, (1, 4, 8, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 3, "padding_mode": "reflect"}, (1, 1, 3, 8)),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 1, "padding": 4, "padding_mode": "circular"}, (1, 1, 3, 8)),
    ("Conv1d", {"in_channels": 1, "out_channels": 1, "kernel_size": 1, "padding": -2, "padding_mode": "replicate"}, (1, 4)),
]


@pytest.mark.parametrize("type_name, kwargs, shape", REJECTED, ids=lambda v: str(v))
def test_rejected_like_torch(type_name, kwargs, shape, torch_agrees, torch_refuses_alike):
    assert torch_agrees(type_name, kwargs, shape) == "error"
    torch_refuses_alike(type_name, kwargs, shape)  # and for the same reason


def test_oracle_catches_a_wrong_formula(torch_agrees, monkeypatch):
    """The comparison can fail: an off-by-one in the conv formula is caught."""
    kwargs = {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2}
    assert torch_agrees("Conv2d", kwargs, (1, 1, 9, 9)) == "ok"
    monkeypatch.setattr(formulas, "conv_out", lambda *args: (args[0] - args[1]) // args[2] + 2)
    with pytest.raises(AssertionError, match="output shape"):
        torch_agrees("Conv2d", kwargs, (1, 1, 9, 9))
