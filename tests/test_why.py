"""``convcalc why``: every message comes from real torch (random sizes), is recognised as its kind with
the right numbers, and the first fix it proposes makes torch accept the layer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.why import KINDS, UnrecognisedMessage, explain

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

SETTINGS: dict[str, Any] = {"max_examples": 25, "deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much]}


def message(run: Any) -> str:
    """What torch raises when ``run()`` is called (it must raise)."""
    try:
        run()
    except Exception as error:  # noqa: BLE001 - torch raises RuntimeError, ValueError, IndexError …
        return str(error)
    raise AssertionError("torch accepted it")


def accepts(run: Any) -> bool:
    try:
        run()
    except Exception:  # noqa: BLE001 - any refusal of torch's
        return False
    return True


def keyword_fix(fix: str) -> dict[str, Any]:
    """``"in_channels=6, groups=2"`` → ``{"in_channels": 6, "groups": 2}`` (values as Python literals)."""
    import ast

    call = ast.parse(f"f({fix})", mode="eval").body
    assert isinstance(call, ast.Call)
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def increment_fix(fix: str, name: str) -> Any:
    """``"padding += (1, 0)"`` → ``(1, 0)``; ``"padding += 1"`` → ``1``."""
    import ast

    match = re.fullmatch(rf"{name} \+= (.+)", fix)
    assert match, fix
    return ast.literal_eval(match.group(1))


def per_axis(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * dims


# -- linear_in_features ------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    batch=st.integers(1, 4),
    features=st.integers(1, 3000),
    in_features=st.integers(1, 3000),
    out_features=st.integers(1, 64),
    unflattened=st.booleans(),
)
def test_linear_in_features(batch: int, features: int, in_features: int, out_features: int, unflattened: bool) -> None:
    assume(features != in_features)
    shape = (batch, 2, 3, features) if unflattened else (batch, features)
    x = torch.zeros(shape)
    layer = nn.Linear(in_features, out_features)
    result = explain(message(lambda: layer(x)))
    assert result.kind == "linear_in_features"
    rows = batch * (6 if unflattened else 1)
    assert (result.numbers["rows"], result.numbers["features"]) == (rows, features)
    assert (result.numbers["in_features"], result.numbers["out_features"]) == (in_features, out_features)
    assert result.fixes[0] == f"nn.Linear({features}, {out_features})"
    fixed = eval(result.fixes[0], {"nn": nn})  # the fix, pasted
    assert fixed(x).shape[-1] == out_features


def test_linear_factorings_are_real() -> None:
    x = torch.zeros(1, 32, 11, 11)
    text = message(lambda: nn.Linear(1568, 32)(x.flatten(1)))
    result = explain(text)
    assert "32×11×11" in result.why
    for c, h, w in re.findall(r"(\d+)×(\d+)×(\d+)", result.why):
        assert int(c) * int(h) * int(w) == 3872


# -- conv_in_channels --------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    dims=st.integers(1, 3),
    groups=st.sampled_from([1, 1, 2, 3]),
    per_group=st.integers(1, 4),
    out_per_group=st.integers(1, 4),
    channels=st.integers(1, 12),
    batched=st.booleans(),
)
def test_conv_in_channels(dims: int, groups: int, per_group: int, out_per_group: int, channels: int, batched: bool) -> None:
    in_channels, out_channels = per_group * groups, out_per_group * groups
    assume(channels != in_channels)
    conv = getattr(nn, f"Conv{dims}d")(in_channels, out_channels, 3, groups=groups)
    shape = ((2,) if batched else ()) + (channels,) + (5,) * dims
    x = torch.zeros(shape)
    result = explain(message(lambda: conv(x)))
    assert result.kind == "conv_in_channels"
    assert result.numbers["expected_channels"] == in_channels
    assert result.numbers["channels"] == channels
    assert result.numbers["groups"] == groups
    assert result.numbers["weight"] == list(conv.weight.shape)
    kwargs = keyword_fix(result.fixes[0])
    assert kwargs["in_channels"] == channels
    fixed = getattr(nn, f"Conv{dims}d")(kwargs["in_channels"], out_channels, 3, groups=kwargs.get("groups", groups))
    assert accepts(lambda: fixed(x))


@settings(**SETTINGS)
@given(channels=st.sampled_from([1, 3, 4]), size=st.integers(5, 40), batch=st.integers(1, 3))
def test_conv_in_channels_channels_last(channels: int, size: int, batch: int) -> None:
    """An (N, H, W, C) image from numpy/PIL: the first fix is the permute to (N, C, H, W)."""
    assume(size != channels)
    conv = nn.Conv2d(channels, 8, 3)
    x = torch.zeros(batch, size, size + 1, channels)
    result = explain(message(lambda: conv(x)))
    assert result.kind == "conv_in_channels"
    assert result.fixes[0] == "x.permute(0, 3, 1, 2)"
    assert conv(eval(result.fixes[0], {"x": x})).shape[1] == 8


@settings(**SETTINGS)
@given(dims=st.integers(1, 3), in_channels=st.integers(1, 6), channels=st.integers(1, 6))
def test_tconv_in_channels(dims: int, in_channels: int, channels: int) -> None:
    assume(channels != in_channels)
    layer = getattr(nn, f"ConvTranspose{dims}d")(in_channels, 4, 2)
    x = torch.zeros((1, channels) + (3,) * dims)
    result = explain(message(lambda: layer(x)))
    assert result.kind == "conv_in_channels"
    assert (result.numbers["expected_channels"], result.numbers["channels"]) == (in_channels, channels)
    fixed = getattr(nn, f"ConvTranspose{dims}d")(keyword_fix(result.fixes[0])["in_channels"], 4, 2)
    assert accepts(lambda: fixed(x))


# -- kernel_larger_than_input ------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    dims=st.integers(1, 3),
    data=st.data(),
)
def test_kernel_larger_than_input(dims: int, data: st.DataObject) -> None:
    kernel = data.draw(st.tuples(*[st.integers(1, 7)] * dims))
    dilation = data.draw(st.tuples(*[st.integers(1, 3)] * dims))
    padding = data.draw(st.tuples(*[st.integers(0, 2)] * dims))
    size = data.draw(st.tuples(*[st.integers(1, 9)] * dims))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    assume(any(s + 2 * p < e for s, p, e in zip(size, padding, span)))
    conv = getattr(nn, f"Conv{dims}d")(2, 3, kernel, padding=padding, dilation=dilation)
    x = torch.zeros((1, 2) + size)
    result = explain(message(lambda: conv(x)))
    assert result.kind == "kernel_larger_than_input"
    assert result.numbers["padded_input"] == [s + 2 * p for s, p in zip(size, padding)]
    assert result.numbers["kernel"] == span
    more = per_axis(increment_fix(result.fixes[0], "padding"), dims)
    bigger = tuple(p + m for p, m in zip(padding, more))
    fixed = getattr(nn, f"Conv{dims}d")(2, 3, kernel, padding=bigger, dilation=dilation)
    assert accepts(lambda: fixed(x)), f"padding={bigger}"
    # one less padding on a failing axis would not do: the fix is the smallest
    for axis, m in enumerate(more):
        if m:
            less = tuple(b - (i == axis) for i, b in enumerate(bigger))
            smaller = getattr(nn, f"Conv{dims}d")(2, 3, kernel, padding=less, dilation=dilation)
            if (size[axis] + 2 * less[axis]) < span[axis]:
                assert not accepts(lambda layer=smaller: layer(x))


# -- output_too_small ----------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    dims=st.sampled_from([2, 3]),
    kind=st.sampled_from(["Max", "Avg"]),
    channels=st.integers(1, 64),
    data=st.data(),
)
def test_output_too_small(dims: int, kind: str, channels: int, data: st.DataObject) -> None:
    kernel = data.draw(st.integers(2, 7))
    stride = data.draw(st.integers(1, 4))
    padding = data.draw(st.integers(0, kernel // 2))
    size = data.draw(st.tuples(*[st.integers(1, kernel + 1)] * dims))  # near the kernel: mostly refused
    pool = getattr(nn, f"{kind}Pool{dims}d")(kernel, stride=stride, padding=padding)
    x = torch.zeros((1, channels) + size)
    try:
        pool(x)
        assume(False)
    except RuntimeError as error:
        text = str(error)
    assume("Output size is too small" in text)
    result = explain(text)
    assert result.kind == "output_too_small"
    assert result.numbers["input"] == [channels, *size]
    assert result.numbers["channels"] == channels
    fixed = eval(result.fixes[0], {"nn": nn})
    assert accepts(lambda: fixed(x))
    # the window exceeds the padded input by at least the amount said: a smaller growth still fails
    for axis, grow in result.numbers["window_exceeds_padded_input_by_at_least"].items():
        index = "DHW"[-dims:].index(axis)
        if grow > 1:
            grown = list(size)
            grown[index] += grow - 1
            assert not accepts(lambda grown=grown: pool(torch.zeros((1, channels, *grown)))), (axis, grow)


def test_output_too_small_names_the_pool_from_the_traceback() -> None:
    text = "  File \"net.py\", line 9, in forward\n    x = F.max_pool2d(x, 2)\n" + message(
        lambda: F.max_pool2d(torch.zeros(1, 3, 1, 1), 2)
    )
    assert explain(text).fixes[0] == "nn.AdaptiveMaxPool2d(1)"


@settings(**SETTINGS)
@given(kernel=st.tuples(*[st.integers(1, 5)] * 3), size=st.tuples(*[st.integers(1, 6)] * 3), pad=st.integers(0, 2))
def test_avg_pool3d_kernel_larger_than_input(kernel: tuple[int, ...], size: tuple[int, ...], pad: int) -> None:
    """avg_pool3d's own wording, which compares the kernel with the input before padding."""
    assume(any(k > i for k, i in zip(kernel, size)) and pad <= min(kernel) // 2)
    x = torch.zeros((1, 2, *size))
    text = message(lambda: nn.AvgPool3d(kernel, padding=pad)(x))
    assume("smaller than kernel size" in text)
    result = explain(text)
    assert result.kind == "kernel_larger_than_input"
    assert (result.numbers["input"], result.numbers["kernel"]) == (list(size), list(kernel))
    new = per_axis(keyword_fix(result.fixes[0])["kernel_size"], 3)
    assert accepts(lambda: nn.AvgPool3d(new, padding=min(pad, min(new) // 2))(x))
    assert accepts(lambda: eval(result.fixes[1], {"nn": nn})(x))


@settings(**SETTINGS)
@given(kind=st.sampled_from(["Max", "Avg"]), kernel=st.integers(2, 8), size=st.integers(1, 8), stride=st.integers(1, 3))
def test_pool1d_output_too_small(kind: str, kernel: int, size: int, stride: int) -> None:
    x = torch.zeros(1, 3, size)
    pool = getattr(nn, f"{kind}Pool1d")(kernel, stride=stride)
    assume(not accepts(lambda: pool(x)))
    result = explain(message(lambda: pool(x)))
    assert result.kind == "output_too_small"
    fixed = eval(result.fixes[0], {"nn": nn})
    assert accepts(lambda: fixed(x))
    if kind == "Max":
        assert result.fixes[0] == "nn.AdaptiveMaxPool1d(1)"
    else:  # torch words it as a 2-D pool with H = 1, and the answer says so
        assert result.numbers["input"] == [3, 1, size]
        assert "avg_pool1d" in result.notes[0]


# -- cat_size_mismatch ---------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    batch=st.integers(1, 3),
    channels=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    first=st.tuples(st.integers(2, 12), st.integers(2, 12)),
    second=st.tuples(st.integers(2, 12), st.integers(2, 12)),
    extra=st.integers(0, 2),
)
def test_cat_size_mismatch(batch: int, channels: tuple[int, int], first: tuple[int, int], second: tuple[int, int], extra: int) -> None:
    assume(first != second)
    tensors = [torch.zeros(batch, channels[0], *first), torch.zeros(batch, channels[1], *second)]
    tensors = [tensors[0]] * extra + tensors  # the offending tensor is not always number 1
    result = explain(message(lambda: torch.cat(tensors, 1)))
    assert result.kind == "cat_size_mismatch"
    index = result.numbers["tensor"]
    assert index == extra + 1
    assert result.numbers["cat_dim"] == 1
    axis = 2 if first[0] != second[0] else 3
    assert (result.numbers["expected"], result.numbers["got"]) == (tensors[0].shape[axis], tensors[index].shape[axis])
    space = {"F": F, "t0": tensors[0], f"t{index}": tensors[index]}
    exec(result.fixes[0], space)  # noqa: S102 - the fix, pasted as a user would
    tensors[index] = space[f"t{index}"]
    assert torch.cat(tensors, 1).shape[2:] == tensors[0].shape[2:]


@pytest.mark.parametrize(
    "text, numbers, fixed",
    [
        # torch ≤ 1.4 (TH), as reported in HiLab-git/WSL4MIS#7
        (
            (
                "RuntimeError: invalid argument 0: Sizes of tensors must match except in dimension 1. Got 26 and 27 in"
                " dimension 3 at /opt/conda/conda-bld/pytorch_1579022034529/work/aten/src/THC/generic/THCTensorMath.cu:71"
            ),
            {"cat_dim": 1, "expected": 26, "got": 27, "differing_dim": 3, "tensor": None},
            ((1, 4, 5, 26), (1, 2, 5, 27)),
        ),
        # torch 1.5–1.12
        (
            "Sizes of tensors must match except in dimension 1. Got 8 and 7 in dimension 2 (The offending index is 1)",
            {"cat_dim": 1, "expected": 8, "got": 7, "differing_dim": 2, "tensor": 1},
            ((1, 4, 8, 5), (1, 2, 7, 5)),
        ),
    ],
)
def test_cat_older_wordings(text: str, numbers: dict[str, Any], fixed: tuple[tuple[int, ...], ...]) -> None:
    result = explain(text)
    assert result.kind == "cat_size_mismatch"
    assert {k: result.numbers[k] for k in numbers} == numbers
    space = {"t0": torch.zeros(fixed[0]), "t1": torch.zeros(fixed[1])}
    exec(result.fixes[0], space)  # noqa: S102 - the fix, pasted as a user would
    assert torch.cat([space["t0"], space["t1"]], 1).shape[1] == fixed[0][1] + fixed[1][1]


# -- broadcast_mismatch --------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(2, 8), st.integers(2, 9), st.integers(2, 9)),
    axis=st.integers(1, 3),
    other=st.integers(2, 9),
    op=st.sampled_from(["add", "mul"]),
)
def test_broadcast_mismatch(shape: tuple[int, ...], axis: int, other: int, op: str) -> None:
    assume(other != shape[axis])
    b_shape = list(shape)
    b_shape[axis] = other
    a, b = torch.zeros(shape), torch.zeros(b_shape)
    result = explain(message(lambda: getattr(torch, op)(a, b)))
    assert result.kind == "broadcast_mismatch"
    assert result.numbers == {"a": shape[axis], "b": other, "dim": axis}
    space = {"a": a, "b": b, "nn": nn}
    exec(result.fixes[0], space)  # noqa: S102 - the fix, pasted as a user would
    assert getattr(torch, op)(space["a"], space["b"]).shape[axis] == min(shape[axis], other) or axis == 1


# -- view_size -----------------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    shape=st.tuples(st.integers(1, 8), st.integers(1, 64), st.integers(1, 9), st.integers(1, 9)),
    features=st.integers(2, 3000),
    infer_batch=st.booleans(),
)
def test_view_size(shape: tuple[int, ...], features: int, infer_batch: bool) -> None:
    x = torch.zeros(shape)
    size = x.numel()
    target = [-1, features] if infer_batch else [shape[0], features]
    assume(size % features if infer_batch else shape[0] * features != size)
    result = explain(message(lambda: x.view(*target)))
    assert result.kind == "view_size"
    assert (result.numbers["shape"], result.numbers["size"]) == (target, size)
    flat = eval(result.fixes[0], {"x": x})
    assert flat.shape == (shape[0], size // shape[0])
    for fix in result.fixes:
        assert eval(fix, {"x": x}).numel() == size


def test_view_older_wording() -> None:
    # torch ≤ 0.4 (TH), as reported in okankop/MFF-pytorch#5
    result = explain("RuntimeError: invalid argument 2: size '[-1 x 8 x 256]' is invalid for input with 512 elements at /pytorch/torch/lib/TH/THStorage.c:37")
    assert result.kind == "view_size"
    assert (result.numbers["shape"], result.numbers["size"]) == ([-1, 8, 256], 512)


# -- batchnorm_features --------------------------------------------------------------------------


@settings(**SETTINGS)
@given(dims=st.integers(1, 3), features=st.integers(1, 64), channels=st.integers(1, 64), train=st.booleans())
def test_batchnorm_features(dims: int, features: int, channels: int, train: bool) -> None:
    assume(features != channels)
    norm = getattr(nn, f"BatchNorm{dims}d")(features).train(train)
    x = torch.zeros((2, channels) + (3,) * dims) if dims > 1 else torch.zeros(2, channels)
    result = explain(message(lambda: norm(x)))
    assert result.kind == "batchnorm_features"
    assert (result.numbers["channels"], result.numbers["num_features"]) == (channels, features)
    fixed = getattr(nn, f"BatchNorm{dims}d")(**keyword_fix(result.fixes[0])).train(train)
    assert accepts(lambda: fixed(x))


# -- conv_input_dims -----------------------------------------------------------------------------


@settings(**SETTINGS)
@given(
    dims=st.integers(1, 3),
    transposed=st.booleans(),
    case=st.sampled_from(["no channel", "extra one", "extra batch", "flat square"]),
    size=st.integers(3, 12),
    channels=st.integers(1, 4),
)
def test_conv_input_dims(dims: int, transposed: bool, case: str, size: int, channels: int) -> None:
    kind = "ConvTranspose" if transposed else "Conv"
    spatial = (size,) * dims
    if case == "no channel":
        channels, shape = 1, spatial
    elif case == "extra one":
        shape = (2, 1, channels, *spatial)
    elif case == "extra batch":
        shape = (2, 3, channels, *spatial)
    else:
        assume(dims == 2)
        channels, shape = 1, (size * size,)
    layer = getattr(nn, f"{kind}{dims}d")(channels, 2, 1)
    x = torch.zeros(shape)
    result = explain(message(lambda: layer(x)))
    assert result.kind == "conv_input_dims"
    assert result.numbers["input"] == list(shape)
    assert result.numbers["expected_ranks"] == [dims + 1, dims + 2]
    assert result.numbers["op"] == ("conv_transpose" if transposed else "conv") + f"{dims}d"
    assert accepts(lambda: layer(eval(result.fixes[0], {"x": x})))


@pytest.mark.parametrize(
    "text, shape, weight",
    [
        # torch 1.x before unbatched inputs (valerystrizh/pytorch-histogram-loss#13)
        (
            (
                "RuntimeError: Expected 4-dimensional input for 4-dimensional weight [64, 3, 7, 7], but got 3-dimensional"
                " input of size [3, 224, 224] instead"
            ),
            (3, 224, 224),
            (64, 3, 7, 7),
        ),
        # the older form with the sizes space-separated and a stray number (miraclewkf/ResNeXt-PyTorch#5)
        (
            (
                "RuntimeError: Expected 4-dimensional input for 4-dimensional weight 64 3 7 7 94387354416688, but got"
                " 5-dimensional input of size [6, 3, 3, 224, 224] instead"
            ),
            (6, 3, 3, 224, 224),
            (64, 3, 7, 7),
        ),
        # a batch of grayscale images with the channel axis missing
        (
            (
                "Expected 4-dimensional input for 4-dimensional weight [16, 1, 7, 7], but got 3-dimensional input of"
                " size [100, 28, 28] instead"
            ),
            (100, 28, 28),
            (16, 1, 7, 7),
        ),
    ],
)
def test_conv_input_dims_older_wording(text: str, shape: tuple[int, ...], weight: tuple[int, ...]) -> None:
    result = explain(text)
    assert result.kind == "conv_input_dims"
    assert result.numbers["weight"] == list(weight)
    fixed = eval(result.fixes[0], {"x": torch.zeros(shape)})
    assert fixed.dim() == 4  # what that torch took
    conv = nn.Conv2d(weight[1], weight[0], weight[2:])
    assert accepts(lambda: conv(fixed))


# -- output_padding ------------------------------------------------------------------------------


@settings(**SETTINGS)
@given(dims=st.integers(1, 3), data=st.data())
def test_output_padding(dims: int, data: st.DataObject) -> None:
    stride = data.draw(st.tuples(*[st.integers(1, 4)] * dims))
    dilation = data.draw(st.tuples(*[st.integers(1, 3)] * dims))
    output_padding = data.draw(st.tuples(*[st.integers(0, 5)] * dims))
    assume(any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)))
    make = getattr(nn, f"ConvTranspose{dims}d")
    x = torch.zeros((1, 2) + (4,) * dims)
    layer = make(2, 3, 3, stride=stride, dilation=dilation, output_padding=output_padding)
    result = explain(message(lambda: layer(x)))
    assert result.kind == "output_padding"
    if dims == 1:  # torch runs it as 2-D with H = 1
        assert result.numbers["output_padding"] == [0, *output_padding]
        fix = re.search(r"output_padding=(\d+)", result.notes[0])
        assert fix is not None
        new = (int(fix.group(1)),)
    else:
        assert (result.numbers["output_padding"], result.numbers["stride"]) == (list(output_padding), list(stride))
        new = per_axis(keyword_fix(result.fixes[0])["output_padding"], dims)
    fixed = make(2, 3, 3, stride=stride, dilation=dilation, output_padding=new)
    assert accepts(lambda: fixed(x))
    assert all(n == min(o, max(s, d) - 1) for n, o, s, d in zip(new, output_padding, stride, dilation))
    if dims > 1:
        new_stride = per_axis(keyword_fix(result.fixes[1])["stride"], dims)
        assert accepts(lambda: make(2, 3, 3, stride=new_stride, dilation=dilation, output_padding=output_padding)(x))


