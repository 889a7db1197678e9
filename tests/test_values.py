"""--values: the actual output numbers of conv, tconv and pool — the lecture's examples, torch
(float64) as the oracle on random layers, and the refusal of malformed or oversized matrices."""

from __future__ import annotations

import json
import math
import random
import warnings
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, values
from strategies import SETTINGS

LECTURE_X = [[1, 2, 3, 0, 1], [0, 1, 5, 1, 0], [1, 0, 2, 2, 1], [1, 1, 2, 0, 0], [1, 0, 1, 1, 1]]
LECTURE_W = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
TCONV_W = [[1, 2, 3], [2, 2, 1], [3, 2, 1]]
ONES = [[1, 1, 1], [1, 1, 1], [1, 1, 1]]


def run_json(cli, *args: Any) -> dict[str, Any]:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


# -- the lecture's own numbers ---------------------------------------------------------------------


def test_lecture_conv_8_9_8(cli) -> None:
    data = run_json(cli, "conv", "--values", json.dumps(LECTURE_X), "--weight", json.dumps(LECTURE_W))
    assert data["values"] == [[8, 9, 8], [8, 5, 9], [6, 5, 5]]
    assert (data["layer"], data["output"]) == ("Conv2d", [3, 3])


def test_lecture_conv_explain_writes_the_first_sum(cli) -> None:
    code, out, _ = cli("conv", "--values", json.dumps(LECTURE_X), "--weight", json.dumps(LECTURE_W), "--explain")
    assert code == 0
    assert "out[0][0] = 1×1 + 2×0 + 3×1 + 0×0 + 1×1 + 5×0 + 1×1 + 0×0 + 2×1 = 8" in out
    assert "[1][2][3] 0  1" in out  # the window drawn on the input
    assert out.rstrip().endswith("8  9  8\n8  5  9\n6  5  5")


def test_lecture_tconv_17(cli) -> None:
    data = run_json(cli, "tconv", "--values", json.dumps(ONES), "--weight", json.dumps(TCONV_W), "--p", "2")
    assert data["values"] == [[17]]


def test_lecture_tconv_2x2_scatter(cli) -> None:
    data = run_json(cli, "tconv", "--values", "[[1, 2], [3, 4]]", "--weight", json.dumps(TCONV_W))
    assert data["values"] == [[1, 4, 7, 6], [5, 16, 22, 14], [9, 22, 16, 6], [9, 18, 11, 4]]


def test_lecture_tconv_output_padding(cli) -> None:
    data = run_json(cli, "tconv", "--values", json.dumps(ONES), "--weight", json.dumps(TCONV_W), "--s", "3", "--op", "1")
    rows = data["values"]
    assert len(rows) == 10 and all(len(r) == 10 for r in rows)
    assert rows[0] == [1, 2, 3, 1, 2, 3, 1, 2, 3, 0] and rows[9] == [0] * 10


def test_tconv_explain_shows_full_size_crop_and_output_padding(cli) -> None:
    code, out, _ = cli("tconv", "--values", json.dumps(ONES), "--weight", json.dumps(TCONV_W), "--p", "2", "--explain")
    assert code == 0
    assert "full size (in − 1)×s + d×(k − 1) + 1 = 5×5" in out
    assert "[17]" in out and "padding crops 2 from each side of H" in out
    code, out, _ = cli("tconv", "--values", "[[1, 1], [1, 1]]", "--weight", json.dumps(TCONV_W), "--s", "3", "--op", "1", "--explain")
    assert "[+0]" in out and "output_padding adds 1 at the end of H" in out


def test_lecture_pools(cli) -> None:
    x = json.dumps(LECTURE_X)
    assert run_json(cli, "pool", "--values", x, "--k", "2")["values"] == [[2, 5], [1, 2]]
    assert run_json(cli, "pool", "--values", x, "--k", "2", "--kind", "avg")["values"] == [[1, 2.25], [0.75, 1.5]]
    ceil = run_json(cli, "pool", "--values", x, "--k", "2", "--kind", "avg", "--ceil")["values"]
    assert ceil == [[1, 2.25, 0.5], [0.75, 1.5, 0.5], [0.5, 1, 1]]


def test_pool_explain_names_the_divisor(cli) -> None:
    code, out, _ = cli("pool", "--values", json.dumps(LECTURE_X), "--k", "2", "--kind", "avg", "--ceil", "--explain")
    assert code == 0
    assert "out[0][1] = (3 + 0 + 5 + 1) / 4 = 2.25" in out
    assert "out[0][2] = (1 + 0) / 2 = 0.5" in out and "divisor 2" in out


