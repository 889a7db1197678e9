"""The calculator's two traps (issue 14): C×H×W read as D×H×W, and chain losing the channels.

torch is the oracle: the C×H×W reading is a Conv2d on (C, H, W), the D×H×W reading a Conv3d on
(1, D, H, W); a chain with channels is an nn.Sequential run on (1, C, H, W).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SETTINGS

torch = pytest.importorskip("torch")


# -- C×H×W or D×H×W: never two meanings without a word -----------------------------------------


def test_three_numbers_without_dims_warn_naming_both_readings(cli) -> None:
    code, out, err = cli("conv", "--in", "5x30x40", "--k", "3", "--out-channels", "7")
    assert code == 0
    assert out == "3x28x38\n"  # D×H×W: Conv3d's D 5 − 2 = 3
    assert "D×H×W" in err and "C×H×W" in err and "--dims 2" in err and "--dims 3" in err and "Conv3d" in err
    assert err.count("\n") == 1 and err.startswith("warning: ")


@pytest.mark.parametrize("args", [["--dims", "3"], ["--dims", "2"], ["--in-channels", "5"], ["--in-channels", "2"]])
def test_dims_or_in_channels_pick_the_reading_without_a_warning(cli, args: list[str]) -> None:
    code, out, err = cli("conv", "--in", "5x30x40", "--k", "3", "--out-channels", "7", *args, "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    if args in (["--dims", "2"], ["--in-channels", "5"]):  # C×H×W: a Conv2d on 5 channels of 30×40
        module, sample = torch.nn.Conv2d(5, 7, 3), torch.zeros(5, 30, 40)
        assert data["layer"] == "Conv2d" and data["input"] == [30, 40] and data["input_channels"] == 5
    else:  # D×H×W: a Conv3d
        channels = 2 if "--in-channels" in args else 1
        module, sample = torch.nn.Conv3d(channels, 7, 3), torch.zeros(channels, 5, 30, 40)
        assert data["layer"] == "Conv3d" and data["input"] == [5, 30, 40]
    result = module(sample)
    assert data["output"] == list(result.shape[1:]) and data["output_channels"] == result.shape[0]
    assert data["params"] == sum(p.numel() for p in module.parameters())


@settings(max_examples=40, **SETTINGS)
@given(
    c=st.integers(1, 6), h=st.integers(1, 20), w=st.integers(1, 20), k=st.integers(1, 5),
    out=st.integers(1, 6), kind=st.sampled_from(["conv", "pool"]),
)
def test_c_h_w_reading_agrees_with_torch(c: int, h: int, w: int, k: int, out: int, kind: str) -> None:
    import contextlib
    import io

    from convcalc.cli import run

    args = [kind, "--in", f"{c}x{h}x{w}", "--k", str(k), "--dims", "2"]
    module = torch.nn.Conv2d(c, out, k) if kind == "conv" else torch.nn.MaxPool2d(k)
    if kind == "conv":
        args += ["--out-channels", str(out)]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = run(args)
    try:
        shape = tuple(module(torch.zeros(c, h, w)).shape)
    except RuntimeError:
        assert code == 1, stdout.getvalue()
        return
    assert code == 0 and stdout.getvalue() == "x".join(map(str, shape)) + "\n"


# -- two numbers: H×W, or C×L as model --input reads them for a 1-D model ---------------------------


@pytest.mark.parametrize("command", [["conv"], ["tconv"], ["pool"], ["pool", "--kind", "avg"]])
def test_two_numbers_that_look_like_channels_warn_naming_both_readings(cli, command: list[str]) -> None:
    code, out, err = cli(*command, "--in", "3x224", "--k", "1")
    assert (code, out) == (0, "3x224\n")  # H×W: 3 rows of 224
    one = {"conv": "Conv1d", "tconv": "ConvTranspose1d", "pool": "MaxPool1d"}[command[0]]
    one = "AvgPool1d" if "avg" in command else one
    assert err.startswith("warning: 3x224 is read as H×W, the input of a ") and err.count("\n") == 1
    assert f"if it is C×L (3 channels of length 224, a {one}), add --dims 1" in err
    assert "--dims 2 keeps the 2-D reading without this warning" in err
    assert ("(or --in-channels 3)" in err) == (command[0] != "pool")  # pool has no --in-channels


@pytest.mark.parametrize("size", ["32x64", "64x32", "4x3", "9x8", "3x5", "5x224", "28x28", "2x7"])
def test_two_numbers_that_look_like_h_w_read_quietly(cli, size: str) -> None:
    code, _, err = cli("conv", "--in", size, "--k", "1")
    assert (code, err) == (0, "")


@pytest.mark.parametrize("args", [["--dims", "1"], ["--in-channels", "3"]])
def test_dims_1_or_in_channels_read_two_numbers_as_c_l_like_torch(cli, args: list[str]) -> None:
    code, out, err = cli("conv", "--in", "3x224", "--k", "5", "--out-channels", "8", *args, "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    module = torch.nn.Conv1d(3, 8, 5)
    result = module(torch.zeros(3, 224))
    assert data["layer"] == "Conv1d" and data["input"] == [224] and data["input_channels"] == 3
    assert data["output"] == list(result.shape[1:]) and data["output_channels"] == result.shape[0]
    assert cli("conv", "--in", "3x224", "--k", "5", "--out-channels", "8", *args)[1] == "8x220\n"


def test_dims_2_keeps_two_numbers_h_w_without_a_warning(cli) -> None:
    assert cli("conv", "--in", "3x224", "--k", "3", "--dims", "2") == (0, "1x222\n", "")
    assert cli("conv", "--in", "3x224", "--k", "3", "--in-channels", "2") == (0, "1x222\n", "")  # the first number is not C


def test_chain_reads_two_numbers_like_the_calculators(cli) -> None:
    code, out, err = cli("chain", "3x224", "conv:k=3")
    assert code == 0 and out.splitlines()[0] == "3x224 → 1x222" and "C×L" in err and "--dims 1" in err
    assert cli("chain", "3x224", "--dims", "1", "conv:k=3,out=8")[1].splitlines()[0] == "3x224 → 8x222"
    code, out, err = cli("chain", "3x224", "Conv1d(3, 8, 3)")  # the class says 1-D: C×L
    assert (code, err) == (0, "") and out.splitlines()[0] == "3x224 → 8x222"
    code, out, err = cli("chain", "3x224", "Conv2d(1, 8, 3)")  # the class says 2-D: H×W
    assert (code, err) == (0, "") and out.splitlines()[0] == "3x224 → 8x1x222"


def test_batch_reads_two_numbers_like_the_calculators(cli, tmp_path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("layer,in,k,dims,cin\nconv,3x224,3,,\nconv,3x224,3,,\nconv,3x224,3,1,\nconv,3x224,3,,3\nConv1d,3x224,3,,\nconv,32x64,3,,\n")
    code, out, err = cli("batch", str(path))
    assert code == 0
    assert [line.split(",")[5] for line in out.splitlines()[1:]] == ["1x222", "1x222", "1x222", "1x222", "1x222", "30x62"]
    assert err.startswith(f"warning: {path}:2: 3x224 is read as H×W") and err.endswith("(and 1 more row)\n")
    assert "a dims column of 1 (or an in_channels column of 3)" in err and err.count("\n") == 1


def test_dims_and_in_channels_that_disagree_are_a_usage_error(cli) -> None:
    code, _, err = cli("conv", "--in", "3x224x224", "--k", "3", "--dims", "2", "--in-channels", "4")
    assert code == 2 and "3 channels" in err and "--in-channels says 4" in err


def test_pool_reads_c_h_w_with_dims_2(cli) -> None:
    assert cli("pool", "--in", "16x28x28", "--k", "2", "--dims", "2") == (0, "16x14x14\n", "")


def test_chain_c_h_w_reading(cli) -> None:
    code, out, err = cli("chain", "1x28x28", "conv:out=5,k=5", "maxpool:k=2")
    assert code == 1 and "D×H×W" in err and "--dims 2" in err  # the 3-D reading fails, and says why
    code, out, err = cli("chain", "1x28x28", "--dims", "2", "conv:out=5,k=5", "maxpool:k=2")
    assert (code, err) == (0, "") and out.splitlines()[0] == "1x28x28 → 5x24x24 → 5x12x12"
    code, out, err = cli("chain", "1x28x28", "Conv2d(1, 5, 5)", "MaxPool2d(2)")  # the class says 2-D
    assert (code, err) == (0, "") and out.splitlines()[0] == "1x28x28 → 5x24x24 → 5x12x12"


# -- chain follows the channels ---------------------------------------------------------------


def test_the_issue_chain_gives_linear_the_real_feature_count(cli) -> None:
    steps = ["conv:k=3,out=16", "maxpool:k=2,s=2,p=1", "Flatten", "Linear:out=10"]
    code, out, err = cli("chain", "28", *steps, "--json")
    assert code == 0, err
    data = json.loads(out)
    linear = data["steps"][-1]
    assert linear["arguments"]["in_features"] == 3136 == 16 * 14 * 14
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3), torch.nn.MaxPool2d(2, 2, 1), torch.nn.Flatten(), torch.nn.Linear(3136, 10))
    x = torch.zeros(1, 1, 28, 28)
    for step, module in zip(data["steps"], net):
        x = module(x)
        assert step["output"] == (list(x.shape[1:]) if x.dim() == 2 else list(x.shape[2:]))
        if x.dim() == 4:
            assert step["output_channels"] == x.shape[1]
    code, out, _ = cli("chain", "28", *steps)
    assert out.splitlines()[0] == "28 → 16x26x26 → 16x14x14 → 3136 → 10"
    assert "Linear 31,370" in out and "Conv2d at step 1" in out  # the first conv's input channels are unknown
    code, out, _ = cli("chain", "28", "--in-channels", "1", *steps)
    assert out.splitlines() == ["1x28x28 → 16x26x26 → 16x14x14 → 3136 → 10", "params: 31,530 (Conv2d 160, Linear 31,370)"]
    assert 31_530 == sum(p.numel() for p in net.parameters())


def test_flatten_without_known_channels_is_refused_plainly(cli) -> None:
    code, out, err = cli("chain", "28", "conv:k=3", "maxpool:k=2", "Flatten", "Linear:out=10")
    assert code == 2 and out == ""  # a chain step the command line does not give enough for: usage
    assert err.startswith("error: step 3 (Flatten): Flatten needs the number of channels") and "--in-channels" in err


def test_plain_chain_without_channels_is_unchanged(cli) -> None:
    assert cli("chain", "28", "conv:k=5", "maxpool:k=2") == (0, "28 → 24 → 12\n", "")


def test_explain_shows_channels_and_params(cli) -> None:
    code, out, _ = cli("chain", "28", "--in-channels", "3", "conv:k=3,out=8", "--explain")
    assert code == 0 and "Conv2d k=3 s=1 p=0: 3x28x28 → 8x26x26" in out
    assert f"params {8 * 3 * 9 + 8:,}; MACs {26 * 26 * 8 * 3 * 9:,}" in out
    code, out, _ = cli("conv", "--in", "3x227x227", "--dims", "2", "--k", "11", "--s", "4", "--out-channels", "96", "--explain")
    assert "channels 3 → 96; params 34,944; MACs 105,415,200" in out and out.endswith("3x227x227 → 96x55x55\n")


LAYERS = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 8), st.integers(1, 4), st.integers(1, 2), st.integers(0, 1)),
    st.tuples(st.just("maxpool"), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1)),
    st.tuples(st.just("avgpool"), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1)),
)


@settings(max_examples=60, **SETTINGS)
@given(
    channels=st.integers(1, 4), size=st.integers(4, 40), layers=st.lists(LAYERS, min_size=1, max_size=4),
    features=st.integers(1, 12),
)
def test_random_chains_agree_with_torch_sequential(channels: int, size: int, layers: list, features: int) -> None:
    """conv/pool steps, then Flatten and Linear: shapes, channels, in_features and params as torch's."""
    from convcalc import calc
    from convcalc.errors import ConvcalcError

    steps, modules, c = [], [], channels
    for kind, a, k, s, p in layers:
        if kind == "conv":
            steps.append(f"conv:out={a},k={k},s={s},p={p}")
            modules.append(torch.nn.Conv2d(c, a, k, stride=s, padding=p))
            c = a
        else:
            steps.append(f"{kind}:k={k},s={s},p={p}")
            pool = torch.nn.MaxPool2d if kind == "maxpool" else torch.nn.AvgPool2d
            modules.append(pool(k, stride=s, padding=p))
    steps += ["Flatten", f"Linear:out={features}"]
    try:
        x = torch.zeros(1, channels, size, size)
        for module in modules:
            x = module(x)
        flat = math.prod(x.shape[1:])
        modules += [torch.nn.Flatten(), torch.nn.Linear(flat, features)]
    except RuntimeError:
        with pytest.raises(ConvcalcError):
            calc.chain((size, size), steps, channels=channels)
        return
    results = calc.chain((size, size), steps, channels=channels)
    x = torch.zeros(1, channels, size, size)
    for step, module in zip(results, modules):
        x = module(x)
        if x.dim() == 4:
            assert (step.out_channels, *step.output) == tuple(x.shape[1:])
        else:
            assert step.flat and step.output == (x.shape[1],)
        assert step.params == sum(p.numel() for p in module.parameters())
    assert results[-1].layer.torch_kwargs()["in_features"] == flat


@pytest.mark.parametrize("step", ["add", "Subtract", "Divide", "concat", "MatMul", "ScaledDotProductAttention:is_causal=true"])
def test_a_merge_is_no_chain_step(cli, step: str) -> None:
    """A chain follows one tensor; a merge needs two or more whatever the input, so the step is malformed (exit 2),
    and the fix is a spec: it was exit 1 with the spec's 'from: [a, b]', which a chain cannot write."""
    code, out, err = cli("chain", "28", "--in-channels", "4", step)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "joins two or more" in err and "convcalc model" in err and "from: [a, b]" not in err, err
