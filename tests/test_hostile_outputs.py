"""Files convcalc writes (``draw -o``, ``verify --emit-spec``, draw's default file): a regular file
or a new one in an existing folder, ``-`` or ``/dev/stdout`` for stdout; a FIFO (with or without a
reader), a device, a folder, a symlink loop or a missing folder is refused before any work, exit 2,
and nothing is written, truncated or replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hostile import check_refusal, run, snapshot

SPEC = "input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n"
NET = "import torch.nn as nn\n\nclass Net(nn.Sequential):\n    def __init__(self):\n        super().__init__(nn.Conv2d(1, 4, 3), nn.ReLU())\n"

#: Every option that names a file convcalc writes, as (argv before the path, argv after it).
WRITERS = {
    "draw -o": (["draw", "spec.yaml", "-o"], []),
    "verify --emit-spec": (["verify", "net.py:Net", "--input", "1x8x8", "--emit-spec"], []),
    "verify --emit-spec --force": (["verify", "net.py:Net", "--input", "1x8x8", "--emit-spec"], ["--force"]),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "to_fifo").symlink_to("fifo")
    return tmp_path


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize(
    "path, needle",
    [
        ("fifo", "is a pipe, not a regular file"),
        ("to_fifo", "is a pipe, not a regular file"),
        ("/dev/full", "is a device, not a regular file"),
        ("/dev/zero", "is a device, not a regular file"),
        ("sub", "is a directory; name a file in it"),
        ("loop1", "Too many levels of symbolic links"),
        ("missing/out.svg", "the folder"),
    ],
)
def test_output_targets_that_are_not_files_are_refused(folder: Path, writer: str, path: str, needle: str) -> None:
    before, after = WRITERS[writer]
    snap = snapshot(folder)
    check_refusal(run([*before, path, *after], folder, timeout=30), 2, needle)
    assert snapshot(folder) == snap
    assert stat.S_ISFIFO(os.lstat(folder / "fifo").st_mode) and (folder / "loop1").is_symlink()


@pytest.mark.parametrize("writer", ["draw -o", "verify --emit-spec"])
def test_a_fifo_with_a_reader_is_refused_too(folder: Path, writer: str) -> None:
    before, after = WRITERS[writer]
    args = " ".join([*before, "fifo", *after])
    outcome = run([], folder, shell=f"exec 3<>fifo; {{convcalc}} {args} 3>&-", timeout=40)  # fd 3 reads the FIFO
    check_refusal(outcome, 2, "is a pipe")


def test_draws_default_file_that_is_a_fifo(folder: Path) -> None:
    os.mkfifo(folder / "spec.svg")
    check_refusal(run(["draw", "spec.yaml"], folder, timeout=30), 2, "-o spec.svg: is a pipe")


@pytest.mark.parametrize("writer", ["draw -o", "verify --emit-spec"])
def test_dev_stdout_is_stdout(folder: Path, writer: str) -> None:
    before, after = WRITERS[writer]
    outcome = run([*before, "/dev/stdout", *after], folder, timeout=120)
    assert outcome.code == 0, outcome.err
    assert ("<svg" in outcome.out) if writer.startswith("draw") else ("layers:" in outcome.out)
    assert "Traceback" not in outcome.err


def test_emit_spec_to_dev_stdout_conflicts_with_json(folder: Path) -> None:
    before, _ = WRITERS["verify --emit-spec"]
    check_refusal(run([*before, "/dev/stdout", "--json"], folder, timeout=30), 2, "choose one")


def test_an_emitted_spec_gets_ordinary_permissions(folder: Path) -> None:
    before, _ = WRITERS["verify --emit-spec"]
    outcome = run([*before, "out.yaml"], folder, shell="umask 022; {convcalc} " + " ".join([*before, "out.yaml"]), timeout=120)
    assert outcome.code == 0, outcome.err
    assert stat.S_IMODE(os.stat(folder / "out.yaml").st_mode) == 0o644  # not mkstemp's 0600
