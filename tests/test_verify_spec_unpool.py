"""MaxUnpool inside a spec (issue 13): a MaxUnpool takes the indices of the nearest max pool above it
with ``return_indices: true`` whose output has its input's shape (SegNet's decoder undoes its
encoder's pools in reverse order); ``verify`` runs it in torch and judges it. A MaxUnpool with no
such pool, or whose pool's indices can point past its output (torch raises for some inputs), is a
one-line refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from convcalc.packaged import load_named_model
from convcalc.verify.specs import build_module, materialize

SEGNET = """\
name: segnet
input: [2, 8, 8]
layers:
  - Conv2d: {out: 4, k: 3, p: 1}
  - MaxPool2d: {k: 2, return_indices: true}
  - Conv2d: {out: 4, k: 3, p: 1}
  - MaxPool2d: {k: 2, return_indices: true}
  - Conv2d: {out: 4, k: 3, p: 1}
  - MaxUnpool2d: {k: 2}
  - Conv2d: {out: 4, k: 3, p: 1}
  - MaxUnpool2d: {k: 2}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_segnet_spec_is_verified_layer_by_layer(tmp_path: Path, cli) -> None:
    code, out, err = cli("verify", write(tmp_path, SEGNET), "--json", "--batch", "3")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] is True
    assert all(layer["confirmed"] for layer in report["layers"])
    unpools = [layer for layer in report["layers"] if layer["type"] == "MaxUnpool2d"]
    # torch, by hand: 8 → pool 4 → pool 2 → unpool 4 → unpool 8
    x = torch.zeros(3, 2, 8, 8)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    values, first = torch.nn.MaxPool2d(2, return_indices=True)(conv(x))
    values, second = torch.nn.MaxPool2d(2, return_indices=True)(values)
    middle = torch.nn.MaxUnpool2d(2)(values, second)
    last = torch.nn.MaxUnpool2d(2)(middle, first)
    assert [u["output_shape"] for u in unpools] == [list(middle.shape), list(last.shape)]


def test_each_unpool_takes_the_indices_of_the_pool_it_undoes(tmp_path: Path) -> None:
    """The spec's torch model computes what SegNet's hand-written forward computes (reverse order)."""
    summary = load_named_model(str(write(tmp_path, SEGNET))).summary(batch=2)
    net = build_module(summary, torch)
    materialize(torch, net, torch.device("cpu"), torch.float32)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn_like(parameter))
        conv1, pool1, conv2, pool2, conv3, unpool2, conv4, unpool1 = net.layers
        x = torch.randn(2, 2, 8, 8)
        a, i1 = pool1(conv1(x))
        b, i2 = pool2(conv2(a))
        expected = unpool1(conv4(unpool2(conv3(b), i2)), i1)
        got = net(x)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(
    ("pool", "unpool", "shape"),
    [("MaxPool1d", "MaxUnpool1d", "[3, 12]"), ("MaxPool3d", "MaxUnpool3d", "[1, 4, 6, 8]"), ("AdaptiveMaxPool2d", "MaxUnpool2d", "[1, 8, 8]")],
)
def test_every_dimension_and_the_adaptive_pool(tmp_path: Path, cli, pool: str, unpool: str, shape: str) -> None:
    settings = "{output_size: 4, return_indices: true}" if pool.startswith("Adaptive") else "{k: 2, return_indices: true}"
    spec = f"name: one\ninput: {shape}\nlayers:\n  - {pool}: {settings}\n  - {unpool}: {{k: 2}}\n"
    code, out, err = cli("verify", write(tmp_path, spec), "--json")
    assert code == 0, err
    layers = json.loads(out)["layers"]
    dims = int(unpool[-2])
    x = torch.zeros((1, *json.loads(shape)))
    torch_pool = getattr(torch.nn, pool)(4, return_indices=True) if pool.startswith("Adaptive") else getattr(torch.nn, pool)(2, return_indices=True)
    values, indices = torch_pool(x)
    expected = getattr(torch.nn, unpool)(2)(values, indices)
    assert layers[1]["output_shape"] == list(expected.shape) and layers[1]["confirmed"]
    assert len(expected.shape) == dims + 2


def test_an_unpool_without_indices_is_refused(tmp_path: Path, cli) -> None:
    spec = "name: none\ninput: [1, 8, 8]\nlayers:\n  - MaxPool2d: {k: 2}\n  - MaxUnpool2d: {k: 2}\n"
    code, out, err = cli("verify", write(tmp_path, spec))
    assert code == 1 and out == ""
    assert "return_indices: true" in err and "line 5" in err and len(err.strip().splitlines()) == 1


def test_indices_that_can_point_past_the_output_are_refused(tmp_path: Path, cli) -> None:
    """9×9 pooled by 2 → 4×4, unpooled to 8×8: a maximum at (7, 7) is index 70 ≥ 64, and torch raises."""
    spec = "name: odd\ninput: [1, 9, 9]\nlayers:\n  - MaxPool2d: {k: 2, return_indices: true}\n  - MaxUnpool2d: {k: 2}\n"
    code, out, err = cli("verify", write(tmp_path, spec))
    assert code == 1 and out == ""
    assert "70" in err and "8×8" in err and len(err.strip().splitlines()) == 1
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 7, 7] = 1.0
    values, indices = torch.nn.MaxPool2d(2, return_indices=True)(x)
    assert int(indices.max()) == 70
    with pytest.raises(RuntimeError):
        torch.nn.MaxUnpool2d(2)(values, indices)
