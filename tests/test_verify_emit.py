"""``verify --emit-spec``: safe (never over a file without --force, never the model's source,
atomic, one-line errors) and exact (the spec is built as torch modules with the model's weights
and must give the model's output on the same random input)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

from convcalc import load_model  # noqa: E402

MODELS = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.bn(self.conv(x)))


    def make():
        return Chain()


    class Residual(nn.Module):
        """torchvision's BasicBlock: out += identity passes the chaining check (same tensor)."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(4)
            self.relu2 = nn.ReLU(inplace=True)

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu2(out)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(4, 4, 1)
            self.block = Residual()

        def forward(self, x):
            return self.block(self.stem(x))


    class BatchNormAct2d(nn.BatchNorm2d):
        """timm's BatchNormAct2d: batch norm in its own forward, then its children; here always with the
        batch's statistics (training=True), which no spec layer does in eval mode (timm's own form, with
        False, is a BatchNorm2d row: test_verify_emit_sizes)."""

        def __init__(self, channels):
            super().__init__(channels)
            self.drop = nn.Identity()
            self.act = nn.ReLU()

        def forward(self, x):
            x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, True, 0.0, self.eps)
            return self.act(self.drop(x))


    class Untraceable(nn.Module):
        """A branch on a computed value (fx cannot trace it) and a multiply in its own forward."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            if float(y.abs().sum()) >= 0:
                y = y * 2
            return y


    class OwnWork(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Untraceable()
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.pool(self.block(x))


    class TimmStyle(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3)
            self.bn1 = BatchNormAct2d(4)

        def forward(self, x):
            return self.bn1(self.conv1(x))
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "emit_models.py"
    path.write_text(MODELS)
    return path


def emit(cli, models: Path, name: str, out: object, *extra: str, shape: str = "3x8x8"):
    return cli("verify", f"{models}:{name}", "--input", shape, "--emit-spec", str(out), *extra)


def test_the_spec_is_named_after_the_class_and_computes_the_same(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "chain.yaml"
    code, _, err = emit(cli, models, "make", out)
    assert code == 0, err
    assert yaml.safe_load(out.read_text())["name"] == "Chain"  # the class, not the factory
    assert "same output as the model" in err
    assert load_model(str(out)).summary().totals.params == 3 * 4 * 9 + 4 + 8
    assert sorted(os.listdir(tmp_path)) == ["chain.yaml", "emit_models.py"] or "__pycache__" in os.listdir(tmp_path)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]  # no temporary file left


def test_an_in_place_residual_is_written_as_an_add(models: Path, tmp_path: Path, cli) -> None:
    """``out += identity`` passes the chaining check (same tensor); torch.fx sees the add, so the
    spec has it (and is proven to compute the model's output). An untraceable model with the same
    residual is refused naming the block: tests/test_verify_emit_graph.py."""
    out = tmp_path / "net.yaml"
    code, _, err = emit(cli, models, "Net", out, shape="4x6x6")
    assert code == 0, err
    layers = yaml.safe_load(out.read_text())["layers"]
    add = next(e for e in layers if "Add" in e)
    assert sorted(add["Add"]) == ["block_bn2", "stem"]  # the block's output and its input (the identity)
    assert "same output as the model" in err


def test_the_refusal_names_the_real_cause(models: Path, tmp_path: Path, cli) -> None:
    """timm's BatchNormAct2d computes batch norm itself; its child bn1.drop is not the cause."""
    out = tmp_path / "timm.yaml"
    code, _, err = emit(cli, models, "TimmStyle", out)
    assert code == 1 and not out.exists()
    message = err.strip().splitlines()[-1]
    assert "'bn1'" in message and "BatchNormAct2d" in message and "bn1.drop" not in message


def test_without_fx_the_refusal_names_the_block_and_its_first_operator(models: Path, tmp_path: Path, cli) -> None:
    """fx cannot trace a branch on a value; the chain of leaves then runs the model once more and
    names the block that computes between its children, and the first torch operator it runs."""
    out = tmp_path / "own.yaml"
    code, _, err = emit(cli, models, "OwnWork", out)
    assert code == 1 and not out.exists()
    message = err.strip().splitlines()[-1]
    assert "'block'" in message and "Untraceable" in message and "torch.fx cannot trace it" in message, message
    assert "computes in its own forward (torch's 'abs' first) around its child modules" in message, message


def test_an_existing_file_needs_force(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "kept.yaml"
    out.write_text("precious\n")
    code, _, err = emit(cli, models, "Chain", out)
    assert code == 2 and out.read_text() == "precious\n"
    assert "--force" in err and len(err.strip().splitlines()) == 1
    code, _, err = emit(cli, models, "Chain", out, "--force")
    assert code == 0, err
    assert yaml.safe_load(out.read_text())["name"] == "Chain"


def test_never_the_models_source(models: Path, cli) -> None:
    before = models.read_text()
    code, _, err = emit(cli, models, "Chain", models, "--force")
    assert code == 2 and models.read_text() == before
    assert "source" in err


def test_a_symlink_is_replaced_never_written_through(models: Path, tmp_path: Path, cli) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    code, _, err = emit(cli, models, "Chain", link)
    assert code == 2 and target.read_text() == "untouched\n"
    code, _, err = emit(cli, models, "Chain", link, "--force")
    assert code == 0, err
    assert target.read_text() == "untouched\n" and not link.is_symlink() and "Chain" in link.read_text()
    code, _, err = emit(cli, models, "Chain", tmp_path / "to_source.yaml")
    (tmp_path / "to_source.yaml").unlink()
    (tmp_path / "to_source.yaml").symlink_to(models)
    code, _, err = emit(cli, models, "Chain", tmp_path / "to_source.yaml", "--force")
    assert code == 2 and "source" in err and (tmp_path / "to_source.yaml").is_symlink()


@pytest.mark.parametrize(
    "where, code, words",
    [
        ("{tmp}/missing/x.yaml", 2, "does not exist"),
        ("{tmp}", 2, "is a directory"),
        ("/dev/full", 2, "not a regular file"),
        ("", 2, "needs a file name"),
    ],
)
def test_bad_destinations_are_one_line(models: Path, tmp_path: Path, cli, where: str, code: int, words: str) -> None:
    result = emit(cli, models, "Chain", where.format(tmp=tmp_path))
    assert result[0] == code and result[1] == ""
    assert words in result[2] and len(result[2].strip().splitlines()) == 1 and "Traceback" not in result[2]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder(models: Path, tmp_path: Path, cli) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = emit(cli, models, "Chain", folder / "x.yaml")
    finally:
        folder.chmod(0o755)
    assert code == 2 and "cannot write" in err


def test_dash_writes_the_spec_to_stdout(models: Path, cli) -> None:
    code, out, err = emit(cli, models, "Chain", "-")
    assert code == 0, err
    data = yaml.safe_load(out)  # stdout is the spec alone; the report went to stderr
    assert data["name"] == "Chain" and [next(iter(e)) if isinstance(e, dict) else e for e in data["layers"]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert "✓" in err


@pytest.mark.parametrize("extra, words", [(["--json"], "choose one"), (["--device", "meta"], "not meta")])
def test_options_that_cannot_go_with_emit_spec(models: Path, cli, extra: list[str], words: str) -> None:
    code, out, err = emit(cli, models, "Chain", "-", *extra)
    assert code == 2 and out == "" and words in err


def test_force_alone_is_a_usage_error(models: Path, cli) -> None:
    code, _, err = cli("verify", f"{models}:Chain", "--input", "3x8x8", "--force")
    assert code == 2 and "--emit-spec" in err
