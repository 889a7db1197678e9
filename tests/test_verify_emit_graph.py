"""``verify --emit-spec`` on graph models (torch.fx): residual adds (``+=`` and ``+``), U-Net skips
(``torch.cat``), flatten/view/reshape, functional layers, a module called twice, tied weights,
identical submodules as ``blocks:``, and refusals that name the fx node and the reason.

Every emission is checked here independently of the emitter: the written spec, loaded as
``convcalc model`` loads it, has verify's params, MACs and output shape on the real model, and
the spec built as torch modules (weights copied from the model's stateful leaves, in order) gives
the model's output on a random input."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

torch = pytest.importorskip("torch")

from convcalc import load_model

MODELS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Basic(nn.Module):
        """torchvision's BasicBlock: out += identity (or out = out + identity)."""

        def __init__(self, cin, planes, stride=1, in_place=True):
            super().__init__()
            self.downsample = None  # defined first, as it runs first (spec_output copies weights in definition order)
            if stride != 1 or cin != planes:
                self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.in_place = in_place

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.in_place:
                out += identity
            else:
                out = out + identity
            return self.relu(out)


    class ResNetLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = nn.Sequential(Basic(8, 8), Basic(8, 8, in_place=False))
            self.layer2 = nn.Sequential(Basic(8, 16, 2), Basic(16, 16), Basic(16, 16, in_place=False))
            self.layer3 = nn.Sequential(Basic(16, 32, 2), Basic(32, 32))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))


    class UNetLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
            self.pool = nn.MaxPool2d(2)
            self.enc2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
            self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.dec = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
            self.head = nn.Conv2d(8, 2, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            return self.head(self.dec(torch.cat([e1, self.up(e2)], dim=1)))


    class Views(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc1 = nn.Linear(4 * 6 * 6, 5)
            self.fc2 = nn.Linear(4 * 6 * 6, 5)
            self.fc3 = nn.Linear(4 * 6 * 6, 5)

        def forward(self, x):
            a = self.conv(x)
            v = a.view(a.size(0), -1)
            r = torch.reshape(a, (a.shape[0], -1))
            f = a.flatten(1)
            return self.fc1(v) + self.fc2(r) * self.fc3(f)


    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.adaptive_avg_pool2d(torch.relu(self.conv2(x)), (2, 2))
            return F.softmax(self.fc(x.mean([2, 3])), dim=1)


    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc(x.mean([2, 3]))


    class SqueezeExcite(nn.Module):
        """x * sigmoid(conv(mean)): a broadcast Multiply; two heads with mean(): one block."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.h1 = Head()
            self.h2 = Head()

        def forward(self, x):
            x = x * torch.sigmoid(self.conv(x.mean([2, 3], keepdim=True)))
            return torch.cat([self.h1(x), self.h2(x)], 1)


    class Twice(nn.Module):
        """One conv and one ReLU, each called twice."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(self.act(self.conv(x))))


    class Tied(nn.Module):
        """Two convolutions with one weight: the second dilated (as TridentNet shares its branches)."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.b = nn.Conv2d(4, 4, 3, padding=2, dilation=2, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.a(x) + self.b(x)


    class HalfTied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))


    class Sliced(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)[:, None]  # a new axis: no spec layer (x[:, :2] is a Narrow, test_verify_emit_sizes; x[:, ::2] a Slice, test_engine_slice)


    class PlusOne(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return 1.0 / self.conv(x)  # (conv(x) + 1.0 is a Rescale row since the Rescale family)


    class OwnWeight(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(F.conv2d(x, self.weight))


    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x, y):
            return self.conv(x) + self.conv(y)


    class Branchy(nn.Module):
        """Control flow on a tensor's value: fx cannot trace it; its leaves still run in a chain."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.relu = nn.ReLU()

        def forward(self, x):
            y = self.conv(x)
            if y.sum() > -1e30:
                y = self.relu(y)
            return y


    class BranchyResidual(nn.Module):
        """Not traceable and not a chain: out += identity inside its own forward."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            out = self.conv(x)
            if out.sum() > -1e30:
                out += x
            return self.relu(out)
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "graph_models.py"
    path.write_text(MODELS)
    return path


def model_class(models: Path, name: str) -> Any:
    from convcalc.verify import load_python_model

    return load_python_model(f"{models}:{name}")


def emit(cli: Any, models: Path, name: str, out: Path, shape: str) -> tuple[int, str, str]:
    return cli("verify", f"{models}:{name}", "--input", shape, "--emit-spec", str(out))


def spec_output(path: Path, model: Any, x: Any) -> Any:
    """The spec as torch modules, each stateful row given the next stateful leaf's weights (the test
    models call their leaves in definition order; a tied row shares the weights of its first)."""
    from convcalc.verify import build_module
    from convcalc.verify.specs import materialize

    summary = load_model(str(path)).summary(batch=x.shape[0])
    net = build_module(summary, torch)
    materialize(torch, net, torch.device("cpu"), torch.float32)
    seen: set[int] = set()
    leaves = []
    for module in model.modules():
        state = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if list(module.children()) or not state or all(id(t) in seen for t in state):
            continue
        seen.update(id(t) for t in state)
        leaves.append(module)
    rows = [m for row, m in zip(summary.rows, net.layers) if row.tie is None and [*m.parameters(), *m.buffers()]]
    assert len(rows) == len(leaves)
    for mine, theirs in zip(rows, leaves):
        mine.load_state_dict(theirs.state_dict())
    with torch.no_grad():
        return net.eval()(x)


def round_trip(cli: Any, models: Path, tmp_path: Path, name: str, shape: str) -> tuple[dict[str, Any], str]:
    """Emit ``name``; assert that the spec loads with verify's totals and output shape, and that it
    computes the model's output. Returns the spec (parsed) and its text."""
    out = tmp_path / f"{name}.yaml"
    code, _, err = emit(cli, models, name, out, shape)
    assert code == 0, err
    assert "wrote" in err and "same output as the model" in err
    code, report_json, err = cli("verify", f"{models}:{name}", "--input", shape, "--json")
    assert code == 0, err
    import json

    report = json.loads(report_json)
    summary = load_model(str(out)).summary()
    model = model_class(models, name).eval()
    x = torch.randn((1, *map(int, shape.split("x"))), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    assert summary.totals.params == report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert summary.totals.macs == report["totals"]["macs"]
    assert tuple(summary.output_shape) == tuple(expected.shape)
    got = spec_output(out, model, x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    text = out.read_text()
    return yaml.safe_load(text), text


def types(spec: dict[str, Any], key: str = "layers", block: str | None = None) -> list[str]:
    entries = spec["blocks"][block]["layers"] if block else spec[key]
    return [next(k for k in e if k not in ("name", "from", "repeat", "tie", "trainable")) if isinstance(e, dict) else e for e in entries]


def test_resnet_like_residuals_become_adds_and_identical_blocks_become_blocks(models: Path, tmp_path: Path, cli) -> None:
    spec, text = round_trip(cli, models, tmp_path, "ResNetLike", "3x16x16")
    blocks = spec["blocks"]
    assert len(blocks) == 2  # the identity block (5 copies, += and + alike) and the downsampling one (2)
    plain = next(b for b in blocks.values() if len(b["layers"]) == 7)
    down = next(b for b in blocks.values() if len(b["layers"]) == 9)
    assert down["params"] == ["out_channels"]  # 16 and 32; the stride is 2 in both
    assert plain["params"] == ["out_channels"]
    assert [next(iter(e)) for e in plain["layers"]] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "Add", "ReLU"]
    add = next(e for e in plain["layers"] if "Add" in e)
    assert sorted(add["Add"]) == ["bn2", "input"]  # out + identity: the block's input
    used = [e for e in spec["layers"] if isinstance(e, dict) and next(iter(e)) in blocks]
    assert {e["name"] for e in used} == {"layer1", "layer2_0", "layer2_1", "layer2_2", "layer3_0", "layer3_1"}
    assert next(e for e in used if e["name"] == "layer1")["repeat"] == 2
    assert "again" in text  # the ReLU module called twice in each block is said so


def test_resnet_like_rows_are_named_by_module_path(models: Path, tmp_path: Path, cli) -> None:
    round_trip(cli, models, tmp_path, "ResNetLike", "3x16x16")
    names = [r.name for r in load_model(str(tmp_path / "ResNetLike.yaml")).summary().rows]
    assert "layer1.0.conv1" in names and "layer1.1.add" in names and "layer2_0.downsample_0" in names and "layer3_1.conv2" in names


def test_unet_like_skip_is_a_concat(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "UNetLike", "1x16x16")
    concat = next(e for e in spec["layers"] if "Concat" in e)
    assert concat["Concat"] == ["enc1_1", "up"]  # torch.cat([e1, up(e2)], dim=1): the channels


def test_view_reshape_and_flatten_become_flatten(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "Views", "3x8x8")
    assert types(spec).count("Flatten") == 3
    assert "Add" in types(spec) and "Multiply" in types(spec)


def test_functional_forms_become_their_modules(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "Functional", "3x8x8")
    assert types(spec) == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "AdaptiveAvgPool2d", "AdaptiveAvgPool2d", "Flatten",
                           "Linear", "Softmax"]
    pool = spec["layers"][2]["MaxPool2d"]
    assert pool["kernel_size"] == 2 and pool.get("stride", 2) == 2


def test_squeeze_excite_multiplies_with_broadcasting_and_means_make_blocks(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "SqueezeExcite", "3x6x6")
    assert types(spec)[:4] == ["AdaptiveAvgPool2d", "Conv2d", "Sigmoid", "Multiply"]
    (block,) = spec["blocks"].values()
    assert [next(iter(e)) for e in block["layers"]] == ["AdaptiveAvgPool2d", "Flatten", "Linear"]


def test_a_module_called_twice_is_two_rows_with_its_parameters_once(models: Path, tmp_path: Path, cli) -> None:
    spec, text = round_trip(cli, models, tmp_path, "Twice", "4x6x6")
    assert types(spec) == ["Conv2d", "ReLU", "Conv2d", "ReLU"]
    assert spec["layers"][2]["tie"] == "conv" and "tie" not in spec["layers"][3]  # the ReLU has nothing to share
    assert text.count("again") == 2
    rows = load_model(str(tmp_path / "Twice.yaml")).summary().rows
    assert [r.params for r in rows] == [148, 0, 0, 0] and rows[0].macs == rows[2].macs > 0


def test_tied_weights_are_one_tie(models: Path, tmp_path: Path, cli) -> None:
    spec, text = round_trip(cli, models, tmp_path, "Tied", "4x6x6")
    b = next(e for e in spec["layers"] if e.get("name") == "b")
    assert b["tie"] == "a" and b["Conv2d"]["dilation"] == 2
    assert "tied weights" in text
    assert load_model(str(tmp_path / "Tied.yaml")).summary().totals.params == 4 * 4 * 9


@pytest.mark.parametrize(
    "name, shape, words",
    [
        ("HalfTied", "4x6x6", ["fx node 'b'", "shares some of its parameters with 'a'"]),
        ("Sliced", "3x6x6", ["fx node 'getitem'", "slices the tensor 'conv'", "a new axis"]),
        ("PlusOne", "3x6x6", ["fx node 'truediv'", "divides the number 1.0 by a tensor"]),
        ("OwnWeight", "3x6x6", ["fx node 'conv2d'", "'weight' directly"]),
        ("TwoInputs", "3x6x6", ["fx node 'y'", "second input of forward"]),
    ],
)
def test_what_a_spec_cannot_express_is_refused_naming_the_node(models: Path, tmp_path: Path, cli, name: str, shape: str, words: list[str]) -> None:
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, name, out, shape)
    if name == "TwoInputs":  # verify itself takes one --input: call the emitter on a report with both
        from convcalc.verify import VerifyError, emit_spec, verify_python

        model = model_class(models, name)
        x = torch.zeros(1, 3, 6, 6)
        report = verify_python(model, (3, 6, 6), inputs=((x, x), {}))
        with pytest.raises(VerifyError) as caught:
            emit_spec(report, str(out))
        err = caught.value.message
        code = 1
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert all(w in line for w in words), line
    assert "nothing written" in line and "Traceback" not in err


def test_an_untraceable_chain_falls_back_to_the_leaves(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "branchy.yaml"
    code, _, err = emit(cli, models, "Branchy", out, "3x6x6")
    assert code == 0, err
    assert types(yaml.safe_load(out.read_text())) == ["Conv2d", "ReLU"]


def test_untraceable_and_not_a_chain_is_refused_with_both_reasons(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, "BranchyResidual", out, "3x6x6")
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert "own forward" in line and "torch.fx cannot trace it" in line


def test_a_wrong_mapping_is_caught_by_the_proof(models: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the emitter wrote Multiply for a + (a bug), the proof refuses, naming the fx node."""
    from convcalc.verify import fx_emission

    original = fx_emission._Mapper.merge

    def wrong(self: Any, node: Any, kind: str, verb: str) -> None:
        return original(self, node, "Multiply" if kind == "Add" else kind, verb)

    monkeypatch.setattr(fx_emission._Mapper, "merge", wrong)
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, "Tied", out, "4x6x6")
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert "fx node 'add'" in line and "another value" in line and "nothing written" in line
