"""ConvTranspose1d/2d/3d: the engine agrees with real torch layers (torch is the oracle).

Property tests draw random constructor arguments and inputs — int or per-axis tuple
kernel_size/stride/padding/dilation/output_padding, groups, bias, batched and unbatched
inputs, wrong ranks and channel mismatches, and now and then values torch refuses
(output_padding not below stride or dilation, negative padding, padding='same', a padding_mode
other than zeros, a zero kernel or stride, groups ≤ 0, an output size below 1). For each case,
``torch_agrees`` (tests/conftest.py) asserts that convcalc raises ShapeError/SpecError exactly
when torch raises, and otherwise that the output shape, the parameter count and the MACs
(FlopCounterMode's flops // 2, counted over input positions) are equal.

Deliberate difference: convcalc requires every input size and channel count to be ≥ 1 (torch
also accepts empty tensors), so the strategies draw sizes and channels from 1 upwards only.
torch quirk: on CPU, torch hands some transposed convolutions (grouped ones, or a batch of more
than one) to oneDNN, which skips two of torch's checks: it accepts dilation 0 (with kernel 1)
and returns an empty tensor for an output size of 0. torch's own kernels (batch 1, groups 1,
or oneDNN disabled) refuse both, as convcalc does: the answer must not depend on the batch size.
The random test with arguments torch may refuse therefore runs torch with oneDNN disabled
(``native_kernels``); the test with valid arguments runs torch as it comes.

``CONVCALC_EXAMPLES_SCALE`` (default 1) multiplies the number of examples for a deeper run.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
from hypothesis import strategies as st
from strategies import BATCHES, SCALE, channel_counts, check_cases, input_shapes, per_axis, values

import convcalc
from convcalc import formulas

#: Examples per family (ConvTranspose1d, 2d, 3d each).
EXAMPLES = int(700 * SCALE)

MAX_SIZE = {1: 8, 2: 6, 3: 4}
KERNELS = {1: [1, 2, 3, 4], 2: [1, 2, 3, 4], 3: [1, 2, 3]}


@st.composite
def tconv_cases(draw, dims: int) -> tuple[dict, tuple[int, ...]]:
    wild = draw(st.booleans())  # also values torch refuses
    groups = draw(values([1, 1, 2, 3], [0, -1], wild))
    in_channels = draw(channel_counts(groups, wild))
    kwargs: dict = {
        "in_channels": in_channels,
        "out_channels": draw(channel_counts(groups, wild)),
        "kernel_size": draw(per_axis(dims, values(KERNELS[dims], [0], wild))),
    }
    optional = {
        "stride": per_axis(dims, values([1, 1, 2, 3], [0, -1], wild)),
        "padding": per_axis(dims, values([0, 0, 1, 2, 3], [-1], wild))
        | (st.sampled_from(["same", "valid"]) if wild else st.nothing()),
        "output_padding": per_axis(dims, st.sampled_from([0, 0, 0, 1, 1, 2])),
        "groups": st.just(groups),
        "bias": st.booleans(),
        "dilation": per_axis(dims, values([1, 1, 2, 3], [0], wild)),
        "padding_mode": values(["zeros"], ["reflect", "replicate", "circular"], wild),
    }
    for name, strategy in optional.items():
        if draw(st.integers(0, 3)) or (name == "groups" and groups != 1):
            kwargs[name] = draw(strategy)
    return kwargs, draw(input_shapes(dims, MAX_SIZE[dims], wild, channels=in_channels))


@contextlib.contextmanager
def native_kernels():
    """torch's own CPU kernels, not oneDNN (whose deconvolution skips two of torch's checks)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flags' note about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False):
            yield


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_tconv_agrees_with_torch(dims, torch_agrees):
    check_cases(torch_agrees, f"ConvTranspose{dims}d", tconv_cases(dims), EXAMPLES, around=native_kernels)


