"""One table of exit codes for every command (README, "Exit codes"):

2 — how the command was called: unknown option, malformed value, a value out of its range
    whatever the input, a malformed chain step, a file that cannot be read;
1 — a well-formed question whose geometry or model is invalid, or whose check disagrees;
0 — otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import check_refusal, run, snapshot

GOOD = "input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n"
TOO_SMALL = "input: [1, 2, 2]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n"
BAD_KEY = "input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3, strid: 2}\n"
WRONG_ANSWER = "examples:\n  - question: q\n    input: 28\n    layers: [conv:k=3]\n    expect: 27\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in {"good.yaml": GOOD, "small.yaml": TOO_SMALL, "badkey.yaml": BAD_KEY, "wrong.yaml": WRONG_ANSWER}.items():
        (tmp_path / name).write_text(text)
    return tmp_path


USAGE = [
    "conv --in 28 --k 3 --bogus",
    "conv --in 28",
    "conv --in 3x --k 3",
    "conv --in 0 --k 3",
    "conv --in 28 --k 3 --s 0",
    "conv --in 28 --k 3 --p -1",
    "conv --in 28 --k 0",
    "conv --in 28 --k 3 --d 0",
    "conv --in 28 --k 3 --g 0",
    "conv --in 28 --k 3 --cin 0",
    "conv --in 28 --k 3 --dims 4",
    "conv --in 28 --k 3 --padding-mode mirror",
    "tconv --in 3 --k 3 --op 1",
    "pool --in 8 --k 3 --p 2",
    "pool --in 8 --k 2 --kind median",
    "chain 28",
    "chain 28 conv",
    "chain 28 conv:k",
    "chain 28 conv:=3",
    "chain 28 :k=3",
    "chain 28 nosuchlayer:k=3",
    "chain 28 conv:kernal_size=3",
    "chain 28 conv:k=3,k=3",
    "chain 28 conv:k=three",
    "chain 0 conv:k=3",
    "model missing.yaml",
    "model .",
    "model good.yaml --batch 0",
    "model good.yaml --dtype int8",
    "model good.yaml --input 1x28",
    "model good.yaml --find-sizes 10",
    "examples missing.yaml",
    "verify missing.yaml",
    "verify good.yaml --device tpu",
    "verify good.yaml --max-memory lots",
    "verify good.yaml --kwargs {}",
    "verify conv --in 28 --k 3 --s 0",
    "nosuchcommand",
    "solve conv --in 28 --out 14 --max-k 255 --max-s 255 --max-d 32",
    "solve conv --in 28 --out 1 --k " + "9" * 400,
    "solve conv --in 28 --out 1 --s 0",
    "solve conv --in 28 --k " + "9" * 400 + " --tf-same",
]


@pytest.mark.parametrize("args", USAGE)
def test_usage_errors_exit_2(folder: Path, args: str) -> None:
    before = snapshot(folder)
    check_refusal(run(args.split(), folder), 2)
    assert snapshot(folder) == before


INVALID = [
    ("conv --in 2 --k 3", "larger than the padded input"),
    ("tconv --in 1 --k 3 --p 3", "too small"),
    ("chain 4 conv:k=3 conv:k=3", "step 2"),
    ("model small.yaml", "larger than the padded input"),
    ("model badkey.yaml", "has no argument 'strid'"),
    ("verify small.yaml", "larger than the padded input"),
    ("verify badkey.yaml", "has no argument 'strid'"),
    ("verify conv --in 2 --k 3", "larger than the padded input"),
]


@pytest.mark.parametrize("args, needle", INVALID)
def test_invalid_questions_exit_1(folder: Path, args: str, needle: str) -> None:
    check_refusal(run(args.split(), folder), 1, needle)


def test_a_wrong_exercise_exits_1(folder: Path) -> None:
    outcome = run(["examples", "wrong.yaml"], folder)
    assert outcome.code == 1 and "0 of 1 agree" in outcome.out


@pytest.mark.parametrize("args, code", [("conv --in 28 --k 3 --s 0", 2), ("conv --in 2 --k 3", 1), ("model missing.yaml", 2), ("model small.yaml", 1)])
def test_json_errors_keep_the_exit_code(folder: Path, args: str, code: int) -> None:
    outcome = run([*args.split(), "--json"], folder)
    assert outcome.code == code
    assert "error" in json.loads(outcome.out)


@pytest.mark.parametrize("args", ["conv --in 28 --k 3", "chain 28 conv:k=3", "model good.yaml", "examples"])
def test_success_exits_0(folder: Path, args: str) -> None:
    outcome = run(args.split(), folder)
    assert outcome.code == 0, outcome.err
