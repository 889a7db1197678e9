"""``convcalc verify path/model.py:Net`` and ``package.module:factory``: the user's module runs as
written, every leaf convcalc knows is recomputed on the input it received, failures are one line,
hooks never stay behind, and ``--emit-spec`` writes a spec with the same totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

from convcalc import load_model  # noqa: E402
from convcalc.verify import VerifyError, emit_spec, layer_from_module, load_python_model, verify_python  # noqa: E402

MODELS = '''
import torch
from torch import nn


class Net(nn.Module):
    """The MNIST CNN with nested containers, BatchNorm, GELU and an inplace ReLU."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2, 1),
            nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2, 1),
        )
        self.flatten = nn.Flatten()
        self.head = nn.Sequential(nn.Linear(1568, 32), nn.GELU(), nn.Dropout(0.3), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.head(self.flatten(self.features(x)))


class Reshaping(nn.Module):
    """A forward that reshapes between modules: it runs, but is no spec."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(8 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(self.conv(x).view(x.size(0), -1))


class Scale(nn.Module):
    """A leaf convcalc does not know: shown, not judged."""

    def __init__(self, channels):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x):
        return x * self.gain


class WithUnknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding="same", bias=False)
        self.scale = Scale(4)
        self.pool = nn.AdaptiveAvgPool2d((2, 1))

    def forward(self, x):
        return self.pool(self.scale(self.conv(x)))


class Masked(nn.Module):
    """Multiplies by a buffer: no spec layer holds a fixed tensor."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding="same", bias=False)
        self.register_buffer("mask", torch.ones(4, 1, 1))
        self.pool = nn.AdaptiveAvgPool2d((2, 1))

    def forward(self, x):
        return self.pool(self.conv(x) * self.mask)


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(16, 8, 3))

    def forward(self, x):
        return self.body(x)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(self.conv(x))


def factory(width=4, classes=2):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, classes))


def not_a_module():
    return 42


