"""``--values`` / ``--weight`` / ``--bias`` of conv, tconv and pool: a malformed matrix, one too
large to compute, or options that contradict it are usage errors (exit 2), whatever the form;
only geometry that does not fit (the window larger than the input, a weight for another number
of channels) is exit 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile import check_refusal, run

MALFORMED = [
    "",
    "   ",
    "[",
    "]",
    "[[1, 2], [3]]",
    "[[1, 2], [3, 4]",
    "[[1, 2]] x",
    "[]",
    "[[]]",
    "[[1, [2]]]",
    "abc",
    "1e400",
    "[[1e400]]",
    "nan",
    "[[NaN]]",
    "inf",
    "-Infinity",
    "[[true]]",
    "[[null]]",
    '[["1"]]',
    '{"a": 1}',
    "[[٣]]",
    "٣ ٤",
    "1_1",
    "[[0x10]]",
    "1 2\n3",
    "1 2\n\n3 4\n5 6\n7 8",
    "[[[[[[[1]]]]]]]",
    "1" * 5000,
    "[[" + "1" * 5000 + "]]",
    "[[1\x1b[2J]]",
]

COMMANDS = {
    "conv": ["conv", "--weight", "[[1]]"],
    "tconv": ["tconv", "--weight", "[[1]]"],
    "pool": ["pool", "--k", "1"],
}


#: Every form through conv; tconv and pool share the parser and its wrapper, so a few suffice.
CASES = [("conv", matrix) for matrix in MALFORMED] + [(c, m) for c in ("tconv", "pool") for m in ("", "[[1, 2], [3]]", "nan", "1e400", "[[٣]]", "1 2\n3")]


@pytest.mark.parametrize("command, matrix", CASES, ids=lambda m: repr(m)[:40])
def test_a_malformed_values_matrix_is_a_usage_error(tmp_path: Path, command: str, matrix: str) -> None:
    check_refusal(run([*COMMANDS[command], "--values", matrix], tmp_path), 2, "--values")


@pytest.mark.parametrize("command", ["conv", "tconv"])
@pytest.mark.parametrize("matrix", ["", "[[1, 2], [3]]", "nan", "[[true]]", "[[[[[[[1]]]]]]]", "1 2 3\n4"])
def test_a_malformed_weight_is_a_usage_error(tmp_path: Path, command: str, matrix: str) -> None:
    check_refusal(run([command, "--values", "[[1, 2], [3, 4]]", "--weight", matrix], tmp_path), 2, "--weight")


@pytest.mark.parametrize("matrix", ["", "[[1, 2], [3]]", "nan", "1 2 3", "[[1]]x"])
def test_a_malformed_bias_is_a_usage_error(tmp_path: Path, matrix: str) -> None:
    check_refusal(run(["conv", "--values", "[[1, 2], [3, 4]]", "--weight", "[[1]]", "--bias", matrix], tmp_path), 2, "--bias")


def test_matrix_files_that_cannot_be_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "sub").mkdir()
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    for path in ("@/dev/zero", "@fifo", "@sub", "@missing", "@bin", "@"):
        check_refusal(run(["conv", "--values", path, "--weight", "[[1]]"], tmp_path), 2)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["conv", "--in", "6", "--values", "[[1, 2], [3, 4]]", "--weight", "[[1]]"], "--in 6 does not match --values"),
        (["conv", "--k", "2", "--values", "[[1, 2], [3, 4]]", "--weight", "[[1]]"], "--k 2 does not match --weight"),
        (["conv", "--cin", "3", "--values", "[[1, 2], [3, 4]]", "--weight", "[[1]]"], "--in-channels 3 does not match"),
        (["conv", "--values", "[[1, 2], [3, 4]]", "--weight", "[[[[1]]], [[[1]]]]", "--bias", "1 2 3"], "--bias needs 2 numbers"),
        (["conv", "--values", "[[1, 2], [3, 4]]", "--weight", "[[[1]]]"], "--weight has 3 axes"),
        (["conv", "--values", "[[[[[1]]]]]", "--weight", "[[1]]"], "--values has 5 axes"),
        (["conv", "--values", "[[1, 2], [3, 4]]", "--weight", "[[1]]", "--s", "0"], "stride must be at least 1"),
        (["conv", "--values", "@big.txt", "--weight", "[" + ",".join(["[1,1,1,1,1]"] * 5) + "]"], "multiply-adds"),
    ],
)
def test_options_that_contradict_the_matrix_are_usage_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "big.txt").write_text(("1 " * 300 + "\n") * 300)
    check_refusal(run(args, tmp_path), 2, needle)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["conv", "--values", "[[1, 2], [3, 4]]", "--weight", "[[1, 1, 1], [1, 1, 1], [1, 1, 1]]"], "larger than the padded input"),
        (["pool", "--values", "[[1, 2], [3, 4]]", "--k", "3"], "larger than the padded input"),
        (["conv", "--values", "[[[1, 2], [3, 4]], [[1, 2], [3, 4]]]", "--weight", "[[1]]"], "C_in/groups"),
        (["tconv", "--values", "[[[1, 2], [3, 4]], [[1, 2], [3, 4]]]", "--weight", "[[[[1]]]]"], "C_in = 1"),
    ],
)
def test_geometry_that_does_not_fit_stays_exit_1(tmp_path: Path, args: list[str], needle: str) -> None:
    check_refusal(run(args, tmp_path), 1, needle)


@pytest.mark.parametrize(
    "args, needle",
    [
        # one input value, one weight value: 1 multiply-add, but 10^9 output values (a memory bomb)
        (["tconv", "--values", "[[[1]]]", "--weight", "[[[1]]]", "--dims", "3", "--s", "1000", "--d", "1000", "--op", "999"], "1,000,000,000 output values"),
        (["tconv", "--values", "[[1]]", "--weight", "[[1]]", "--s", "2000", "--d", "2000", "--op", "1999"], "4,000,000 output values"),
    ],
)
def test_a_transposed_convolution_spreading_few_values_wide_is_bounded(tmp_path: Path, args: list[str], needle: str) -> None:
    check_refusal(run(args, tmp_path), 2, needle)


def test_the_uncropped_sum_is_not_computed_when_it_is_not_drawn(tmp_path: Path) -> None:
    """A 3×3 output cropped from a 1,000,001×1,000,001 full size: the full grid (10^12 cells) was
    allocated for the --explain picture that is never drawn at that size (MemoryError)."""
    outcome = run(["tconv", "--values", "[[1,1],[1,1]]", "--weight", "[[1]]", "--s", "1000000", "--p", "499999", "--explain"], tmp_path)
    assert outcome.code == 0, outcome.err
    assert outcome.out.rstrip().endswith("0  0  0") and "padding crops 499999" in outcome.out