def test_exact_fractions_and_integers(cli) -> None:
    code, out, _ = cli("conv", "--values", "1 2; 3 4", "--weight", "[[0.5]]", "--bias", "0.25")
    assert (code, out) == (0, "0.75  1.25\n1.75  2.25\n")
    assert values.show(Fraction(1, 10) + Fraction(2, 10)) == "0.3"  # exact, then the nearest float64


def test_values_from_files(cli, tmp_path) -> None:
    rows = tmp_path / "x.txt"
    rows.write_text("\n".join(" ".join(map(str, r)) for r in LECTURE_X) + "\n")
    weight = tmp_path / "w.json"
    weight.write_text(json.dumps(LECTURE_W))
    csv = tmp_path / "x.csv"
    csv.write_text("\n".join(",".join(map(str, r)) for r in LECTURE_X))
    assert run_json(cli, "conv", "--values", f"@{rows}", "--weight", f"@{weight}")["values"][0] == [8, 9, 8]
    assert run_json(cli, "conv", "--values", f"@{csv}", "--weight", f"@{weight}")["values"][2] == [6, 5, 5]


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "matrix, expected",
    [
        ("[[1, 2], [3]]", "--values at [1]: 1 items"),
        ("[[1, 2], [3, \"a\"]]", "--values at [1][1]: \"a\" is not a number"),
        ("[[1, 2], [3, NaN]]", "NaN is not a number"),
        ("[[1, 2], [3, true]]", "--values at [1][1]: true is not a number"),
        ("[[1, 2], [3, [4]]]", "--values at [1][1]: a list where the matrix holds numbers"),
        ("1 2\n3 x", "--values line 2 item 2: 'x' is not a number"),
        ("1 2\n3", "--values line 2: 1 numbers where the first row has 2"),
        ("1 inf", "'inf' is infinite"),
        ("[]", "empty list"),
        ("[[1, 2]", "not valid JSON"),
        ("1e999", "exponent"),
    ],
)
def test_malformed_matrices_are_one_line_errors(cli, matrix: str, expected: str) -> None:
    code, out, err = cli("conv", "--values", matrix, "--weight", "[[1]]")
    assert code == 2 and out == ""  # a malformed value on the command line: usage (README's exit codes)
    assert expected in err and err.count("\n") == 1, err


def test_work_is_bounded(cli) -> None:
    big = json.dumps([[1] * 300] * 300)
    code, _, err = cli("conv", "--values", big, "--weight", json.dumps([[1] * 5] * 5))
    assert code == 2 and "multiply-adds" in err and "1,000,000" in err


