"""Golden files: the exact plain (piped) and rich (terminal: 120 columns, colourless) output of
every command on the packaged examples, errors included.

Each case is one file under ``tests/golden/<test>/<case>-<mode>.txt`` holding the command, its exit
code, stdout and stderr. When output changes on purpose, regenerate them all with

    python -m pytest tests/test_golden.py --update-goldens

and review ``git diff tests/golden`` like any other change. The torch version is masked.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples" / "models").glob("*.yaml"))
MODES = pytest.mark.parametrize("mode", ["plain", "rich"])

CALCULATOR = {
    "conv": "conv --in 227 --k 11 --s 4",
    "conv-channels": "conv --in 227 --k 11 --s 4 --cin 3 --cout 96",
    "conv-rect": "conv --in 32x64 --k 5",
    "conv-3d": "conv --in 16x112x112 --k 3 --s 2 --p 1",
    "conv-explain": "conv --in 9x8 --k 3 --s 2 --explain",
    "conv-explain-same-even": "conv --in 8 --k 4 --p same --explain",
    "conv-explain-same-even-dilated": "conv --in 7x6 --k 2x4 --d 3x1 --p same --explain",
    "conv-explain-dilated-1d": "conv --in 5 --k 3 --d 2 --p 1 --explain --dims 1",
    "conv-explain-reflect": "conv --in 8 --k 3 --p 2 --padding-mode reflect --explain",
    "conv-warning": "conv --in 11 --k 3 --s 3",
    "conv-json": "conv --in 227 --k 11 --s 4 --cin 3 --cout 96 --json",
    "conv-json-explain": "conv --in 9x8 --k 3 --s 2 --p same --json",
    "conv-error-kernel": "conv --in 8 --k 11",
    "conv-error-kernel-json": "conv --in 8 --k 11 --json",
    "conv-error-same-strided": "conv --in 8 --k 3 --s 2 --p same",
    "conv-error-reflect": "conv --in 3 --k 3 --p 3 --padding-mode reflect",
    "conv-error-groups": "conv --in 8 --k 3 --g 2 --cin 3",
    "conv-usage-size": "conv --in 3x --k 3",
    "tconv": "tconv --in 3 --k 3 --s 3 --op 1",
    "tconv-explain": "tconv --in 3 --k 3 --s 2 --p 1 --op 1 --explain",
    "tconv-explain-dilated": "tconv --in 4x3 --k 3 --d 2 --p 1 --explain",
    "tconv-json": "tconv --in 16 --k 4 --s 2 --p 1 --cin 8 --cout 4 --json",
    "tconv-error-op": "tconv --in 3 --k 3 --op 1",
    "tconv-error-padding": "tconv --in 1 --k 3 --p 3",
    "pool": "pool --in 26 --k 2 --s 2 --p 1",
    "pool-avg": "pool --in 24 --k 3 --kind avg",
    "pool-explain": "pool --in 7 --k 3 --s 2 --explain",
    "pool-explain-ceil": "pool --in 5 --k 2 --s 2 --p 1 --ceil --explain",
    "pool-explain-ceil-tiny": "pool --in 1 --k 2 --ceil --explain",
    "pool-json": "pool --in 26 --k 2 --s 2 --p 1 --json",
    "pool-error-padding": "pool --in 8 --k 3 --p 2",
    "chain": "chain 28 conv:k=5 maxpool:k=2",
    "chain-mnist": "chain 28 conv:k=3 maxpool:k=2,s=2,p=1 conv:k=3 maxpool:k=2,s=2,p=1",
    "chain-explain": "chain 64x48 conv:k=3,s=2,p=1 tconv:k=4,s=2,p=1 --explain",
    "chain-adaptive-explain": "chain 7 Conv2d:kernel_size=3 adaptiveavgpool:output_size=1 ReLU --explain",
    "chain-json": "chain 28 conv:k=5 maxpool:k=2 --json",
    "chain-error": "chain 4 conv:k=3 conv:k=3",
    "chain-error-typo": "chain 28 conv:k=5 maxpol:k=2",
}

MODEL_CASES = {
    "broken": "model examples/models/broken_cnn.yaml",
    "broken-json": "model examples/models/broken_cnn.yaml --json",
    "too-small": "model tests/data/too_small.yaml",
    "typo": "model tests/data/typo.yaml",
    "unet-misaligned": "model examples/models/unet.yaml --input 1x250x250",
    "vgg16-options": "model examples/models/vgg16.yaml --input 3x64x64 --batch 8 --dtype float16",
    "mnist-json": "model examples/models/mnist_cnn.yaml --json",
    "find-sizes": "model examples/models/mnist_cnn.yaml --find-sizes 1..40",
    "find-sizes-none": "model examples/models/broken_cnn.yaml --find-sizes 20..24",
    "missing-file": "model tests/data/no_such_spec.yaml",
    "list": "model --list",
    "by-name": "model mnist_cnn",
}

EXAMPLES_CASES = {
    "packaged": "examples",
    "course": "examples examples.yaml",
    "course-json": "examples examples.yaml --json",
    "wrong": "examples tests/data/wrong_examples.yaml",
}

VERIFY_CASES = {
    "mnist": "verify examples/models/mnist_cnn.yaml",
    "mnist-classic": "verify examples/models/mnist_cnn.yaml --style classic",
    "lenet-meta": "verify examples/models/lenet5.yaml --device meta",
    "conv": "verify conv --in 227 --k 11 --s 4 --cin 3 --cout 96",
    "tconv": "verify tconv --in 3 --k 3 --s 3 --op 1",
    "pool-ceil": "verify pool --in 5 --k 2 --s 2 --p 1 --ceil",
    "broken": "verify examples/models/broken_cnn.yaml",
    "conv-error": "verify conv --in 8 --k 11",
}


def transcript(terminal, command: str, mode: str) -> str:
    """The command, its exit code, stdout and stderr, as one text (torch's version masked)."""
    code, out, err = terminal(shlex.split(command), rich=mode == "rich")
    text = f"$ convcalc {command}\nexit {code}\n--- stdout\n{out}--- stderr\n{err}"
    return mask_torch_version(text)


def mask_torch_version(text: str) -> str:
    try:
        import torch
    except ImportError:
        return text
    return text.replace(str(torch.__version__), "<torch version>")


@pytest.fixture(autouse=True)
def _at_the_top_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths in the output are relative, the same in every checkout


@MODES
@pytest.mark.parametrize("case", list(CALCULATOR))
def test_calculator(terminal, golden, case: str, mode: str) -> None:
    golden(transcript(terminal, CALCULATOR[case], mode))


@MODES
@pytest.mark.parametrize("spec", MODELS, ids=[Path(m).stem for m in MODELS])
def test_model_examples(terminal, golden, spec: str, mode: str) -> None:
    golden(transcript(terminal, f"model {spec}", mode))


@MODES
@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_model_cases(terminal, golden, case: str, mode: str) -> None:
    golden(transcript(terminal, MODEL_CASES[case], mode))


@MODES
@pytest.mark.parametrize("case", list(EXAMPLES_CASES))
def test_examples(terminal, golden, case: str, mode: str) -> None:
    golden(transcript(terminal, EXAMPLES_CASES[case], mode))


@MODES
@pytest.mark.parametrize("case", list(VERIFY_CASES))
def test_verify(terminal, golden, case: str, mode: str) -> None:
    pytest.importorskip("torch")
    golden(transcript(terminal, VERIFY_CASES[case], mode))


def test_every_packaged_model_has_golden_files() -> None:
    """A new example model gets its goldens (the parametrisation above reads the folder)."""
    assert len(MODELS) >= 11
    assert all(re.fullmatch(r"examples/models/\w+\.yaml", m) for m in MODELS)