instance = factory(width=6)
'''


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def no_hooks(module: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in module.modules())


def test_a_model_file_verifies_every_leaf(models: Path, cli) -> None:
    model = load_python_model(f"{models}:Net", {"num_classes": 5})
    model.train()
    report = verify_python(model, (1, 28, 28))
    assert report.ok, report.mismatches
    assert [c.name for c in report.checks][:2] == ["features.0", "features.1"]
    assert all(c.confirmed for c in report.checks)
    assert report.checks[-1].output_shape == (1, 5)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert no_hooks(model) and all(m.training for m in model.modules())  # hooks gone, train() restored

    code, out, err = cli("verify", f"{models}:Net", "--input", "1x28x28", "--kwargs", '{"num_classes": 5}')
    assert code == 0, err
    assert "features.3" in out and "BatchNorm2d" in out and "✓ all 12 layers agree" in out


def test_json_and_classic_styles(models: Path, cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli("verify", f"{models}:Net", "--input", "1x28x28", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["device"] == "cpu" and data["torch_version"] == torch.__version__
    assert data["layers"][0] == {
        "index": 0, "name": "features.0", "type": "Conv2d", "input_shape": [1, 1, 28, 28],
        "output_shape": [1, 16, 26, 26], "params": 160, "trainable_params": 160, "macs": 97344,
        "flops": 194688, "depth": 1, "confirmed": True,
    }  # fmt: skip

    torchsummary = pytest.importorskip("torchsummary")
    torchsummary.summary(load_python_model(f"{models}:Net"), (1, 28, 28), device="cpu")
    expected = capsys.readouterr().out.splitlines()
    code, out, _ = cli("verify", f"{models}:Net", "--input", "1x28x28", "--style", "classic")
    assert code == 0 and out.splitlines()[: len(expected)] == expected


def test_a_package_factory_with_kwargs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    package = tmp_path / "userpkg_factory"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("verify", "userpkg_factory.nets:factory", "--input", "3x32x32", "--kwargs", '{"width": 8, "classes": 3}')
    assert code == 0, err
    assert "1×3" in out and "✓" in out
    code, out, err = cli("verify", "userpkg_factory.nets:instance", "--input", "3x8x8", "--json")
    assert code == 0 and json.loads(out)["totals"]["params"] == 3 * 6 * 9 + 6 + 6 * 2 + 2


def test_meta_device_and_a_leaf_convcalc_does_not_know(models: Path) -> None:
    report = verify_python(load_python_model(f"{models}:WithUnknown"), (3, 9, 7), device="meta")
    assert report.ok and report.device == "meta"
    scale = next(c for c in report.checks if c.name == "scale")
    assert scale.confirmed is None and scale.params == 4
    assert [c.confirmed for c in report.checks] == [True, None, True]
    assert report.checks[-1].output_shape == (1, 4, 2, 1)


def test_an_engine_disagreement_is_flagged(models: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    from convcalc.layers.pool import Pool

    real = Pool._output
    monkeypatch.setattr(Pool, "_output", lambda self, shape: (*real(self, shape)[:-1], real(self, shape)[-1] + 1))
    code, out, err = cli("verify", f"{models}:Net", "--input", "1x28x28")
    assert code == 1
    assert "Differences between convcalc and torch" in out and "features.2" in out and "output shape" in out
    assert "1×16×14×15" in out and "1×16×14×14" in out
    assert "disagreement" in err


def test_a_model_that_raises_is_summarised(models: Path, cli) -> None:
    model = load_python_model(f"{models}:Broken")
    with pytest.raises(VerifyError) as caught:
        verify_python(model, (1, 28, 28))
    message = caught.value.message
    assert "'body.1' (Conv2d)" in message and "RuntimeError" in message
    assert "models.py:" in message  # the user's line
    assert "convcalc agrees" in message and "in_channels" in message
    assert no_hooks(model)
    code, out, err = cli("verify", f"{models}:Broken", "--input", "1x28x28")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "target, words, expected",
    [
        ("missing.py:Net", ["missing.py", "no such file"], 2),  # a file that cannot be read: usage
        ("{models}:Nett", ["no attribute 'Nett'", "did you mean Net?"], 1),
        ("{models}:not_a_module", ["returned a int"], 1),
        ("no_such_package_xyz.models:Net", ["cannot import", "no_such_package_xyz"], 1),
    ],
)
def test_bad_targets_are_one_line(models: Path, cli, target: str, words: list[str], expected: int) -> None:
    code, out, err = cli("verify", target.format(models=models), "--input", "1x28x28")
    assert code == expected and out == ""
    assert len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err


def test_constructor_and_usage_errors(models: Path, cli) -> None:
    code, _, err = cli("verify", f"{models}:Net", "--input", "1x28x28", "--kwargs", '{"depth": 3}')
    assert code == 1 and "Net(depth=3) raised TypeError" in err
    code, _, err = cli("verify", f"{models}:Net")
    assert code == 2 and "--input" in err
    code, _, err = cli("verify", f"{models}:Net", "--input", "1x28x28", "--kwargs", "[1]")
    assert code == 2
    code, _, err = cli("verify", str(models), "--input", "1x28x28")
    assert code == 2 and ":ClassName" in err
    code, _, err = cli("verify", f"{models}:Net", "--input", "1x28x28", "--device", "cpu", "--max-memory", "10KiB")
    assert code == 1 and "--device meta" in err


def test_emit_spec_round_trip(models: Path, tmp_path: Path, cli) -> None:
    out_path = tmp_path / "net.yaml"
    code, _, err = cli("verify", f"{models}:Net", "--input", "1x28x28", "--emit-spec", out_path)
    assert code == 0, err
    assert f"wrote {out_path}" in err
    text = out_path.read_text()
    assert "Conv2d: {out_channels: 16, kernel_size: 3}" in text and "ReLU: {inplace: true}" in text
    report = verify_python(load_python_model(f"{models}:Net"), (1, 28, 28))
    summary = load_model(str(out_path)).summary()
    assert summary.totals == report.totals
    assert [r.output_shape for r in summary.rows] == [c.output_shape for c in report.checks]

    frozen = load_python_model(f"{models}:factory", {"width": 3})
    frozen[0].requires_grad_(False)
    report = verify_python(frozen, (3, 10, 10))
    emit_spec(report, str(tmp_path / "frozen.yaml"))
    again = load_model(str(tmp_path / "frozen.yaml")).summary()
    assert again.totals.non_trainable_params == 3 * 3 * 9 + 3 == report.totals.non_trainable_params


def test_emit_spec_refuses_what_a_spec_cannot_express(models: Path, tmp_path: Path, cli) -> None:
    """Multiplying by a buffer has no spec layer: the refusal names the fx node, its forward and
    the buffer, and nothing is written."""
    code, out, err = cli("verify", f"{models}:Masked", "--input", "3x8x8", "--emit-spec", tmp_path / "x.yaml")
    assert code == 1 and "✓" in out
    assert "fx node 'mul'" in err and "'mask'" in err and "a buffer" in err and not (tmp_path / "x.yaml").exists()


def test_emit_spec_writes_a_leaf_that_multiplies_by_its_parameter_as_a_scale(models: Path, tmp_path: Path, cli) -> None:
    """Once refused: ``x * self.gain`` inside an unknown leaf is a Scale row holding the parameter,
    and the spec has the model's parameters and output."""
    code, _, err = cli("verify", f"{models}:WithUnknown", "--input", "3x8x8", "--emit-spec", tmp_path / "x.yaml")
    assert code == 0, err
    layers = yaml.safe_load((tmp_path / "x.yaml").read_text())["layers"]
    assert [next(iter(e)) for e in layers] == ["Conv2d", "Scale", "AdaptiveAvgPool2d"]
    summary = load_model(str(tmp_path / "x.yaml")).summary()
    assert summary.totals.params == 3 * 4 * 9 + 4 and summary.rows[-1].output_shape[-3:] == (4, 2, 1)


@pytest.mark.parametrize("name, shape, types", [("Reshaping", "1x28x28", ["Conv2d", "Flatten", "Linear"]), ("Shared", "4x8x8", ["Conv2d", "Conv2d"])])
def test_emit_spec_writes_graphs_that_are_not_a_chain(models: Path, tmp_path: Path, cli, name: str, shape: str, types: list[str]) -> None:
    """Once refused ("does not read the previous module's output", "runs more than once"): torch.fx
    sees the view between the modules, and a module called twice is two rows tied together."""
    code, _, err = cli("verify", f"{models}:{name}", "--input", shape, "--emit-spec", tmp_path / "x.yaml")
    assert code == 0, err
    layers = yaml.safe_load((tmp_path / "x.yaml").read_text())["layers"]
    assert [next(iter(e)) for e in layers] == types
    report = verify_python(load_python_model(f"{models}:{name}"), tuple(map(int, shape.split("x"))))
    assert load_model(str(tmp_path / "x.yaml")).summary().totals.params == report.totals.params


def test_layer_from_module_reads_constructor_attributes() -> None:
    nn = torch.nn
    cases = [
        nn.Conv2d(3, 8, (3, 5), stride=2, padding="valid", dilation=2, groups=1, bias=False, padding_mode="reflect"),
        nn.ConvTranspose1d(4, 2, 3, stride=3, output_padding=1, groups=2),
        nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        nn.AvgPool2d(2, count_include_pad=False, divisor_override=3),
        nn.BatchNorm2d(8, affine=False),
        nn.LayerNorm([4, 4], bias=False),
        nn.GroupNorm(2, 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Dropout(0.1),
        nn.Softmax(dim=1),
        nn.PReLU(8),
        nn.Linear(10, 3, bias=False),
        nn.Flatten(0, 2),
        nn.AdaptiveAvgPool2d((None, 3)),
    ]
    for module in cases:
        layer = layer_from_module(module)
        assert layer is not None and layer.type_name == type(module).__name__, module
    conv = layer_from_module(cases[0])
    assert conv.bias is False and conv.padding == "valid" and conv.kernel_size == (3, 5)
    assert layer_from_module(cases[11]).num_params == 30

    class Custom(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    class Padded(nn.Conv2d):
        def _conv_forward(self, x, weight, bias):
            return super()._conv_forward(nn.functional.pad(x, (1, 1, 1, 1)), weight, bias)

    class Named(nn.Conv2d):  # same computation, another name (timm's Linear is an nn.Linear)
        pass

    assert layer_from_module(Custom(1, 1, 1)) is None  # a subclass that changes forward may compute anything
    assert layer_from_module(Padded(1, 1, 1)) is None
    assert layer_from_module(Named(1, 2, 3)) == layer_from_module(nn.Conv2d(1, 2, 3))


def test_emit_spec_keeps_shape_arguments_as_lists(tmp_path: Path, cli) -> None:
    """(3, 3) may become 3 for a kernel, but LayerNorm([4, 4]) is not LayerNorm(4)."""
    source = tmp_path / "shapes.py"
    source.write_text(
        "import torch.nn as nn\n\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, (3, 3), padding=1), nn.LayerNorm([4, 4]),\n"
        "                         nn.Flatten(), nn.Unflatten(1, (4, 16)))\n"
    )
    out_path = tmp_path / "shapes.yaml"
    code, _, err = cli("verify", f"{source}:make", "--input", "1x4x4", "--emit-spec", out_path)
    assert code == 0, err
    text = out_path.read_text()
    assert "kernel_size: 3" in text
    assert "normalized_shape: [4, 4]" in text and "unflattened_size: [4, 16]" in text
    assert load_model(str(out_path)).summary().totals.params == (4 * 9 + 4) + 2 * 16
