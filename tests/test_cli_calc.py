"""The calculator commands conv, tconv, pool and chain: exact answers, JSON, errors, exit codes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args, expected",
    [
        ("conv --in 227 --k 11 --s 4", "55"),
        ("conv --in 64 --k 7 --s 2", "29"),
        ("conv --in 32 --k 5 --p 2", "32"),
        ("conv --in 32x64 --k 5", "28x60"),
        ("conv --in 64x32 --k 3 --p 1", "64x32"),
        ("conv --input 32 --kernel-size 5 --padding same", "32"),
        ("conv --in 32 --k 4 --p same", "32"),
        ("conv --in 10 --k 3 --d 2", "6"),
        ("conv --in 100 --k 3 --dims 1", "98"),
        ("conv --in 16x112x112 --k 3 --s 2 --p 1", "8x56x56"),
        ("conv --in 32x32 --k 3x5", "30x28"),
        ("pool --in 24 --k 2", "12"),
        ("pool --in 26 --k 2 --s 2 --p 1", "14"),
        ("pool --in 5 --k 2 --ceil", "3"),
        ("pool --in 1 --k 2 --ceil", "1"),
        ("pool --in 24 --k 2 --kind avg", "12"),
        ("tconv --in 2 --k 3", "4"),
        ("tconv --in 3 --k 3 --p 2", "1"),
        ("tconv --in 3 --k 3 --s 3 --op 1", "10"),
        ("tconv --in 16 --k 4 --s 2 --p 1", "32"),
        ("chain 28 conv:k=5 maxpool:k=2", "28 → 24 → 12"),
        ("chain 28 Conv2d:kernel_size=5 MaxPool2d:kernel_size=2", "28 → 24 → 12"),
        ("chain 28 conv:k=3 maxpool:k=2,s=2,p=1 conv:k=3 maxpool:k=2,s=2,p=1", "28 → 26 → 14 → 12 → 7"),
        ("chain 64x48 conv:k=3,s=2,p=1 tconv:k=4,s=2,p=1", "64x48 → 32x24 → 64x48"),
        ("chain 7 adaptiveavgpool:output_size=1", "7 → 1"),
        ("conv --in 1000000000000 --k 3", "999999999998"),
    ],
)
def test_exact_answers(cli, args: str, expected: str) -> None:
    code, out, _ = cli(*args.split())
    assert (code, out) == (0, expected + "\n")


def test_json_conv_keys(cli) -> None:
    code, out, _ = cli("conv", "--in", "227", "--k", "11", "--s", "4", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["layer"], data["input"], data["output"]) == ("Conv2d", [227, 227], [55, 55])
    assert data["arguments"]["stride"] == [4, 4]
    assert data["params"] == 1 * 1 * 11 * 11 + 1


def test_json_tconv_and_pool(cli) -> None:
    tconv = json.loads(cli("tconv", "--in", "3", "--k", "3", "--s", "3", "--op", "1", "--json")[1])
    pool = json.loads(cli("pool", "--in", "26", "--k", "2", "--s", "2", "--p", "1", "--json")[1])
    assert (tconv["layer"], tconv["output"]) == ("ConvTranspose2d", [10, 10])
    assert (pool["layer"], pool["output"]) == ("MaxPool2d", [14, 14])


def test_json_chain_steps(cli) -> None:
    code, out, _ = cli("chain", "28", "conv:k=5", "maxpool:k=2", "--json")
    data = json.loads(out)
    assert code == 0
    assert [(s["layer"], s["input"], s["output"]) for s in data["steps"]] == [
        ("Conv2d", [28, 28], [24, 24]),
        ("MaxPool2d", [24, 24], [12, 12]),
    ]


def test_explain_shows_each_axis_and_uncovered_rows(cli) -> None:
    code, out, err = cli("conv", "--in", "10x9", "--k", "3", "--s", "2", "--explain")
    assert code == 0 and err == ""
    assert "H: floor((10 + 2×0 − 1×(3−1) − 1) / 2) + 1 = floor(7 / 2) + 1 = 4" in out
    assert "W: floor((9 + 2×0 − 1×(3−1) − 1) / 2) + 1 = floor(6 / 2) + 1 = 4" in out
    assert "the last row of the input (H) is never covered" in out
    assert "(W)" not in out.split("never covered")[-1]
    assert out.strip().endswith("10x9 → 4x4")


def test_uncovered_warning_goes_to_stderr(cli) -> None:
    code, out, err = cli("conv", "--in", "11", "--k", "3", "--s", "3")
    assert (code, out) == (0, "3\n")
    assert "the last 2 rows of the input (H) are never covered" in err


def test_no_uncovered_warning_when_the_kernel_is_narrower_than_the_stride(cli) -> None:
    """A 1×1 stride-2 projection skips every other row by design: no warning about the last one."""
    assert cli("conv", "--in", "56", "--k", "1", "--s", "2") == (0, "28\n", "")


def test_explain_ceil_mode_dropped_window(cli) -> None:
    # 5 + 2×1 − 2 = 5; ceil(5/2)+1 = 4, but the 4th window starts at 6 ≥ 5 + 1: dropped.
    code, out, _ = cli("pool", "--in", "5", "--k", "2", "--s", "2", "--p", "1", "--ceil", "--explain")
    assert code == 0
    assert "dropped: 3" in out


def test_explain_tconv(cli) -> None:
    _, out, _ = cli("tconv", "--in", "3", "--k", "3", "--s", "3", "--op", "1", "--explain")
    assert "H: (3 − 1)×3 − 2×0 + 1×(3−1) + 1 + 1 = 10" in out


@pytest.mark.parametrize(
    "args, needle, expected",
    [
        # arguments that are fine but do not fit this input: invalid geometry, exit 1
        ("conv --in 8 --k 11", "kernel 11 (dilated: 11) is larger than the padded input 8 (input 8 + 2×0 padding); use an input of at least 11 or padding ≥ 2", 1),
        ("tconv --in 1 --k 3 --p 3", "is too small; use padding ≤ 1", 1),
        ("conv --in 3 --k 3 --p 3 --padding-mode reflect", "reflect padding 3 must be smaller than the input size 3", 1),
        ("chain 4 conv:k=3 conv:k=3", "step 2 (conv:k=3)", 1),
        # arguments invalid whatever the input (torch's constructor refuses them), or a chain
        # step that is not written right: how the command was called, exit 2
        ("conv --in 8 --k 3 --s 0", "stride must be at least 1", 2),
        ("conv --in 8 --k 3 --s 2 --p same", "padding='same' is not supported for strided convolutions", 2),
        ("pool --in 8 --k 3 --p 2", "padding 2 must be at most half the kernel size 3; use padding ≤ 1", 2),
        ("tconv --in 3 --k 3 --op 1", "output_padding 1 must be smaller than either stride (1) or dilation (1)", 2),
        ("conv --in 8 --k 3 --g 2 --cin 3", "in_channels must be divisible by groups", 2),
        ("chain 28 conv:k=5 maxpol:k=2", "did you mean maxpool?", 2),
        ("chain 28 conv:kernal_size=5", "did you mean kernel_size?", 2),
    ],
)
def test_errors_exit_code_with_one_line(cli, args: str, needle: str, expected: int) -> None:
    code, out, err = cli(*args.split())
    assert code == expected
    assert out == ""
    assert needle in err
    assert err.count("\n") == 1 and err.startswith("error: ")


@pytest.mark.parametrize(
    "args",
    [
        "conv --in 0 --k 3",
        "conv --in -5 --k 3",
        "conv --in abc --k 3",
        "conv --in 3x --k 3",
        "conv --in 3x4x5x6 --k 3",
        "conv --in 3x4x5x6 --k 3 --dims 2",  # 3x4x5 with --dims 2 is C×H×W (issue 14)
        "conv --in 8 --k x",
        "conv --in 8",
        "conv --in 8 --k 3 --bogus",
        "pool --in 8 --k 2 --kind median",
        "model",
        "frobnicate",
    ],
)
def test_usage_errors_exit_2_with_one_line(cli, args: str) -> None:
    code, out, err = cli(*args.split())
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err


def test_json_error_document(cli) -> None:
    code, out, err = cli("conv", "--in", "8", "--k", "11", "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["layer"] == "Conv2d"
    assert "larger than the padded input" in error["message"]
    assert err.startswith("error: ")


def help_examples(out: str, command: str) -> list[str]:
    """The example command lines of a --help text (not click's own ``Usage:`` line)."""
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"convcalc {command} ")]