# -- reading text --------------------------------------------------------------------------------


def test_every_kind_is_tested() -> None:
    assert set(KINDS) == {
        "linear_in_features", "conv_in_channels", "kernel_larger_than_input", "output_too_small",
        "cat_size_mismatch", "broadcast_mismatch", "view_size", "batchnorm_features", "conv_input_dims",
        "output_padding",
    }


def test_the_last_error_of_a_log_is_explained() -> None:
    first = message(lambda: nn.Linear(10, 2)(torch.zeros(1, 12)))
    last = message(lambda: nn.BatchNorm2d(4)(torch.zeros(2, 6, 3, 3)))
    log = f"epoch 1\nRuntimeError: {first}\n\x1b[31mretrying\x1b[0m\nTraceback ...\nRuntimeError: {last}\n"
    assert explain(log).kind == "batchnorm_features"


def test_a_message_wrapped_across_lines() -> None:
    assert explain("mat1 and mat2 shapes cannot be\n   multiplied (1x3872 and\n1568x32)").numbers["features"] == 3872


@pytest.mark.parametrize(
    "text",
    [
        "",
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "mat1 and mat2 shapes cannot be multiplied (1x and 1568x32)",
        "mat1 and mat2 shapes cannot be multiplied (1x" + "9" * 40 + " and 1568x32)",
        "shape '[1, 1000]' is invalid for input of size",
        "shape '[1, 1000]' is invalid for input of size 12345678901234567890123",
        "running_mean should contain 32 elements not 160000000000000000000000",
    ],
)
def test_unrecognised_text_is_not_guessed(text: str) -> None:
    with pytest.raises(UnrecognisedMessage):
        explain(text)


