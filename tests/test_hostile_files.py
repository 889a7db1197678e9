"""Input files that are not regular files: devices, pipes, FIFOs, stdin, folders, missing files.

Every command that reads a file (model, verify, examples) reads at most the limit + 1 bytes of
any file or stream, refuses devices and folders, and never waits forever on a pipe.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile import check_refusal, run, snapshot

SPEC = "input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "fifo")
    os.mkfifo(tmp_path / "fifo.py")
    return tmp_path


READERS = [["model"], ["examples"]]


@pytest.mark.parametrize("command", READERS, ids=" ".join)
@pytest.mark.parametrize(
    "path, needle",
    [
        ("/dev/zero", "is a device"),
        ("/dev/urandom", "is a device"),
        ("/dev/full", "is a device"),
        ("sub", "is a directory"),
        ("missing.yaml", "no such file"),
        ("fifo", "is a pipe that sent nothing"),  # a FIFO without a writer: bounded in time
    ],
)
def test_unreadable_paths_are_usage_errors(folder: Path, command: list[str], path: str, needle: str) -> None:
    before = snapshot(folder)
    outcome = run([*command, path], folder)
    check_refusal(outcome, 2, needle)
    assert snapshot(folder) == before


@pytest.mark.parametrize("command", READERS, ids=" ".join)
@pytest.mark.parametrize("path", ["/dev/stdin", "-"])
def test_endless_stdin_is_cut_at_the_limit(folder: Path, command: list[str], path: str) -> None:
    outcome = run([], folder, shell=f"yes | {{convcalc}} {' '.join(command)} {path}")
    check_refusal(outcome, 2, "is larger than 16 MiB")


def test_stdin_dash_reads_a_spec(folder: Path) -> None:
    outcome = run(["model", "-"], folder, stdin=SPEC.encode())
    assert outcome.code == 0, outcome.err
    assert "Conv2d" in outcome.out


def test_process_substitution_pipe_is_read(folder: Path) -> None:
    outcome = run([], folder, shell="{convcalc} model <(cat spec.yaml)")
    assert outcome.code == 0, outcome.err
    assert "Conv2d" in outcome.out


def test_fifo_with_a_writer_is_read(folder: Path) -> None:
    outcome = run([], folder, shell="(sleep 1; cat spec.yaml > fifo) & {convcalc} model fifo; wait")
    assert outcome.code == 0, outcome.err
    assert "Conv2d" in outcome.out


def test_a_file_over_the_limit_is_refused_unread(folder: Path) -> None:
    with open(folder / "big.yaml", "wb") as handle:
        handle.truncate(17 * 2**20)  # sparse: 17 MiB of zero bytes
    check_refusal(run(["model", "big.yaml"], folder), 2, "larger than 16 MiB")


def test_binary_file_is_not_text(folder: Path) -> None:
    (folder / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    check_refusal(run(["model", "bin.yaml"], folder), 2, "is not UTF-8 text")


@pytest.mark.parametrize(
    "target, needle",
    [
        ("/dev/null:Net", "/dev/null is a device, not a Python file"),
        ("/dev/zero:Net", "is a device, not a Python file"),
        ("missing.py:Net", "missing.py: no such file"),
        ("sub/:Net", "is a directory, not a Python file"),
        ("fifo.py:Net", "is a pipe, not a Python file"),
    ],
)
def test_python_targets_that_are_not_files(folder: Path, target: str, needle: str) -> None:
    check_refusal(run(["verify", target, "--input", "1x8x8"], folder), 2, needle)


@pytest.mark.parametrize("path", ["/dev/zero", "missing.yaml", "sub"])
def test_verify_spec_paths(folder: Path, path: str) -> None:
    check_refusal(run(["verify", path], folder), 2)


@pytest.mark.parametrize("path, needle", [("/dev/zero", "is a device, not a CSV file"), ("fifo", "is a pipe, not a CSV file")])
def test_batch_refuses_devices_and_fifos(folder: Path, path: str, needle: str) -> None:
    check_refusal(run(["batch", path], folder), 2, needle)


def test_batch_stdin_without_line_breaks_is_cut(folder: Path) -> None:
    outcome = run([], folder, shell="head -c 3000000 /dev/zero | {convcalc} batch -")
    check_refusal(outcome, 2, "a line longer than 1,000,000 characters")


@pytest.mark.parametrize("command", ["model", "verify", "draw", "examples", "batch"])
def test_a_symlink_loop_is_named_as_such(folder: Path, command: str) -> None:
    (folder / "loop1").symlink_to("loop2")
    (folder / "loop2").symlink_to("loop1")
    check_refusal(run([command, "loop1"], folder), 2, "loop1: Too many levels of symbolic links")


@pytest.fixture
def no_torch(tmp_path: Path) -> Path:
    """A stand-in ``torch`` that ends the process when imported: a refusal that comes out
    instead was made before torch was imported (which takes seconds)."""
    stand_in = tmp_path / "stand_in" / "torch"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise SystemExit('error: torch was imported')\n")
    return stand_in.parent


@pytest.mark.parametrize(
    "args, needle",
    [
        (["draw", "/dev/null:Net", "--input", "1x8x8"], "/dev/null is a device, not a Python file"),
        (["draw", "fifo.py:Net", "--input", "1x8x8"], "fifo.py is a pipe, not a Python file"),
        (["draw", "missing.py:Net", "--input", "1x8x8"], "missing.py: no such file"),
        (["why", "--model", "/dev/zero:Net", "--input", "1x8x8", "x"], "/dev/zero is a device, not a Python file"),
        (["why", "--model", "sub/:Net", "--input", "1x8x8", "x"], "is a directory, not a Python file"),
        (["verify", "fifo.py:Net", "--input", "1x8x8"], "fifo.py is a pipe, not a Python file"),
    ],
)
def test_python_targets_are_checked_before_torch(folder: Path, no_torch: Path, args: list[str], needle: str) -> None:
    check_refusal(run(args, folder, path=[no_torch]), 2, needle)


def test_why_model_takes_a_packaged_name(folder: Path) -> None:
    outcome = run(["why", "--model", "mnist_cnn", "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x1568 and 1152x10)"], folder)
    assert outcome.code == 0, outcome.err
    assert "mnist_cnn fits together" in outcome.out
