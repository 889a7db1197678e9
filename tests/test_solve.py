"""convcalc solve: completeness (the true parameters of random torch-valid layers are found),
soundness (torch gives every listed answer), TensorFlow's 'same', and the command line."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc import solve as solver
from strategies import SETTINGS

# -- torch as the oracle -----------------------------------------------------------------------


def _torch_out(modules: list[Any], sizes: tuple[int, ...]) -> tuple[int, ...] | None:
    """Spatial output of torch's modules in sequence on a zero input, or None when torch refuses."""
    import torch

    x = torch.zeros((1, 1, *sizes))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            for module in modules:
                x = module(x)
        except Exception:
            return None
    return tuple(x.shape[2:])


def _torch_modules(solution: solver.Solution) -> list[Any]:
    """torch's functions for a solution, from its own description (pad, then the layer); the
    functional forms (F.conv2d, F.max_pool2d …) take the modules' arguments and skip their weight init."""
    import functools

    import torch
    import torch.nn.functional as F

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in solution.torch_kwargs().items()}
    steps = []
    pad = solution.pad_layer()
    if pad is not None:
        steps.append(functools.partial(F.pad, pad=pad[1]))
    dims = solution.dims
    kernel = kwargs.pop("kernel_size")
    kernel = kernel if isinstance(kernel, tuple) else (kernel,) * dims
    if solution.family == "conv":
        weight = torch.zeros((1, 1, *kernel))
        steps.append(lambda x: getattr(F, f"conv{dims}d")(x, weight, **kwargs))
    elif solution.family == "tconv":
        weight = torch.zeros((1, 1, *kernel))
        steps.append(lambda x: getattr(F, f"conv_transpose{dims}d")(x, weight, **kwargs))
    else:
        function = getattr(F, f"{solution.family[:3]}_pool{dims}d")
        steps.append(lambda x: function(x, kernel, **kwargs))
    return steps


def _sound(answer: solver.Answer) -> None:
    for solution in answer.solutions:
        got = _torch_out(_torch_modules(solution), answer.sizes)
        assert got == answer.outs, f"torch gives {got}, not {answer.outs}, for {solution.torch_lines()} on {answer.sizes}"


def _fixed(dims: int) -> list[solver.Fixed]:
    return [solver.Fixed()] * dims


@st.composite
def conv_settings(draw: Any) -> dict[str, Any]:
    k = draw(st.integers(1, 11))
    return dict(size=draw(st.integers(1, 64)), k=k, s=draw(st.integers(1, 8)), d=draw(st.integers(1, 4)), p=draw(st.integers(0, k)))


@settings(max_examples=40, **SETTINGS)
@given(conv_settings(), st.sampled_from([1, 2]))
def test_conv_solutions_are_complete_and_sound(case: dict[str, Any], dims: int) -> None:
    import torch

    sizes = (case["size"],) * dims
    out = _torch_out([getattr(torch.nn, f"Conv{dims}d")(1, 1, case["k"], case["s"], case["p"], case["d"])], sizes)
    assume(out is not None)
    answer = solver.solve("conv", sizes, out, _fixed(dims))
    truth = solver.AxisSetting(case["k"], case["s"], case["d"], case["p"], case["p"])
    assert (truth,) * dims in [s.axes for s in answer.solutions], f"{truth} missing for {sizes} → {out}"
    _sound(answer)


@st.composite
def tconv_settings(draw: Any) -> dict[str, Any]:
    k, s, d = draw(st.integers(1, 11)), draw(st.integers(1, 8)), draw(st.integers(1, 4))
    return dict(size=draw(st.integers(1, 32)), k=k, s=s, d=d, p=draw(st.integers(0, k)), op=draw(st.integers(0, max(s, d) - 1)))


@settings(max_examples=60, **SETTINGS)
@given(tconv_settings())
def test_tconv_solutions_are_complete_and_sound(case: dict[str, Any]) -> None:
    import torch

    sizes = (case["size"],)
    module = torch.nn.ConvTranspose1d(1, 1, case["k"], case["s"], case["p"], case["op"], dilation=case["d"])
    out = _torch_out([module], sizes)
    assume(out is not None and out[0] >= 1)
    answer = solver.solve("tconv", sizes, out, _fixed(1))
    truth = solver.AxisSetting(case["k"], case["s"], case["d"], case["p"], case["p"], output_padding=case["op"])
    assert (truth,) in [s.axes for s in answer.solutions], f"{truth} missing for {sizes} → {out}"
    _sound(answer)