def test_old_linear_wording() -> None:
    # torch ≤ 1.6 (bamos/densenet.pytorch#19)
    result = explain("RuntimeError: size mismatch, m1: [2394 x 7], m2: [16758 x 2] at /opt/conda/.../THTensorMath.cpp:2070")
    assert result.kind == "linear_in_features"
    assert (result.numbers["features"], result.numbers["in_features"]) == (7, 16758)
    assert result.fixes[0] == "nn.Linear(7, 2)"


ADVERSARIAL = [
    "mat1 and mat2 shapes cannot be multiplied (" + "1" * 30 + "x",
    "Given groups=1, weight of size [" + "1, " * 40 + "expected input[",
    "Given input size: (" + "1x" * 40 + ". Calculated output size: (",
    "output padding must be smaller than either stride or dilation, but got" + " output_padding_height: 1" * 8,
    "Sizes of tensors must match except in dimension 1. Got 8 and ",
    "shape '[" + "-1, " * 30 + "]' is invalid for input of size ",
    "\x1b[" + "1;" * 40,
]


def test_hostile_text_finishes() -> None:
    """A few MB of near-matches (each pattern's prefix, repeated): the scan stays linear. Run in a
    subprocess with a generous limit, so that catastrophic backtracking fails the test instead of
    hanging it (the timing itself is benchmarks/why.py's)."""
    code = textwrap.dedent(
        f"""
        from convcalc.why import explain, UnrecognisedMessage
        pieces = {ADVERSARIAL!r}
        for piece in pieces:
            text = piece * (3_000_000 // len(piece))
            try:
                explain(text)
            except UnrecognisedMessage:
                pass
            else:
                raise SystemExit("recognised a near-match: " + piece[:40])
        text = "x" * 3_000_000 + "running_mean should contain 8 elements not 4"
        print(explain(text).kind)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "batchnorm_features"


# -- the command ---------------------------------------------------------------------------------


def test_cli_plain(cli) -> None:
    code, out, err = cli("why", "mat1 and mat2 shapes cannot be multiplied (1x3872 and 1568x32)")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert 2 <= len(lines) <= 5
    assert lines[-1].startswith("fix: nn.Linear(3872, 32)")


def test_cli_json(cli) -> None:
    code, out, _ = cli("why", "--json", "running_mean should contain 32 elements not 16")
    data = json.loads(out)
    assert code == 0
    assert {"kind", "numbers", "explanation", "fixes"} <= set(data)
    assert data["kind"] == "batchnorm_features"
    assert data["fixes"][0] == "num_features=32"


def test_cli_explain_shows_the_formula(cli) -> None:
    text = message(lambda: nn.Conv2d(1, 1, 5)(torch.zeros(1, 1, 3, 3)))
    code, out, _ = cli("why", "--explain", text)
    assert code == 0
    assert "floor((3 − 5) / s) + 1" in out


def test_cli_unrecognised(cli) -> None:
    code, out, err = cli("why", "something else went wrong")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert "conv/pool/linear/norm/cat/view" in err


def test_cli_unrecognised_json(cli) -> None:
    code, out, _ = cli("why", "--json", "no shapes here")
    assert code == 1
    assert "error" in json.loads(out)


def run_cli(*args: str, stdin: str | None = None, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convcalc", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_cli_stdin_from_a_real_traceback(tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import torch, torch.nn as nn
            print("epoch 1: loss 2.30")
            net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.Flatten(), nn.Linear(1568, 10))
            net(torch.zeros(4, 1, 13, 13))
            """
        )
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0 and "Traceback" in run.stderr
    done = run_cli("why", stdin=run.stdout + run.stderr)
    assert done.returncode == 0, done.stderr
    assert "nn.Linear(3872, 10)" in done.stdout  # 32×11×11


