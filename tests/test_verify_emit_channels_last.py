"""``verify --emit-spec`` on a ConvNeXt-like model (no torchvision needed): depthwise 7×7, a permute
to channels-last (``x.permute``, ``torch.permute`` in a Permute module, ``.contiguous()``), LayerNorm
over the channels (an ``nn.LayerNorm`` leaf, and ``F.layer_norm`` with the parameters of a
LayerNorm2d), Linear, GELU, Linear, the permute back, a layer scale (``self.layer_scale * x``,
``x.mul(self.gamma.reshape(1, -1, 1, 1))``, timm's ``x * self.gamma``), stochastic depth (identity in
eval) and the residual add.

The emitted spec is checked independently of the emitter: loaded as ``convcalc model`` loads it, it
has verify's params, MACs and output shape on the real model, and built as torch modules with the
model's tensors (given here in the order the forward uses them) it gives the model's output."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

torch = pytest.importorskip("torch")

from convcalc import load_model

MODELS = textwrap.dedent('''
    import torch
    import torch.fx
    import torch.nn.functional as F
    from torch import nn


    def stochastic_depth(input, p, mode, training=True):
        """torchvision.ops.stochastic_depth: the input itself in eval mode."""
        if not training or p == 0.0:
            return input
        keep = torch.empty([input.shape[0]] + [1] * (input.ndim - 1)).bernoulli_(1 - p)
        return input * keep / (1 - p)


    torch.fx.wrap("stochastic_depth")


    class StochasticDepth(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x):
            return stochastic_depth(x, self.p, "row", self.training)


    class Permute(nn.Module):
        """torchvision.ops.misc.Permute."""

        def __init__(self, dims):
            super().__init__()
            self.dims = dims

        def forward(self, x):
            return torch.permute(x, self.dims)


    class LayerNorm2d(nn.LayerNorm):
        """torchvision's (and timm's) LayerNorm2d: permute, F.layer_norm, permute back."""

        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)


    class LayerScale(nn.Module):
        """timm.layers.LayerScale: channels last, x * gamma."""

        def __init__(self, dim):
            super().__init__()
            self.gamma = nn.Parameter(torch.empty(dim).uniform_(0.5, 1.5))

        def forward(self, x):
            return x * self.gamma


    class CNBlock(nn.Module):
        """torchvision's ConvNeXt block."""

        def __init__(self, dim=8):
            super().__init__()
            self.block = nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim),
                Permute([0, 2, 3, 1]),
                nn.LayerNorm(dim, eps=1e-6),
                nn.Linear(dim, 4 * dim),
                nn.GELU(),
                nn.Linear(4 * dim, dim),
                Permute([0, 3, 1, 2]),
            )
            self.layer_scale = nn.Parameter(torch.empty(dim, 1, 1).uniform_(0.5, 1.5))
            self.stochastic_depth = StochasticDepth(0.1)

        def forward(self, input):
            result = self.layer_scale * self.block(input)
            result = self.stochastic_depth(result)
            result += input
            return result

        def used(self):
            conv, _, norm, fc1, _, fc2, _ = self.block
            return [conv.state_dict(), norm.state_dict(), fc1.state_dict(), fc2.state_dict(), {"weight": self.layer_scale}]


    class TimmBlock(nn.Module):
        """timm's ConvNeXtBlock (conv_mlp=False), with a LayerScale inside the MLP too."""

        def __init__(self, dim):
            super().__init__()
            self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.fc1 = nn.Linear(dim, 2 * dim)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(2 * dim, dim)
            self.ls = LayerScale(dim)
            self.gamma = nn.Parameter(torch.empty(dim).uniform_(0.5, 1.5))

        def forward(self, x):
            shortcut = x
            x = self.conv_dw(x)
            x = x.permute(0, 2, 3, 1)
            x = self.ls(self.fc2(self.act(self.fc1(self.norm(x)))))
            x = x.permute(0, 3, 1, 2).contiguous()
            x = x.mul(self.gamma.reshape(1, -1, 1, 1))
            return x + shortcut

        def used(self):
            return [self.conv_dw.state_dict(), self.norm.state_dict(), self.fc1.state_dict(), self.fc2.state_dict(),
                    {"weight": self.ls.gamma}, {"weight": self.gamma.reshape(1, -1, 1, 1)}]


    class ConvNeXtLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, stride=2), LayerNorm2d(8, eps=1e-6))
            self.stage1 = nn.Sequential(CNBlock(8), CNBlock(8))
            self.down = nn.Sequential(LayerNorm2d(8, eps=1e-6), nn.Conv2d(8, 16, 2, stride=2))
            self.stage2 = TimmBlock(16)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(LayerNorm2d(16, eps=1e-6), nn.Flatten(1), nn.Linear(16, 5))
            for m in self.modules():  # weights away from LayerNorm's 1 and 0, so that a lost weight shows
                if isinstance(m, nn.LayerNorm):
                    nn.init.uniform_(m.weight, 0.5, 1.5)
                    nn.init.uniform_(m.bias, -0.5, 0.5)

        def forward(self, x):
            x = self.stage2(self.down(self.stage1(self.stem(x))))
            return self.classifier(self.avgpool(x))

        def used(self):
            """Every tensor the forward uses, in order, as the spec's rows with parameters load them."""
            states = [self.stem[0].state_dict(), self.stem[1].state_dict()]
            for block in self.stage1:
                states += block.used()
            states += [self.down[0].state_dict(), self.down[1].state_dict()]
            states += self.stage2.used()
            return states + [self.classifier[0].state_dict(), self.classifier[2].state_dict()]


    class TwoScales(nn.Module):
        """One layer scale used twice: the second row is a tie, its parameters counted once."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.layer_scale = nn.Parameter(torch.empty(4, 1, 1).uniform_(0.5, 1.5))

        def forward(self, x):
            x = self.layer_scale * self.conv(x)
            return x * self.layer_scale


    class BufferScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.register_buffer("scale", torch.ones(4, 1, 1))

        def forward(self, x):
            return self.conv(x) * self.scale


    class ComputedDims(nn.Module):
        """Dims computed from sizes: the values the traced input gave."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y.permute(0, 2, 3, y.dim() - 3)


    class Moved(nn.Module):
        """movedim/moveaxis in each form: one dimension, several, negative, the torch function."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 6)

        def forward(self, x):
            y = self.fc(self.conv(x).movedim(1, -1))  # N, H, W, 6
            y = torch.moveaxis(y, -1, 1)  # back to N, 6, H, W
            return y.movedim((1, 2), (3, 1))  # N, H, W, 6 again, by two moves at once


    class GroupNorm1(nn.GroupNorm):
        """timm.layers.norm.GroupNorm1 (metaformer's PoolFormer norm), as written there."""

        def __init__(self, num_channels, **kwargs):
            super().__init__(1, num_channels, **kwargs)
            self.fast_norm = False

        def forward(self, x):
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


    class Pooling(nn.Module):
        """PoolFormer's token mixer and block: x + pool(norm(x)) - norm(x), the norm a GroupNorm1."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = GroupNorm1(8, eps=1e-5)
            self.norm.weight.data.uniform_(0.5, 1.5)
            self.norm.bias.data.uniform_(-0.5, 0.5)
            self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)

        def forward(self, x):
            x = self.stem(x)
            y = self.norm(x)
            return x + self.pool(y) - y


    class Swapped(nn.Module):
        """Two dimensions swapped in each spelling: torch.swapaxes (axis0/axis1), torch.swapdims, the methods."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 6)

        def forward(self, x):
            y = torch.swapaxes(self.conv(x), 1, -1)  # N, W, H, 4
            y = self.fc(torch.swapdims(y, 1, 2))  # N, H, W, 6
            y = y.swapaxes(-1, 1).transpose(2, 3)  # N, 6, W, H, then N, 6, H, W
            return torch.transpose(y, dim0=3, dim1=2)  # N, 6, W, H
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "channels_last_models.py"
    path.write_text(MODELS)
    return path


def model_of(models: Path, name: str) -> Any:
    from convcalc.verify import load_python_model

    return load_python_model(f"{models}:{name}")


def emit(cli: Any, models: Path, name: str, out: Path, shape: str) -> tuple[int, str, str]:
    return cli("verify", f"{models}:{name}", "--input", shape, "--emit-spec", str(out))


def spec_output(path: Path, states: list[dict[str, Any]], x: Any) -> Any:
    """The spec as torch modules, the rows with parameters (ties aside) given ``states`` in order."""
    from convcalc.verify import build_module
    from convcalc.verify.specs import materialize

    summary = load_model(str(path)).summary(batch=x.shape[0])
    net = build_module(summary, torch)
    materialize(torch, net, torch.device("cpu"), torch.float32)
    rows = [m for row, m in zip(summary.rows, net.layers) if row.tie is None and [*m.parameters(), *m.buffers()]]
    assert len(rows) == len(states)
    for mine, state in zip(rows, states):
        mine.load_state_dict(state)
    with torch.no_grad():
        return net.eval()(x)


def round_trip(cli: Any, models: Path, tmp_path: Path, name: str, shape: str) -> tuple[dict[str, Any], Any]:
    out = tmp_path / f"{name}.yaml"
    code, _, err = emit(cli, models, name, out, shape)
    assert code == 0, err
    assert "wrote" in err and "same output as the model" in err
    code, report_json, err = cli("verify", f"{models}:{name}", "--input", shape, "--json")
    assert code == 0, err
    report = json.loads(report_json)
    summary = load_model(str(out)).summary()
    model = model_of(models, name).eval()
    assert summary.totals.params == report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert summary.totals.macs == report["totals"]["macs"]
    return yaml.safe_load(out.read_text()), (out, model, summary)


def kinds(entries: list[Any]) -> list[str]:
    return [next(k for k in e if k not in ("name", "from", "repeat", "tie", "trainable")) if isinstance(e, dict) else e for e in entries]


def test_convnext_like_round_trips_with_permute_layernorm_and_scale(models: Path, tmp_path: Path, cli) -> None:
    spec, (out, model, summary) = round_trip(cli, models, tmp_path, "ConvNeXtLike", "3x16x16")
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    assert tuple(summary.output_shape) == tuple(expected.shape) == (1, 5)
    got = spec_output(out, model.used(), x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    # torchvision's block: one block, used twice in a row (stage1.0, stage1.1)
    (name,) = [n for n, b in spec["blocks"].items() if "Scale" in kinds(b["layers"])]
    block = spec["blocks"][name]["layers"]
    assert kinds(block) == ["Conv2d", "Permute", "LayerNorm", "Linear", "GELU", "Linear", "Permute", "Scale", "Add"]
    assert [e["Permute"]["dims"] for e in block if "Permute" in e] == [[0, 2, 3, 1], [0, 3, 1, 2]]
    assert next(e for e in block if "Scale" in e)["Scale"] == {"shape": [8, 1, 1]}
    rows = list(summary.rows)
    types = [r.type for r in rows]
    # the stem's LayerNorm2d: permute, F.layer_norm with its weights, permute back
    assert types[:4] == ["Conv2d", "Permute", "LayerNorm", "Permute"]
    assert rows[2].params == 16 and tuple(rows[2].input_shape) == (1, 8, 8, 8)
    # timm's forms: x * gamma of shape (C,) on N×H×W×C, and x.mul(gamma.reshape(1, -1, 1, 1)) after .contiguous()
    scales = [r for r in rows if r.type == "Scale"]
    assert [tuple(r.layer.shape) for r in scales] == [(8, 1, 1), (8, 1, 1), (16,), (1, 16, 1, 1)]
    assert all(r.macs == 0 for r in scales) and [r.params for r in scales] == [8, 8, 16, 16]
    assert types[-6:] == ["AdaptiveAvgPool2d", "Permute", "LayerNorm", "Permute", "Flatten", "Linear"]


def test_the_proof_catches_a_permute_written_the_other_way_round(models: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the emitter wrote the inverse permutation (a bug): on an 8×8×8 block every shape still fits,
    and the proof refuses, naming the fx node; on the whole model the spec's shapes do not fit."""
    from convcalc.verify import fx_emission

    original = fx_emission._Mapper.permute

    def inverse(self: Any, node: Any) -> None:
        original(self, node)
        dims = self.entries[-1].args["dims"]
        self.entries[-1].args = {"dims": [dims.index(i) for i in range(len(dims))]}

    monkeypatch.setattr(fx_emission._Mapper, "permute", inverse)
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, "CNBlock", out, "8x8x8")
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert "fx node 'permute'" in line and "another value as the spec's Permute" in line and "nothing written" in line, line
    code, _, err = emit(cli, models, "ConvNeXtLike", out, "3x16x16")
    assert code == 1 and not out.exists()
    assert "normalized_shape [16] must equal the last 1 dimension" in err.strip().splitlines()[-1]


def test_the_proof_catches_a_scale_without_the_model_s_weight(models: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcalc.verify import fx_emission

    original = fx_emission._Mapper.scale

    def forgetful(self: Any, node: Any) -> None:
        original(self, node)
        self.entries[-1].state = {"weight": self.torch.ones(self.entries[-1].args["shape"])}

    monkeypatch.setattr(fx_emission._Mapper, "scale", forgetful)
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, "ConvNeXtLike", out, "3x16x16")
    assert code == 1 and not out.exists()
    assert "another value as the spec's Scale" in err.strip().splitlines()[-1]


def test_a_layer_scale_used_twice_is_a_tie(models: Path, tmp_path: Path, cli) -> None:
    spec, (out, model, summary) = round_trip(cli, models, tmp_path, "TwoScales", "3x6x6")
    assert kinds(spec["layers"]) == ["Conv2d", "Scale", "Scale"]
    assert spec["layers"][2]["tie"] == spec["layers"][1]["name"]
    assert [r.params for r in summary.rows] == [112, 4, 0]


@pytest.mark.parametrize(
    "name, words",
    [
        ("BufferScale", ["fx node 'mul'", "multiplies by the tensor 'scale', which is no parameter"]),
    ],
)
def test_what_a_spec_cannot_express_is_refused(models: Path, tmp_path: Path, cli, name: str, words: list[str]) -> None:
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, name, out, "3x6x6")
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert all(w in line for w in words) and "nothing written" in line, line


def test_permute_dims_computed_from_sizes_are_the_traced_values(models: Path, tmp_path: Path, cli) -> None:
    spec, (out, model, summary) = round_trip(cli, models, tmp_path, "ComputedDims", "3x6x5")
    assert spec["layers"][1]["Permute"] == {"dims": [0, 2, 3, 1]}
    assert tuple(summary.output_shape) == (1, 6, 5, 4)


def test_movedim_and_moveaxis_are_permutes(models: Path, tmp_path: Path, cli) -> None:
    """x.movedim(1, -1), torch.moveaxis(y, -1, 1) and a two-dimension move are Permute rows in
    torch's order (read off torch with sizes that name the axes); the spec computes the model's output."""
    spec, (out, model, summary) = round_trip(cli, models, tmp_path, "Moved", "3x5x7")
    named = torch.zeros(2, 3, 5, 7)  # each size names its axis

    def order(moved: Any) -> list[int]:
        return [named.shape.index(size) for size in moved.shape]

    first = named.movedim(1, -1)
    second = torch.moveaxis(first, -1, 1)
    third = second.movedim((1, 2), (3, 1))
    expected_dims = [order(first), [order(first).index(i) for i in order(second)], [order(second).index(i) for i in order(third)]]
    assert [e["Permute"]["dims"] for e in spec["layers"] if "Permute" in e] == expected_dims
    x = torch.randn(1, 3, 5, 7)
    with torch.no_grad():
        expected = model(x)
    assert tuple(summary.output_shape) == tuple(expected.shape) == (1, 5, 7, 6)
    got = spec_output(out, [model.conv.state_dict(), model.fc.state_dict()], x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_swapaxes_swapdims_and_transpose_are_permutes(models: Path, tmp_path: Path, cli) -> None:
    """torch.swapaxes names its dimensions axis0/axis1 (it was refused as 'dimensions None and None',
    torchvision's MaxViT SwapAxes); each spelling is a Permute in torch's order and the spec computes the output."""
    spec, (out, model, summary) = round_trip(cli, models, tmp_path, "Swapped", "3x5x7")
    named = torch.zeros(2, 3, 4, 5)  # each size names its axis
    steps = [lambda t: torch.swapaxes(t, 1, -1), lambda t: torch.swapdims(t, 1, 2), lambda t: t.swapaxes(-1, 1),
             lambda t: t.transpose(2, 3), lambda t: torch.transpose(t, dim0=3, dim1=2)]
    expected_dims = [[named.shape.index(size) for size in step(named).shape] for step in steps]
    assert [e["Permute"]["dims"] for e in spec["layers"] if "Permute" in e] == expected_dims
    x = torch.randn(1, 3, 5, 7)
    with torch.no_grad():
        expected = model(x)
    assert tuple(summary.output_shape) == tuple(expected.shape) == (1, 6, 7, 5)
    got = spec_output(out, [model.conv.state_dict(), model.fc.state_dict()], x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_f_group_norm_with_a_group_norm_s_own_weights_is_that_group_norm(models: Path, tmp_path: Path, cli) -> None:
    """timm's GroupNorm1 calls F.group_norm with its own parameters (it was refused as 'the parameter used
    directly'): a GroupNorm(1, 8) row with those weights; the spec computes the model's output."""
    spec, (out, model, summary) = round_trip(cli, models, tmp_path, "Pooling", "3x6x6")
    norms = [e["GroupNorm"] for e in spec["layers"] if isinstance(e, dict) and "GroupNorm" in e]
    assert norms == [{"num_groups": 1}], norms
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        expected = model(x)
    got = spec_output(out, [model.stem.state_dict(), model.norm.state_dict()], x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