def test_file_size_is_bounded(cli, tmp_path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("1 " * (values.MAX_BYTES // 2 + 10))
    code, _, err = cli("conv", "--values", f"@{path}", "--weight", "[1]")
    assert code == 2 and "is larger than 2,000,000 bytes" in err  # a file that cannot be read: usage (exit 2)


def test_mismatches_name_the_rule(cli) -> None:
    code, _, err = cli("conv", "--in", "6", "--values", json.dumps(LECTURE_X), "--weight", json.dumps(LECTURE_W))
    assert code == 2 and "--in 6 does not match --values, whose spatial size is 5x5" in err  # options that contradict each other
    code, _, err = cli("conv", "--k", "2", "--values", json.dumps(LECTURE_X), "--weight", json.dumps(LECTURE_W))
    assert code == 2 and "--k 2 does not match --weight, whose kernel is 3x3" in err
    code, _, err = cli("conv", "--values", json.dumps(LECTURE_X))
    assert code == 2 and "needs --weight" in err
    code, _, err = cli("conv", "--values", json.dumps([LECTURE_X, LECTURE_X]), "--weight", json.dumps(LECTURE_W))
    assert code == 1 and "C_in/groups" in err  # a valid weight for another input: the geometry (1)


def test_without_values_in_and_k_stay_required(cli) -> None:
    code, _, err = cli("conv", "--k", "3")
    assert code == 2 and "Missing option '--in'" in err
    code, _, err = cli("conv", "--in", "3")
    assert code == 2 and "Missing option '--k'" in err


# -- torch is the oracle (float64) ---------------------------------------------------------------


def _torch_run(module: Any, x: list, dims: int) -> Any:
    import torch

    tensor = torch.tensor(x, dtype=torch.float64)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return module(tensor).tolist()


def _flat(nested: Any) -> list[float]:
    if isinstance(nested, list):
        return [v for item in nested for v in _flat(item)]
    return [nested]


def _close(ours: Any, theirs: Any, where: str) -> None:
    a, b = _flat(ours), _flat(theirs)
    assert len(a) == len(b), f"{len(a)} values ≠ torch's {len(b)}: {where}"
    for u, v in zip(a, b):
        if isinstance(u, str) or math.isinf(v):
            assert str(u) == str(float(v)), f"{u} ≠ torch {v}: {where}"
            continue
        assert math.isclose(u, v, rel_tol=1e-12, abs_tol=1e-9), f"{u} ≠ torch {v}: {where}\n ours {ours}\n torch {theirs}"


def _matrix(draw: Any, shape: tuple[int, ...], decimals: bool) -> Any:
    numbers = st.integers(-9, 9) if not decimals else st.integers(-99, 99).map(lambda v: Fraction(v, 10))
    flat = [draw(numbers) for _ in range(math.prod(shape))]
    return values._nest([values._reduce(v) if isinstance(v, Fraction) else v for v in flat], shape)


def _tensor(nested: Any) -> values.Tensor:
    return values.parse_tensor(json.dumps(_plain(nested)), "--values")


def _plain(nested: Any) -> Any:
    if isinstance(nested, list):
        return [_plain(v) for v in nested]
    return float(nested) if isinstance(nested, Fraction) else nested


@st.composite
def conv_cases(draw: Any) -> dict[str, Any]:
    dims = draw(st.sampled_from([1, 2, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    same = draw(st.booleans()) and all(s == 1 for s in stride)
    padding: Any = "same" if same else tuple(draw(st.integers(0, 2)) for _ in range(dims))
    max_size = 6 if dims < 3 else 4
    spatial = tuple(draw(st.integers(1, max_size)) for _ in range(dims))
    decimals = draw(st.booleans())
    batched = draw(st.booleans())
    x = _matrix(draw, ((2,) if batched else ()) + (c_in, *spatial), decimals)
    w = _matrix(draw, (c_out, c_in // groups, *kernel), decimals)
    b = _matrix(draw, (c_out,), decimals) if draw(st.booleans()) else None
    return dict(dims=dims, x=x, w=w, b=b, stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)


def _verdicts(run_ours: Any, run_torch: Any, where: str) -> str:
    try:
        theirs = run_torch()
    except Exception as error:  # torch refuses: so must we (with a named error)
        with pytest.raises(ConvcalcError):
            run_ours()
        return f"error ({type(error).__name__})"
    ours = run_ours()
    _close(values.json_values(ours[1].output), theirs, where)
    return "ok"


@settings(max_examples=150, **SETTINGS)
@given(conv_cases())
def test_conv_values_match_torch(case: dict[str, Any]) -> None:
    import torch

    dims, x, w, b = case["dims"], case["x"], case["w"], case["b"]
    weight = torch.tensor(_plain(w), dtype=torch.float64)
    c_out, c_per_group, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])

    def run_torch() -> Any:
        module = getattr(torch.nn, f"Conv{dims}d")(
            c_per_group * case["groups"], c_out, kernel, stride=case["stride"], padding=case["padding"],
            dilation=case["dilation"], groups=case["groups"], bias=b is not None, padding_mode=case["padding_mode"],
            dtype=torch.float64,
        )
        module.weight.data.copy_(weight)
        if b is not None:
            module.bias.data.copy_(torch.tensor(_plain(b), dtype=torch.float64))
        return _torch_run(module, _plain(x), dims)

    def run_ours() -> Any:
        return values.run(
            "conv", _tensor(x), weight=_tensor(w), bias=_tensor(b) if b is not None else None, dims=dims,
            stride=list(case["stride"]), padding=case["padding"] if case["padding"] == "same" else list(case["padding"]),
            dilation=list(case["dilation"]), groups=case["groups"], padding_mode=case["padding_mode"],
        )

    event(_verdicts(run_ours, run_torch, repr(case)))


@st.composite
def tconv_cases(draw: Any) -> dict[str, Any]:
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out_per_group = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    output_padding = tuple(draw(st.integers(0, max(s, d) - (0 if draw(st.integers(0, 9)) == 0 else 1))) for s, d in zip(stride, dilation))
    spatial = tuple(draw(st.integers(1, 5 if dims < 3 else 3)) for _ in range(dims))
    decimals = draw(st.booleans())
    x = _matrix(draw, (c_in, *spatial), decimals)
    w = _matrix(draw, (c_in, c_out_per_group, *kernel), decimals)
    b = _matrix(draw, (c_out_per_group * groups,), decimals) if draw(st.booleans()) else None
    return dict(dims=dims, x=x, w=w, b=b, stride=stride, padding=padding, dilation=dilation, groups=groups, output_padding=output_padding)


@settings(max_examples=120, **SETTINGS)
@given(tconv_cases())
def test_tconv_values_match_torch(case: dict[str, Any]) -> None:
    import torch

    dims, x, w, b = case["dims"], case["x"], case["w"], case["b"]
    weight = torch.tensor(_plain(w), dtype=torch.float64)
    c_in, c_out = weight.shape[0], weight.shape[1] * case["groups"]

    def run_torch() -> Any:
        module = getattr(torch.nn, f"ConvTranspose{dims}d")(
            c_in, c_out, tuple(weight.shape[2:]), stride=case["stride"], padding=case["padding"],
            output_padding=case["output_padding"], dilation=case["dilation"], groups=case["groups"],
            bias=b is not None, dtype=torch.float64,
        )
        module.weight.data.copy_(weight)
        if b is not None:
            module.bias.data.copy_(torch.tensor(_plain(b), dtype=torch.float64))
        out = _torch_run(module, _plain(x), dims)
        assert _flat(out), "empty"
        return out

    def run_ours() -> Any:
        return values.run(
            "tconv", _tensor(x), weight=_tensor(w), bias=_tensor(b) if b is not None else None, dims=dims,
            stride=list(case["stride"]), padding=list(case["padding"]), output_padding=list(case["output_padding"]),
            dilation=list(case["dilation"]), groups=case["groups"],
        )

    event(_verdicts(run_ours, run_torch, repr(case)))


@st.composite
def pool_cases(draw: Any) -> dict[str, Any]:
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    kind = draw(st.sampled_from(["max", "avg"]))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims)) if kind == "max" else None
    extra: dict[str, Any] = {}
    if kind == "avg":
        extra["count_include_pad"] = draw(st.booleans())
        if dims > 1 and draw(st.booleans()):
            extra["divisor_override"] = draw(st.sampled_from([1, 3, 7]))
    spatial = tuple(draw(st.integers(1, 6 if dims < 3 else 4)) for _ in range(dims))
    x = _matrix(draw, (draw(st.integers(1, 2)), *spatial), draw(st.booleans()))
    return dict(dims=dims, kind=kind, x=x, kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=draw(st.booleans()), extra=extra)


@settings(max_examples=200, **SETTINGS)
@given(pool_cases())
def test_pool_values_match_torch(case: dict[str, Any]) -> None:
    import torch

    dims, kind = case["dims"], case["kind"]
    kwargs: dict[str, Any] = dict(kernel_size=case["kernel"], stride=case["stride"], padding=case["padding"], ceil_mode=case["ceil_mode"], **case["extra"])
    if kind == "max":
        kwargs["dilation"] = case["dilation"]

    def run_torch() -> Any:
        module = getattr(torch.nn, f"{kind.capitalize()}Pool{dims}d")(**kwargs)
        return _torch_run(module, _plain(case["x"]), dims)

    def run_ours() -> Any:
        ours = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
        return values.run(f"{kind}pool", _tensor(case["x"]), dims=dims, **ours)

    event(_verdicts(run_ours, run_torch, repr(case)))


def test_reflect_replicate_circular_match_torch_on_a_fixed_case() -> None:
    """A deterministic companion of the property test: every padding mode on one 4×5 input."""
    torch = pytest.importorskip("torch")
    rng = random.Random(7)
    x = [[rng.randint(-5, 5) for _ in range(5)] for _ in range(4)]
    w = [[rng.randint(-3, 3) for _ in range(3)] for _ in range(3)]
    for mode in ("zeros", "reflect", "replicate", "circular"):
        module = torch.nn.Conv2d(1, 1, 3, padding=(2, 1), padding_mode=mode, bias=False, dtype=torch.float64)
        module.weight.data.copy_(torch.tensor([[w]], dtype=torch.float64))
        theirs = _torch_run(module, [x], 2)[0]
        _, trace = values.run("conv", _tensor(x), weight=_tensor(w), padding=[2, 1], padding_mode=mode)
        assert values.json_values(trace.output) == theirs, mode