def test_cli_without_message_on_a_terminal_is_a_usage_error(cli, monkeypatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    code, _, err = cli("why")
    assert code == 2 and "pipe" in err


def test_cli_model_spec_names_the_layer(tmp_path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 32, k: 3}\n  - Flatten\n  - Linear: {in_features: 1568, out: 10}\n")
    text = message(lambda: nn.Linear(1568, 10)(torch.zeros(1, 32 * 26 * 26)))
    done = run_cli("why", text, "--model", str(spec))
    assert done.returncode == 0, done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("in the model: Linear at ") and "net.yaml:5" in last and "21632" in last


def test_cli_model_python_names_the_module_and_line(tmp_path) -> None:
    (tmp_path / "net.py").write_text(
        textwrap.dedent(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(1, 8, 3)
                    self.fc = nn.Linear(100, 10)

                def forward(self, x):
                    x = self.conv(x).flatten(1)
                    return self.fc(x)
            """
        )
    )
    done = run_cli("why", "--model", "net.py:Net", "--input", "1x12x12", "--json", cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["kind"] == "linear_in_features"
    assert data["fixes"][0] == "nn.Linear(800, 10)"  # 8×10×10
    assert "'fc'" in data["model"] and "net.py:12" in data["model"]


def modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return set(done.stdout.split())


def test_the_core_is_pure_python() -> None:
    loaded = modules_after(
        "from convcalc.why import explain\n"
        "for text in ['mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)',"
        " 'output padding must be smaller than either stride or dilation, but got output_padding_height: 2"
        " output_padding_width: 2 stride_height: 2 stride_width: 2 dilation_height: 1 dilation_width: 1']:\n"
        "    explain(text)"
    )
    assert not {"torch", "rich", "click"} & loaded


def test_the_conv_command_does_not_load_why() -> None:
    loaded = modules_after("from convcalc.cli import run\nrun(['conv', '--in', '227', '--k', '11', '--s', '4'])")
    assert not {"convcalc.why", "convcalc.commands.why"} & loaded
