"""Every command in ``cli.COMMANDS``, in every encoding a careless setup gives (``PYTHONIOENCODING=
ascii`` or ``latin-1``, ``LC_ALL=C`` with ``PYTHONUTF8=0``), in each of its outputs (plain text,
``--json``, ``--explain`` or its richest text, an error, an error under ``--json``, ``--help``):
never a UnicodeEncodeError or an internal error, never output lost, never bytes the stream's
encoding does not hold (click writes UTF-8 to an ASCII stream unless told otherwise), and
``--json`` is valid JSON in that encoding.

A command added to ``cli.COMMANDS`` without cases here fails ``test_every_command_is_swept``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import ROOT, console

from convcalc import cli

LECTURE_X = "[[1,2,3,0,1],[0,1,5,1,0],[1,0,2,2,1],[1,1,2,0,0],[1,0,1,1,1]]"
LECTURE_W = "[[1,0,1],[0,1,0],[1,0,1]]"
LINEAR_ERROR = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x1568 and 1152x10)"

#: command → mode → (argv, exit code). Modes: plain, json, explain (the command's richest text),
#: error (a refusal whose message holds × or ≥), error-json (the same under --json).
CASES: dict[str, dict[str, tuple[list[str], int]]] = {
    "conv": {
        "plain": (["conv", "--in", "227", "--k", "11", "--s", "4"], 0),
        "json": (["conv", "--in", "227", "--k", "11", "--s", "4", "--json"], 0),
        "explain": (["conv", "--in", "7", "--k", "3", "--p", "1", "--s", "2", "--padding-mode", "reflect", "--explain"], 0),
        "values": (["conv", "--values", LECTURE_X, "--weight", LECTURE_W, "--explain"], 0),
        "error": (["conv", "--in", "2", "--k", "3"], 1),
        "error-json": (["conv", "--in", "2", "--k", "3", "--json"], 1),
    },
    "tconv": {
        "plain": (["tconv", "--in", "3", "--k", "3", "--s", "3", "--op", "1"], 0),
        "json": (["tconv", "--in", "3", "--k", "3", "--s", "3", "--json"], 0),
        "explain": (["tconv", "--values", "[[1,1],[1,1]]", "--weight", "[[1,2,3],[2,2,1],[3,2,1]]", "--s", "3", "--op", "1", "--explain"], 0),
        "error": (["tconv", "--in", "1", "--k", "3", "--p", "3"], 1),
        "error-json": (["tconv", "--in", "1", "--k", "3", "--p", "3", "--json"], 1),
    },
    "pool": {
        "plain": (["pool", "--in", "26", "--k", "2", "--s", "2", "--p", "1"], 0),
        "json": (["pool", "--in", "26", "--k", "2", "--json"], 0),
        "explain": (["pool", "--in", "5", "--k", "2", "--ceil", "--explain"], 0),
        "values": (["pool", "--values", LECTURE_X, "--k", "2", "--kind", "avg", "--ceil", "--explain"], 0),
        "error": (["pool", "--in", "8", "--k", "3", "--p", "2"], 2),
        "error-json": (["pool", "--in", "8", "--k", "3", "--p", "2", "--json"], 2),
    },
    "chain": {
        "plain": (["chain", "28", "conv:k=5", "maxpool:k=2"], 0),
        "json": (["chain", "28", "conv:k=5", "maxpool:k=2", "--json"], 0),
        "explain": (["chain", "1x28x28", "Conv2d(1, 16, 3)", "nn.MaxPool2d(2)", "--explain"], 0),
        "error": (["chain", "4", "conv:k=3", "conv:k=3"], 1),
        "error-json": (["chain", "4", "conv:k=3", "conv:k=3", "--json"], 1),
    },
    "model": {
        "plain": (["model", "resnet18"], 0),
        "json": (["model", "mnist_cnn", "--json"], 0),
        "explain": (["model", "--list"], 0),
        "error": (["model", "broken_cnn"], 1),
        "error-json": (["model", "broken_cnn", "--json"], 1),
    },
    "examples": {
        "plain": (["examples"], 0),
        "json": (["examples", "--json"], 0),
        "error": (["examples", "wrong.yaml"], 1),
        "error-json": (["examples", "wrong.yaml", "--json"], 1),
    },
    "batch": {
        "plain": (["batch", "answers.csv"], 1),
        "json": (["batch", "answers.csv", "--json"], 1),
        "error": (["batch", "bad.csv"], 2),
    },
    "verify": {
        "plain": (["verify", "mnist_cnn", "--device", "meta"], 0),
        "json": (["verify", "mnist_cnn", "--device", "meta", "--json"], 0),
        "error": (["verify", "broken_cnn"], 1),
        "error-json": (["verify", "broken_cnn", "--json"], 1),
    },
    "draw": {
        "plain": (["draw", "mnist_cnn", "-o", "-"], 0),
        "explain": (["draw", "unet", "--style", "graph", "-o", "-", "--title", "U-Net × 2 → ✓"], 0),
        "error": (["draw", "broken_cnn", "-o", "-"], 1),
    },
    "why": {
        "plain": (["why", LINEAR_ERROR], 0),
        "json": (["why", LINEAR_ERROR, "--json"], 0),
        "explain": (["why", LINEAR_ERROR, "--explain"], 0),
        "error": (["why", "hello"], 1),
        "error-json": (["why", "hello", "--json"], 1),
    },
    "solve": {
        "plain": (["solve", "conv", "--in", "28", "--out", "14", "--k", "3"], 0),
        "json": (["solve", "conv", "--in", "28", "--out", "14", "--k", "3", "--json"], 0),
        "explain": (["solve", "conv", "--in", "224", "--k", "3", "--s", "2", "--tf-same"], 0),
        "error": (["solve", "conv", "--in", "28", "--out", "100", "--k", "3", "--max-s", "1", "--max-d", "1", "--p", "0"], 1),
        "error-json": (["solve", "conv", "--in", "28", "--out", "100", "--k", "3", "--max-s", "1", "--max-d", "1", "--p", "0", "--json"], 1),
    },
}

ENCODINGS = {
    "ascii": {"PYTHONIOENCODING": "ascii"},
    "latin-1": {"PYTHONIOENCODING": "latin-1"},
    "C-locale": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
}
CODEC = {"ascii": "ascii", "latin-1": "latin-1", "C-locale": "ascii"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("encodings")
    (where / "wrong.yaml").write_text("examples:\n  - question: q × 2\n    input: 28\n    layers: [conv:k=3]\n    expect: 27\n")
    (where / "answers.csv").write_text("student,layer,in,k,expect\nann,conv,2,3,1\nbob,conv,28,3,26\n")
    (where / "bad.csv").write_text("in,k\n1,2\n")
    return where


def run(args: list[str], folder: Path, encoding: str) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LC_", "PYTHONIO", "PYTHONUTF8"))}
    env.update({"PYTHONPATH": str(ROOT), "COLUMNS": "100", **ENCODINGS[encoding]})
    env = {key: value for key, value in env.items() if value != ""}
    return subprocess.run([*console(), *args], cwd=folder, env=env, capture_output=True, timeout=120, check=False)


def check_bytes(data: bytes, encoding: str, what: str) -> str:
    """The text of ``data`` in the stream's encoding; UTF-8 written to it (bytes 0x80–0x9f, C1
    controls in latin-1, or any byte above 0x7f for ASCII) is a failure."""
    codec = CODEC[encoding]
    try:
        decoded = data.decode(codec)
    except UnicodeDecodeError as error:
        raise AssertionError(f"{what} is not {codec}: {data[max(0, error.start - 40) : error.start + 20]!r}") from None
    c1 = [c for c in decoded if "\x80" <= c <= "\x9f"]
    assert not c1, f"{what} holds UTF-8 bytes on a {codec} stream: {decoded[:300]!r}"
    return decoded


#: Every mode in ASCII (the strictest, and where click bypasses the fallback); plain text and
#: errors in latin-1 (holds × but not → or ✓) and the C locale (ASCII by the locale, not by
#: PYTHONIOENCODING). verify imports torch (seconds a run): its plain output in latin-1 only.
SWEEP = [(command, mode, "ascii") for command in sorted(CASES) for mode in CASES[command]] + [
    (command, mode, encoding)
    for encoding in ("latin-1", "C-locale")
    for command in sorted(CASES)
    for mode in ("plain", "explain", "error")
    if mode in CASES[command] and not (command == "verify" and mode == "plain" and encoding == "C-locale")
]


def test_every_command_is_swept() -> None:
    assert set(CASES) == set(cli.COMMANDS), f"add cases for {sorted(set(cli.COMMANDS) - set(CASES))}"
    for command, modes in CASES.items():
        assert {"plain", "error"} <= set(modes), f"{command}: at least plain output and an error"


@pytest.mark.parametrize("command, mode, encoding", SWEEP, ids=[f"{c}-{m}-{e}" for c, m, e in SWEEP])
def test_every_output_in_every_encoding(folder: Path, command: str, mode: str, encoding: str) -> None:
    args, code = CASES[command][mode]
    done = run(args, folder, encoding)
    out = check_bytes(done.stdout, encoding, "stdout")
    err = check_bytes(done.stderr, encoding, "stderr")
    both = out + err
    for word in ("Traceback", "internal error", "UnicodeEncodeError", "UnicodeDecodeError"):
        assert word not in both, both[-1500:]
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}: {err[-500:]}"
    if "json" in mode:
        documents = [json.loads(line) for line in out.splitlines()] if command == "batch" else [json.loads(out)]  # batch: JSON lines
        assert all(isinstance(d, dict) for d in documents)
        if mode == "error-json" and command != "examples":  # a wrong exercise is a result, not an error
            assert "error" in documents[0], documents[0]
    elif mode == "error" and command != "examples":
        assert "error: " in err, err
    if mode != "error" or command in ("draw", "examples"):
        assert out.strip(), f"no output: {err[-500:]}"


@pytest.mark.parametrize("command", [None, *sorted(cli.COMMANDS)])
def test_help_in_ascii(folder: Path, command: str | None) -> None:
    args = [command, "--help"] if command else ["--help"]
    done = run(args, folder, "ascii")
    assert done.returncode == 0, done.stderr
    text = check_bytes(done.stdout, "ascii", "help")
    assert "Usage:" in text and "Traceback" not in text


def test_no_arguments_prints_help_in_ascii(folder: Path) -> None:
    done = run([], folder, "ascii")
    assert "Usage:" in check_bytes(done.stdout + done.stderr, "ascii", "help")
    assert done.returncode == 2


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX locales")