@st.composite
def valid_tconv_cases(draw, dims: int) -> tuple[dict, tuple[int, ...]]:
    """Arguments and an input torch accepts, so every example compares numbers."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel = draw(st.tuples(*[st.sampled_from(KERNELS[dims])] * dims))
    stride = draw(st.tuples(*[st.integers(1, 3)] * dims))
    dilation = draw(st.tuples(*[st.integers(1, 3)] * dims))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    sizes = tuple(draw(st.integers(1, MAX_SIZE[dims])) for _ in range(dims))
    # keep the output ≥ 1: 2p ≤ (in − 1)s + d(k − 1) + op
    padding = tuple(
        draw(st.integers(0, ((n - 1) * s + d * (k - 1) + op) // 2))
        for n, k, s, d, op in zip(sizes, kernel, stride, dilation, output_padding)
    )
    kwargs = {
        "in_channels": groups * draw(st.integers(1, 2)),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "groups": groups,
        "bias": draw(st.booleans()),
        "dilation": dilation,
    }
    return kwargs, (*draw(BATCHES), kwargs["in_channels"], *sizes)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_valid_tconv_matches_torch_numbers(dims, torch_agrees):
    check_cases(torch_agrees, f"ConvTranspose{dims}d", valid_tconv_cases(dims), EXAMPLES // 3, expect="ok")


# -- the course's exercises --------------------------------------------------------------------

COURSE = [
    # input, kwargs, expected output (per axis)
    (2, {"kernel_size": 3}, 4),
    (3, {"kernel_size": 3, "padding": 2}, 1),
    (3, {"kernel_size": 3, "stride": 3, "output_padding": 1}, 10),
]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("size, kwargs, expected", COURSE, ids=lambda v: str(v))
def test_course_tconv_examples(dims, size, kwargs, expected, torch_agrees):
    name = f"ConvTranspose{dims}d"
    tconv = convcalc.layer(name, in_channels=2, out_channels=4, **kwargs)
    assert tconv.output_shape((1, 2, *[size] * dims)) == (1, 4, *[expected] * dims)
    assert torch_agrees(name, {"in_channels": 2, "out_channels": 4, **kwargs}, (1, 2, *[size] * dims)) == "ok"


REJECTED = [
    # arguments torch refuses, at construction or in forward
    ("ConvTranspose2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 2, "output_padding": 2}, (1, 1, 4, 4)),
    ("ConvTranspose2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "output_padding": 1}, (1, 1, 4, 4)),
    ("ConvTranspose1d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 2}, (1, 1, 2)),
    ("ConvTranspose1d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": "same"}, (1, 1, 4)),
    ("ConvTranspose2d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding_mode": "reflect"}, (1, 1, 4, 4)),
    ("ConvTranspose2d", {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "groups": 2}, (1, 2, 4, 4)),
    ("ConvTranspose2d", {"in_channels": 2, "out_channels": 2, "kernel_size": 3}, (1, 3, 4, 4)),
    ("ConvTranspose3d", {"in_channels": 1, "out_channels": 1, "kernel_size": 3}, (1, 4, 4)),
]


@pytest.mark.parametrize("type_name, kwargs, shape", REJECTED, ids=lambda v: str(v))
def test_rejected_like_torch(type_name, kwargs, shape, torch_agrees, torch_refuses_alike):
    assert torch_agrees(type_name, kwargs, shape) == "error"
    torch_refuses_alike(type_name, kwargs, shape)  # and for the same reason


def test_oracle_catches_macs_over_output_positions(torch_agrees, monkeypatch):
    """The comparison can fail: counting MACs over output positions (as torchinfo does:
    4× too much for a stride-2 layer) or an off-by-one output size is caught."""
    from math import prod

    from convcalc.layers.tconv import ConvTranspose

    def over_outputs(self, shape):
        out = self.output_shape(shape)
        return prod(out[-self.dims :]) * shape[-self.dims - 1] * self.out_channels * prod(self.kernel_size)

    kwargs = {"in_channels": 2, "out_channels": 2, "kernel_size": 2, "stride": 2}
    assert torch_agrees("ConvTranspose2d", kwargs, (1, 2, 4, 4)) == "ok"
    with monkeypatch.context() as patch:
        patch.setattr(ConvTranspose, "macs", over_outputs)
        with pytest.raises(AssertionError, match="macs"):
            torch_agrees("ConvTranspose2d", kwargs, (1, 2, 4, 4))
    with monkeypatch.context() as patch:
        patch.setattr(formulas, "tconv_out", lambda size, k, s, p, d, op: (size - 1) * s - 2 * p + d * (k - 1) + op)
        with pytest.raises(AssertionError, match="output shape"):
            torch_agrees("ConvTranspose2d", kwargs, (1, 2, 4, 4))


@pytest.mark.parametrize("batch", [(), (1,), (2,)])
@pytest.mark.parametrize(
    "kwargs, size",
    [
        ({"kernel_size": 4, "padding": 2}, 1),  # output size 0
        ({"kernel_size": 3, "padding": 2, "groups": 2}, 2),  # output size 0, grouped
        ({"kernel_size": 1, "dilation": 0, "groups": 2}, 4),  # dilation 0
    ],
    ids=str,
)
def test_refused_whatever_the_batch(kwargs, size, batch, torch_agrees):
    """What torch's own kernels refuse is an error for every batch size (see the module notes)."""
    full = {"in_channels": 2, "out_channels": 2, **kwargs}
    with pytest.raises((convcalc.ShapeError, convcalc.SpecError)):
        convcalc.layer("ConvTranspose1d", **full).output_shape((*batch, 2, size))
    with native_kernels():
        assert torch_agrees("ConvTranspose1d", full, (*batch, 2, size)) == "error"
