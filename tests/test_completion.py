"""Shell completion (click's) through the real console script: the scripts for bash, zsh and fish
load, and completing words gives commands, options, choices and the packaged model names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def script() -> str:
    found = Path(sys.executable).with_name("convcalc")
    if not found.exists():
        pytest.skip("the convcalc console script is not installed next to this python")
    return str(found)


def environment(**extra: str) -> dict[str, str]:
    """The console script's folder first on PATH: click's bash function calls ``convcalc`` by name
    (CI runs ``.venv/bin/python -m pytest`` without the venv on PATH)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path, **extra}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_of_each_shell(shell: str) -> None:
    done = subprocess.run([script()], env=environment(_CONVCALC_COMPLETE=f"{shell}_source"), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert "_convcalc_completion" in done.stdout and f"_CONVCALC_COMPLETE={shell}_complete" in done.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("convcalc mo", {"model"}),
        ("convcalc ch", {"chain"}),
        ("convcalc model --wi", {"--wide"}),
        ("convcalc model res", {"resnet18", "resnet50"}),
        ("convcalc conv --padding-mode re", {"reflect", "replicate"}),
        ("convcalc pool --kind a", {"avg"}),
        ("convcalc draw vg", {"vgg16", "vgg11_bn"}),
        ("convcalc draw mnist_cnn --style g", {"graph"}),
    ],
)
def test_bash_completes_words(words: str, expected: set[str]) -> None:
    """The bash function itself, sourced in a real bash, fills COMPREPLY."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    program = f"""
        eval "$(_CONVCALC_COMPLETE=bash_source {script()})"
        COMP_WORDS=({words}); COMP_CWORD={len(words.split()) - 1}
        _convcalc_completion convcalc
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    done = subprocess.run([bash, "-c", program], env=environment(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    offered = set(done.stdout.split())
    assert expected <= offered, offered
