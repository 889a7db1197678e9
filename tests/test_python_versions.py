"""The core (formulas, layers, spec, graph, calc; no torch, rich or click) runs on every Python
that pyproject admits and this machine has (pyenv's 3.9 … 3.13), and answers as it does here."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

#: What the core computes: every packaged model's totals and output, a broken model's message,
#: the calculator's steps, and a geometry error's fields.
SCRIPT = r"""
import json, sys
import convcalc
from convcalc.calc import chain
from convcalc.graph import load_model, model_from_text
from convcalc.packaged import model_names, packaged_model
answers = {}
for name in model_names():
    try:
        summary = load_model(packaged_model(name)).summary()
        answers[name] = [list(summary.rows[-1].output_shape), summary.totals.params, summary.totals.macs]
    except convcalc.ConvcalcError as error:
        answers[name] = error.message
answers["chain"] = [list(step.output) for step in chain((28, 28), ["conv:k=3", "maxpool:k=2,s=2,p=1", "tconv:k=4,s=2,p=1"])]
try:
    convcalc.layer("Conv2d", in_channels=1, out_channels=1, kernel_size=11).output_shape((1, 1, 8, 8))
except convcalc.ShapeError as error:
    answers["error"] = error.as_dict()
try:
    model_from_text("input: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n  - Linear: {in_features: 5, out: 2}\n", "s.yaml").summary()
except convcalc.ConvcalcError as error:
    answers["model error"] = error.message
assert not {"torch", "rich", "click"} & set(sys.modules), "the core imported torch, rich or click"
print(json.dumps(answers, sort_keys=True))
"""


def admitted() -> tuple[int, int]:
    text = (ROOT / "pyproject.toml").read_text()
    major, minor = re.search(r'requires-python = ">=(\d+)\.(\d+)"', text).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


def interpreters() -> list[str]:
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = []
    for python in sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3"))):
        version = re.search(r"versions/3\.(\d+)", python)
        if version and (3, int(version.group(1))) >= admitted():
            found.append(python)
    return found


def run_core(python: str) -> dict:
    # PyYAML is the core's one dependency: only it is put on the path (its pure-Python half
    # works on every version; its C extension, built for this interpreter, is skipped elsewhere)
    isolated = Path(os.environ.get("TMPDIR", "/tmp")) / f"convcalc-core-{os.getpid()}"
    isolated.mkdir(exist_ok=True)
    link = isolated / "yaml"
    if not link.exists():
        link.symlink_to(Path(yaml.__file__).parent)
    done = subprocess.run(
        [python, "-I", "-B", "-c", f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(isolated)!r}]\n{SCRIPT}"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, f"{python}: {done.stderr.strip().splitlines()[-3:]}"
    return json.loads(done.stdout)


VERSIONS = interpreters()


def test_this_machine_has_other_versions_or_says_so() -> None:
    if not VERSIONS:
        pytest.skip("no pyenv interpreters here")
    assert any(f"3.{admitted()[1]}" in v for v in VERSIONS), "the oldest admitted version is not tested"


@pytest.mark.parametrize("python", VERSIONS, ids=[re.search(r"versions/([^/]+)", v).group(1) for v in VERSIONS])  # type: ignore[union-attr]
def test_the_core_answers_alike_on(python: str) -> None:
    assert run_core(python) == run_core(sys.executable)