@pytest.mark.parametrize("command", ["conv", "tconv", "pool", "chain", "model", "verify", "examples", "draw"])
def test_every_command_help_shows_an_example(cli, command: str) -> None:
    code, out, _ = cli(command, "--help")
    assert code == 0
    assert out.startswith(f"Usage: convcalc {command} ")
    examples = help_examples(out, command)
    assert examples, f"`convcalc {command} --help` shows no example besides its Usage line"
    for example in examples:  # an example that names its answer (`# 55`) gives it
        line, _, answer = example.partition("# ")
        if answer and command in ("conv", "tconv", "pool", "chain"):
            code, printed, _ = cli(*shlex.split(line)[1:])  # shell words: examples may quote a matrix
            assert (code, printed) == (0, answer.strip() + "\n"), f"--help says `{example}`"


def test_the_main_help_examples_give_their_answers(cli) -> None:
    code, out, _ = cli("--help")
    calculators = ("convcalc conv ", "convcalc tconv ", "convcalc pool ", "convcalc chain ")
    examples = [line.strip() for line in out.splitlines() if line.strip().startswith(calculators) and "# " in line]
    assert code == 0 and len(examples) >= 4
    for example in examples:
        line, _, answer = example.partition("# ")
        assert cli(*line.split()[1:])[:2] == (0, answer.strip() + "\n"), f"convcalc --help says `{example}`"


def test_piped_output_has_no_escape_codes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", "chain", "28", "conv:k=5", "maxpool:k=2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == "28 → 24 → 12\n"
    assert "\x1b[" not in done.stdout + done.stderr


def test_explain_draws_the_windows_and_the_unread_column(cli) -> None:
    _, out, _ = cli("conv", "--in", "9x8", "--k", "3", "--s", "2", "--explain")
    lines = out.splitlines()
    strip = next(line for line in lines if line.strip().startswith("W input"))
    assert strip.endswith("■" * 8)
    unread = next(line for line in lines if "unread" in line)
    # 8 columns, windows at 0-2, 2-4, 4-6: the column at index 7 is never read
    assert unread.index("^") - strip.index("■") == 7
    assert sum(line.strip().startswith("window") for line in lines) == 4 + 3


def test_explain_picture_shows_padding_and_dilated_taps(cli) -> None:
    _, out, _ = cli("conv", "--in", "5", "--k", "3", "--d", "2", "--p", "1", "--explain", "--dims", "1")
    assert "input    ·■■■■■·" in out
    assert "window 1 █ █ █" in out


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """`convcalc model big.yaml | head -1`: no 'BrokenPipeError' noise on stderr."""
    import pathlib

    spec = pathlib.Path(__file__).resolve().parent.parent / "examples" / "models" / "resnet50.yaml"
    done = subprocess.run(
        f"'{sys.executable}' -m convcalc model '{spec}' | head -1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.startswith("ResNet-50")
    assert "Error" not in done.stderr and "Traceback" not in done.stderr