@st.composite
def pool_settings(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["max", "avg"]))
    k = draw(st.integers(1, 11))
    return dict(
        kind=kind, size=draw(st.integers(1, 64)), k=k, s=draw(st.integers(1, 8)), p=draw(st.integers(0, k // 2)),
        d=draw(st.integers(1, 4)) if kind == "max" else 1, ceil=draw(st.booleans()),
    )


@settings(max_examples=80, **SETTINGS)
@given(pool_settings(), st.sampled_from([1, 2]))
def test_pool_solutions_are_complete_and_sound(case: dict[str, Any], dims: int) -> None:
    import torch

    sizes = (case["size"],) * dims
    kwargs = dict(kernel_size=case["k"], stride=case["s"], padding=case["p"], ceil_mode=case["ceil"])
    if case["kind"] == "max":
        kwargs["dilation"] = case["d"]
    out = _torch_out([getattr(torch.nn, f"{case['kind'].capitalize()}Pool{dims}d")(**kwargs)], sizes)
    assume(out is not None and min(out) >= 1)
    answer = solver.solve(f"{case['kind']}pool", sizes, out, _fixed(dims))
    found = [s.axes[0] for s in answer.solutions]
    truth = solver.AxisSetting(case["k"], case["s"], case["d"], case["p"], case["p"], ceil_mode=case["ceil"])
    floor = solver.AxisSetting(case["k"], case["s"], case["d"], case["p"], case["p"], ceil_mode=False)
    # ceil_mode=True that changes nothing is listed once, as the simpler ceil_mode=False
    assert truth in found or (case["ceil"] and floor in found), f"{truth} missing for {sizes} → {out}"
    _sound(answer)


@settings(max_examples=20, **SETTINGS)
@given(st.tuples(st.integers(1, 40), st.integers(1, 40)), st.tuples(st.integers(1, 7), st.integers(1, 7)), st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_each_axis_is_solved(sizes: tuple[int, int], kernels: tuple[int, int], strides: tuple[int, int]) -> None:
    import torch

    out = _torch_out([torch.nn.Conv2d(1, 1, kernels, strides)], sizes)
    assume(out is not None)
    answer = solver.solve("conv", sizes, out, _fixed(2))
    for axis, (k, s) in enumerate(zip(kernels, strides)):
        assert solver.AxisSetting(k, s, 1, 0, 0) in answer.per_axis[axis]
    assert answer.solutions
    _sound(answer)


def test_asymmetric_only_answers_use_same_or_a_pad_layer() -> None:
    pytest.importorskip("torch")
    same = solver.solve("conv", (28,), (28,), [solver.Fixed(kernel=2, dilation=1)])
    assert [s.torch_lines() for s in same.solutions] == [["nn.Conv1d(C_in, C_out, kernel_size=2, padding='same')"]]
    strided = solver.solve("conv", (28, 28), (14, 14), [solver.Fixed(kernel=4, stride=2, dilation=1)] * 2)
    assert strided.solutions[0].torch_lines() == ["nn.Conv2d(C_in, C_out, kernel_size=4, stride=2, padding=1)"]
    odd = solver.solve("conv", (10,), (12,), [solver.Fixed(kernel=2, stride=1, dilation=1)])
    assert odd.solutions[0].torch_lines() == ["nn.ZeroPad1d((1, 2))", "nn.Conv1d(C_in, C_out, kernel_size=2)"]
    _sound(same)
    _sound(strided)
    _sound(odd)


# -- TensorFlow's 'same' -------------------------------------------------------------------------


def _tf_pool_reference(x: list[float], k: int, s: int, kind: str) -> list[float]:
    """TF/Keras pooling with padding='same' on one axis: windows start at o×s − left, padding ignored."""
    n = len(x)
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    left = total // 2
    values = []
    for o in range(out):
        start = o * s - left
        cells = x[max(start, 0) : min(start + k, n)]
        values.append(max(cells) if kind == "max" else sum(cells) / len(cells))
    return values


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("n, k, s", [(5, 2, 2), (224, 3, 2), (7, 2, 1), (10, 3, 3), (6, 3, 2), (9, 4, 2), (11, 5, 3)])
def test_tf_same_pooling_gives_tf_values(kind: str, n: int, k: int, s: int) -> None:
    torch = pytest.importorskip("torch")
    answer = solver.tf_same(f"{kind}pool", (n,), (k,), (s,), (1,))
    x = [float((i * 7) % 11) - 5 for i in range(n)]
    modules = []
    for line in answer.lines:
        name, _, rest = line.partition("(")
        assert name.startswith("nn.")
        modules.append(eval(line, {"nn": torch.nn, "float": float}))  # our own printed torch code
    y = torch.tensor([[x]], dtype=torch.float64)
    for module in modules:
        y = module(y)
    expected = _tf_pool_reference(x, k, s, kind)
    assert len(y[0, 0]) == len(expected) == answer.outs[0]
    if any("border values differ" in note for note in answer.notes):
        # no torch layer averages over the input alone with TF's asymmetric windows: we say so
        assert answer.lines[0].startswith("nn.ZeroPad") and kind == "avg"
        assert y[0, 0].tolist()[:-1] == pytest.approx(expected[:-1])  # only the padded right border differs
        return
    assert y[0, 0].tolist() == pytest.approx(expected), answer.lines


@pytest.mark.parametrize("n, k, s, d", [(224, 3, 2, 1), (28, 2, 1, 1), (28, 4, 1, 2), (10, 5, 3, 1), (7, 3, 1, 1), (32, 1, 2, 1)])
def test_tf_same_conv_is_tf_padding(n: int, k: int, s: int, d: int) -> None:
    torch = pytest.importorskip("torch")
    answer = solver.tf_same("conv", (n,), (k,), (s,), (d,))
    assert answer.outs == (math.ceil(n / s),)
    torch.manual_seed(0)
    x = torch.randn(1, 1, n, dtype=torch.float64)
    weight = torch.randn(1, 1, k, dtype=torch.float64)
    left, right = answer.pads[0]
    expected = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (left, right)), weight, stride=s, dilation=d)
    modules = [eval(line.replace("C_in, C_out", "1, 1, bias=False, dtype=torch.float64"), {"nn": torch.nn, "torch": torch}) for line in answer.lines]
    modules[-1].weight.data.copy_(weight)
    y = x
    for module in modules:
        y = module(y)
    assert torch.allclose(y, expected), answer.lines


# -- the command line ------------------------------------------------------------------------------


def test_which_padding_keeps_28(cli) -> None:
    code, out, _ = cli("solve", "conv", "--in", "28", "--out", "28", "--k", "3")
    assert code == 0
    assert out.splitlines()[1] == "1. nn.Conv2d(C_in, C_out, kernel_size=3, padding=1)"
    assert "searched k 1–11, s 1–8, d 1–4, p 0–k" in out


def test_which_stride_halves_224(cli) -> None:
    code, out, _ = cli("solve", "conv", "--in", "224", "--out", "112", "--k", "3", "--p", "1")
    assert code == 0 and "1. nn.Conv2d(C_in, C_out, kernel_size=3, stride=2, padding=1)" in out


def test_json_schema(cli) -> None:
    code, out, _ = cli("solve", "tconv", "--in", "16", "--out", "32", "--k", "4", "--json")
    data = json.loads(out)
    assert code == 0
    first = data["solutions"][0]
    assert {k: first[k] for k in ("kernel_size", "stride", "padding", "dilation", "output_padding")} == {
        "kernel_size": 4, "stride": 2, "padding": 1, "dilation": 1, "output_padding": 0,
    }
    assert data["count"] == len(data["solutions"]) and data["layer"] == "ConvTranspose2d"


def test_no_solution_exits_1_with_the_nearest(cli) -> None:
    code, out, err = cli("solve", "conv", "--in", "28", "--out", "57")
    assert code == 1 and out == ""
    assert "no Conv2d setting turns 28 into 57" in err and "nearest reachable 40" in err and err.count("\n") == 1
    code, out, _ = cli("solve", "conv", "--in", "28", "--out", "57", "--json")
    data = json.loads(out)
    assert code == 1 and data["solutions"] == [] and data["nearest"] == {"H": [40], "W": [40]}


def test_ranges_can_be_widened(cli) -> None:
    assert cli("solve", "conv", "--in", "28", "--out", "16", "--s", "1", "--p", "0", "--d", "1")[0] == 1
    code, out, _ = cli("solve", "conv", "--in", "28", "--out", "16", "--s", "1", "--p", "0", "--d", "1", "--max-k", "13")
    assert code == 0 and "kernel_size=13" in out and "k 1–13" in out


def test_tf_same_command(cli) -> None:
    code, out, _ = cli("solve", "conv", "--in", "224", "--k", "3", "--s", "2", "--tf-same")
    assert code == 0
    assert "out = ceil(224 / 2) = 112" in out and "0 before, 1 after" in out
    assert "nn.ZeroPad2d((0, 1, 0, 1))" in out and "nn.Conv2d(C_in, C_out, kernel_size=3, stride=2)" in out
    code, out, _ = cli("solve", "conv", "--in", "32", "--k", "5", "--tf-same")
    assert code == 0 and "nn.Conv2d(C_in, C_out, kernel_size=5, padding=2)" in out


def test_help_states_the_ranges(cli) -> None:
    code, out, _ = cli("solve", "--help")
    assert code == 0 and "k 1–11, s 1–8, d 1–4, p 0–k" in out and "--max-k" in out
