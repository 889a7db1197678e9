"""Packaged data: the exercises and example models ship inside the package and are found by name,
from any folder — in the source tree and (slow) in a non-editable install into a fresh venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc import packaged

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "convcalc" / "data"


def test_every_packaged_model_is_listed_once_per_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("model", "--list")
    assert code == 0 and err == ""
    stems = sorted(p.stem for p in (DATA / "models").glob("*.yaml"))
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == stems
    assert "mnist_cnn        MNIST CNN, input 1×28×28" in lines


@pytest.mark.parametrize("name", ["mnist_cnn", "mnist_cnn.yaml", "vgg16"])
def test_model_by_stem_from_another_folder(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    by_name = cli("model", name, "--json")
    monkeypatch.chdir(ROOT)
    by_path = cli("model", f"examples/models/{Path(name).stem}.yaml", "--json")
    assert by_name[0] == 0 and by_name[1] == by_path[1]


def test_a_file_in_the_current_folder_wins(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vgg16").write_text("name: mine\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("model", "vgg16")
    assert code == 0 and out.startswith("mine: input 1×1×8×8")
    code, out, _ = cli("model", "vgg16.yaml")
    assert code == 0 and out.startswith("VGG-16")


def test_an_unknown_name_suggests_the_packaged_one(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # neither a file nor a packaged name: a file that cannot be read, a usage error (exit 2)
    code, out, err = cli("model", "mnist_cn")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "did you mean mnist_cnn?" in err and "convcalc model --list" in err
    code, _, err = cli("model", "sub/mnist_cnn.yaml")
    assert code == 2 and err == "error: sub/mnist_cnn.yaml: no such file\n"


def test_the_broken_example_names_its_file_and_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("model", "broken_cnn")
    assert code == 1 and "Flatten    1×32×11×11  1×3872" in out
    assert err.startswith("error: Linear at broken_cnn.yaml:11 expects in_features = 3872")


def test_examples_uses_the_packaged_file_from_any_folder(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("examples")
    assert code == 0 and out.endswith("12 of 12 agree\n")
    code, out, _ = cli("examples", "--path")
    assert code == 0 and Path(out.strip()) == DATA / "examples.yaml"


def test_verify_by_stem_uses_the_same_resolver(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("verify", "lecture_cnn", "--device", "meta")
    assert code == 0 and out.startswith("Lecture CNN: input 1×1×28×28")


def test_the_clone_paths_are_links_to_the_single_copy() -> None:
    assert (ROOT / "examples" / "models").resolve() == DATA / "models"
    assert (ROOT / "examples.yaml").resolve() == DATA / "examples.yaml"
    assert packaged.packaged_model("resnet50") == str(DATA / "models" / "resnet50.yaml")
    assert packaged.packaged_model("../resnet50") is None


@pytest.mark.slow
def test_a_non_editable_install_works_from_another_folder(tmp_path: Path) -> None:
    """`pip install .` into a fresh venv (no system site-packages), then run from an empty folder."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT, source, symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    binary = venv / ("Scripts" if os.name == "nt" else "bin")
    install = subprocess.run(
        [str(binary / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def convcalc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary / "convcalc"), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=False)

    where = subprocess.run([str(binary / "python"), "-c", "import convcalc; print(convcalc.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=False)
    assert str(venv) in where.stdout, "the test must run the installed copy, not the source tree"
    done = convcalc("examples")
    assert done.returncode == 0 and done.stdout.endswith("12 of 12 agree\n"), done.stderr
    done = convcalc("model", "mnist_cnn")
    assert done.returncode == 0 and "Total params:                    55,338" in done.stdout, done.stderr
    done = convcalc("model", "--list")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == len(list((DATA / "models").glob("*.yaml")))
    done = convcalc("model", "broken_cnn")
    assert done.returncode == 1 and "broken_cnn.yaml:11" in done.stderr
    done = convcalc("chain", "28", "conv:k=5", "maxpool:k=2")
    assert done.returncode == 0 and done.stdout == "28 → 24 → 12\n"
