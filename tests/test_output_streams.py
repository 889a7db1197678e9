"""Output that cannot be written, and encodings that cannot hold convcalc's symbols (issue 8),
driven through the real console script in subprocesses: closed stdout, a full device, a reader
that leaves, ASCII and Latin-1 streams. Never a traceback, never an internal error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = "×→−✓✗█■…"


def model_path(stem: str) -> str:
    for folder in ("examples/models", "convcalc/data/models"):
        path = ROOT / folder / f"{stem}.yaml"
        if path.exists():
            return str(path)
    raise FileNotFoundError(stem)


def script() -> list[str]:
    """The installed ``convcalc`` console script (it imports this checkout: PYTHONPATH below)."""
    found = Path(sys.executable).with_name("convcalc")
    return [str(found)] if found.exists() else [sys.executable, "-m", "convcalc"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONIOENCODING", "PYTHONUTF8", "LC_ALL", "LANG", "NO_COLOR"}}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def convcalc(args: list[str], *, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """Run the script; stdout and stderr are pipes unless ``kwargs`` says otherwise."""
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run([*script(), *args], env=env or environment(), timeout=120, check=False, **streams)  # type: ignore[call-overload, no-any-return]


def assert_clean(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text and "internal error" not in text, text
    return text


CALC = ["conv", "--in", "227", "--k", "11", "--s", "4"]
CASES = {
    "conv": CALC,
    "explain": ["conv", "--in", "32", "--k", "5", "--explain"],
    "chain": ["chain", "28", "conv:k=5", "maxpool:k=2"],
    "model": ["model", "MNIST"],
    "examples": ["examples"],
    "error": ["conv", "--in", "8", "--k", "11"],
    "values": ["conv", "--values", "[[1,2,3],[4,5,6],[7,8,9]]", "--weight", "[[1,0],[0,1]]", "--explain"],
}


def case(name: str) -> list[str]:
    return [model_path("mnist_cnn") if a == "MNIST" else a for a in CASES[name]]


@pytest.mark.parametrize("name", ["conv", "model"])
def test_closed_stdout_is_one_line_and_nonzero(name: str) -> None:
    done = convcalc(case(name), stdout=None, preexec_fn=lambda: os.close(1))
    err = assert_clean(done.stderr)
    assert done.returncode == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "closed" in err


@pytest.mark.parametrize("name", ["conv", "explain", "model", "examples"])
def test_full_device_is_one_line_and_nonzero(name: str) -> None:
    with open("/dev/full", "wb") as full:
        done = convcalc(case(name), stdout=full)
    err = assert_clean(done.stderr)
    assert done.returncode == 1
    assert err.count("\n") == 1 and "cannot write the output" in err and "No space left" in err


def test_closed_stderr_still_answers() -> None:
    done = convcalc(CALC, stderr=None, preexec_fn=lambda: os.close(2))
    assert done.returncode == 0 and done.stdout == b"55\n"


def test_a_reader_that_leaves_is_quiet() -> None:
    """``convcalc model … | head -1``: no error line, no traceback."""
    command = f"{' '.join(script())} model {model_path('resnet50')} | head -1"
    done = subprocess.run(["sh", "-c", command], env=environment(), capture_output=True, timeout=120, check=False)
    assert done.stdout.decode().startswith("ResNet-50")
    assert done.stderr == b""


ENCODINGS = {
    "ascii": {"PYTHONIOENCODING": "ascii"},
    "latin-1": {"PYTHONIOENCODING": "latin-1"},
    "C locale": {"LC_ALL": "C", "PYTHONUTF8": "0"},
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("name", list(CASES))
def test_encodings_that_cannot_hold_the_symbols_get_ascii(encoding: str, name: str) -> None:
    done = convcalc(case(name), env=environment(**ENCODINGS[encoding]))
    assert_clean(done.stderr)
    assert done.returncode == (1 if name == "error" else 0), done.stderr
    codec = "latin-1" if encoding == "latin-1" else "ascii"
    out, err = done.stdout.decode(codec), done.stderr.decode(codec)  # raises if a byte is outside it
    for symbol in "→−✓█":
        assert symbol not in out + err
    if name == "chain":
        assert out == "28 -> 24 -> 12\n"
    if name == "explain":
        assert "32 -> 28" in out and "#####" in out
    if name == "examples":
        assert out.startswith("ok 1.") and "of 12 agree" in out
    if name == "values":
        assert "out[0][0] = 1x1 + 2x0 + 4x0 + 5x1 = 6" in out.replace("×", "x")  # latin-1 has ×
    if name == "model":
        assert "1x16x26x26" in out or "1×16×26×26" in out


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("args", [[*CALC, "--json"], ["chain", "28", "conv:k=5", "maxpool:k=2", "--json"],
                                  ["model", "MNIST", "--json"], ["conv", "--in", "8", "--k", "11", "--json"],
                                  ["model", "--list", "--json"], ["examples", "--json"],
                                  ["why", "mat1 and mat2 shapes cannot be multiplied (1x1568 and 1152x10)", "--json"]])
def test_json_is_valid_and_exact_in_every_encoding(encoding: str, args: list[str]) -> None:
    args = [model_path("mnist_cnn") if a == "MNIST" else a for a in args]
    done = convcalc(args, env=environment(**ENCODINGS[encoding]))
    assert_clean(done.stderr)
    data = json.loads(done.stdout.decode("ascii"))  # \u escapes: the values themselves are exact
    reference = json.loads(convcalc(args, env=environment(PYTHONIOENCODING="utf-8")).stdout.decode("utf-8"))
    assert data == reference


def test_utf8_output_keeps_the_symbols() -> None:
    """The fallback is only for streams that need it."""
    done = convcalc(case("chain"), env=environment(PYTHONIOENCODING="utf-8"))
    assert done.stdout.decode("utf-8") == "28 → 24 → 12\n"
