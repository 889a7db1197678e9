"""``verify --emit-spec`` and Python values computed from sizes: ``x.size()``, ``x.shape``, ``c // g``,
``h == 8`` and ``torch._assert`` are plumbing, evaluated on the traced input, never rows; ShuffleNet's
channel shuffle (view → transpose → view back) is one ChannelShuffle row; ``x.chunk``/``torch.split``
items are Narrow rows. Where such a value feeds something a spec cannot express, the refusal names
that node. Each emission is checked as in test_verify_emit_graph (totals, output shape, and the
spec built as torch modules gives the model's output)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

from test_verify_emit_graph import emit, round_trip, types  # the same independent check

MODELS = textwrap.dedent('''
    import math
    import torch
    import torch.nn.functional as F
    from torch import nn


    def channel_shuffle(x, groups):
        """torchvision's ShuffleNetV2 channel_shuffle, as written there."""
        batchsize, num_channels, height, width = x.size()
        channels_per_group = num_channels // groups
        x = x.view(batchsize, groups, channels_per_group, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(batchsize, num_channels, height, width)


    class Unit(nn.Module):
        """ShuffleNetV2's stride-1 unit: half the channels pass, half go through a branch."""

        def __init__(self, c):
            super().__init__()
            self.branch = nn.Sequential(nn.Conv2d(c // 2, c // 2, 1), nn.BatchNorm2d(c // 2), nn.ReLU())

        def forward(self, x):
            x1, x2 = x.chunk(2, dim=1)
            return channel_shuffle(torch.cat((x1, self.branch(x2)), dim=1), 2)


    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.units = nn.Sequential(Unit(8), Unit(8), Unit(8))
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            n, c, h, w = x.shape
            torch._assert(h == 8, f"expected 8 rows, got {h}")
            x = self.units(self.stem(x))
            return self.fc(x.mean([2, 3]))


    class Splits(nn.Module):
        """Uneven pieces: chunk(3) of 8 channels is 3, 3, 2; torch.split by sections; a flatten and a
        shuffle written with the sizes multiplied out."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 1)
            self.a = nn.Conv2d(3, 3, 1)
            self.b = nn.Conv2d(2, 6, 1)
            self.fc = nn.Linear(14 * 4 * 4, 3)

        def forward(self, x):
            x = self.stem(x)
            p, q, r = torch.chunk(x, 3, 1)
            s, t = torch.split(x, [2, 6], dim=1)
            y = torch.cat([self.a(q), self.b(r), F.relu(s), p], 1)
            n, c, h, w = y.shape
            y = y.reshape(n, 2, c // 2, h, w).transpose(2, 1).contiguous().flatten(1, 2)
            return self.fc(y.view(y.size(0), c * h * w))  # t is never used: no row


    class Resized(nn.Module):
        """Functional layers whose arguments are computed from sizes: the traced input's values."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            h, w = x.shape[-2:]
            x = F.interpolate(self.conv(x), size=(h * 2, w * 2), mode="nearest")
            return F.adaptive_avg_pool2d(x, (h // 2, w // 4))


    class Neutral(nn.Module):
        """MobileOne's branch sums start at 0 (out = 0; out += branch(x)); a factor of 1 from sizes."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            out = 0
            out = out + self.a(x)
            out = out + self.b(x)
            return out * (x.size(1) // 3)


    class SizeTimesTensor(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return x.size(1) / self.conv(x)  # (conv(x) * x.size(1) is a Rescale row, said to hold for these sizes)


    class SizeScaled(nn.Module):
        """Attention's q / math.sqrt(q.size(-1)), and a spatial size used as a number."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            return y / math.sqrt(y.size(1)) * x.shape[-1]


    class SplitSummed(nn.Module):
        """A split of the channels that is no channel shuffle's first step, read by what a spec lacks."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            n, c, h, w = y.shape
            return y.view(n, 2, c // 2, h, w).cumsum(1)  # (a .sum(1) is a Sum row since the Sum family)


    class RowShuffle(nn.Module):
        """The shuffle's pattern on the rows (dimension 2), which ChannelShuffle does not do: Unflatten,
        Permute, Flatten."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            n, c, h, w = y.shape
            return y.view(n, c, 2, h // 2, w).transpose(2, 3).reshape(n, c, h, w)


    class Windows(nn.Module):
        """MaxViT's window partition and its inverse: reshapes that split and join several dimensions,
        the batch included."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(4, 4)

        def forward(self, x, p=3):
            x = self.conv(x)
            b, c, h, w = x.shape
            x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b * (h // p) * (w // p), p * p, c)
            x = self.fc(x)
            x = x.view(b, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
            return x.reshape(b, c, h, w)
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "size_models.py"
    path.write_text(MODELS)
    return path


def test_shufflenet_unit_is_narrows_a_concat_and_one_channel_shuffle(models: Path, tmp_path: Path, cli) -> None:
    spec, text = round_trip(cli, models, tmp_path, "Shuffle", "3x8x8")
    (block,) = spec["blocks"].values()
    assert [next(iter(e)) for e in block["layers"]] == ["Narrow", "Narrow", "Conv2d", "BatchNorm2d", "ReLU", "Concat", "ChannelShuffle"]
    first, second = block["layers"][:2]
    assert first["Narrow"] == {"dim": 1, "start": 0, "length": 4} and second["Narrow"] == {"dim": 1, "start": 4, "length": 4}
    assert second["from"] == "input"
    assert block["layers"][-1]["ChannelShuffle"] == {"groups": 2}
    assert types(spec) == ["Conv2d", "unit", "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert "# dropped: torch._assert checks (_assert), which hold for this input" in text


def test_uneven_chunks_split_sections_and_sizes_multiplied_out(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "Splits", "3x4x4")
    narrows = [e["Narrow"] for e in spec["layers"] if "Narrow" in e]
    assert narrows == [{"dim": 1, "start": 0, "length": 3}, {"dim": 1, "start": 3, "length": 3},  # chunk(3): 3, 3, 2
                       {"dim": 1, "start": 6, "length": 2}, {"dim": 1, "start": 0, "length": 2}]  # split([2, 6]): t unused
    assert types(spec).count("ChannelShuffle") == 1
    shuffle = next(e for e in spec["layers"] if "ChannelShuffle" in e)
    assert shuffle["ChannelShuffle"] == {"groups": 2}
    assert types(spec)[-2:] == ["Flatten", "Linear"]


def test_functional_arguments_computed_from_sizes_are_the_traced_values(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "Resized", "3x8x8")
    assert types(spec) == ["Conv2d", "Upsample", "AdaptiveAvgPool2d"]
    assert spec["layers"][1]["Upsample"]["size"] == [16, 16]
    assert spec["layers"][2]["AdaptiveAvgPool2d"]["output_size"] == [4, 2]


@pytest.mark.parametrize(
    "name, words",
    [
        ("SizeTimesTensor", ["fx node 'truediv'", "divides the number 3.0 by a tensor"]),
        ("SplitSummed", ["fx node 'cumsum'", "calls the Tensor method .cumsum(), which has no spec layer"]),
    ],
)
def test_a_size_value_feeding_what_a_spec_cannot_express_is_refused_there(models: Path, tmp_path: Path, cli, name: str,
                                                                           words: list[str]) -> None:
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, name, out, "3x6x6")
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert all(w in line for w in words), line
    assert "nothing written" in line and "Traceback" not in err



SLICES = textwrap.dedent('''
    import torch
    from torch import nn


    class Sliced(nn.Module):
        """GhostNet's out[:, :self.out_chs, :, :], ViT's x[:, 0], an Ellipsis, negative bounds, sizes."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.out_chs = 4

        def forward(self, x):
            y = self.conv(x)
            a = y[:, : self.out_chs, :, :]
            b = y[..., 1:-1, : y.shape[-1] - 2]
            c = y[:, 2:, 0]  # row 0: N × 4 × W
            return (a[:, 1:3, 1:-1, 2:] + b[:, :2]).mean([2, 3]) + c[:, :2].mean(2)


    class SplitIndexed(nn.Module):
        """A split of the channels indexed (ResNeSt-like radix groups): Unflatten, then Narrow and Flatten."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            n, c, h, w = y.shape
            groups = y.view(n, 2, c // 2, h, w)
            return groups[:, 0] + groups[:, 1]


    class Narrowed(nn.Module):
        """torch.narrow and .narrow() themselves: a negative dim and start, a length from sizes."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 1)

        def forward(self, x):
            y = self.conv(x)
            a = torch.narrow(y, 1, 2, y.size(1) // 2)
            return a.narrow(-1, -3, 2) + y[:, :3, :, 1:3]


    class Swapped(nn.Module):
        """A transpose that is no channel shuffle: a Permute of the two dimensions."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x, dim=-1):  # an argument left at its default is a Python value
            y = self.conv(x).flatten(2).transpose(1, 2)
            return torch.softmax(self.fc(y), dim=dim)
''')


@pytest.fixture()
def slices(tmp_path: Path) -> Path:
    path = tmp_path / "slice_models.py"
    path.write_text(SLICES)
    return path


def test_slices_are_narrows_and_an_integer_index_a_flatten_of_its_dimension(slices: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, slices, tmp_path, "Sliced", "3x6x6")
    rows = [(next(k for k in e if k not in ("name", "from")), e) for e in spec["layers"]]
    narrows = [e["Narrow"] for kind, e in rows if kind == "Narrow"]
    assert narrows[:3] == [{"dim": 1, "start": 0, "length": 4}, {"dim": 2, "start": 1, "length": 4}, {"dim": 3, "start": 0, "length": 4}]
    assert {"dim": 2, "start": 0, "length": 1} in narrows  # y[:, 2:, 0]: row 0 …
    flatten = next(e for kind, e in rows if kind == "Flatten" and e["name"].endswith("_flatten"))
    assert flatten["Flatten"] == {"start_dim": 2, "end_dim": 3}  # … and its dimension joined to the next


def test_a_transpose_is_a_permute_and_a_defaulted_argument_a_value(slices: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, slices, tmp_path, "Swapped", "3x4x4")
    assert types(spec) == ["Conv2d", "Flatten", "Permute", "Linear", "Softmax"]
    assert spec["layers"][2]["Permute"] == {"dims": [0, 2, 1]}
    assert spec["layers"][4]["Softmax"] == {"dim": -1}


def test_reshapes_that_split_and_join_are_unflatten_and_flatten(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "RowShuffle", "3x6x6")
    assert types(spec) == ["Conv2d", "Unflatten", "Permute", "Flatten"]
    assert spec["layers"][1]["Unflatten"] == {"dim": 2, "unflattened_size": [2, 3]}
    spec, text = round_trip(cli, models, tmp_path, "Windows", "3x6x6")
    assert types(spec) == ["Conv2d", "Flatten", "Unflatten", "Permute", "Flatten", "Unflatten", "Linear", "Flatten", "Unflatten",
                           "Permute", "Flatten", "Unflatten"]
    assert spec["layers"][5]["Unflatten"] == {"dim": 0, "unflattened_size": [4, 9]}  # the windows are the batch
    assert "# for batch 1 only: reshape_1, view reshape(s) across the batch dimension" in text


NORMS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class BatchNormAct2d(nn.BatchNorm2d):
        """timm's BatchNormAct2d: F.batch_norm with its own statistics in its own forward, then an activation."""

        def __init__(self, c):
            super().__init__(c)
            self.act = nn.SiLU()
            with torch.no_grad():  # statistics unlike a fresh BatchNorm's, so that the proof sees them
                g = torch.Generator().manual_seed(0)
                self.running_mean.uniform_(-1, 1, generator=g)
                self.running_var.uniform_(0.5, 2, generator=g)
                self.weight.uniform_(0.5, 2, generator=g)

        def forward(self, x):
            x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
            return self.act(x)


    class Linear(nn.Linear):
        """timm's Linear: F.linear with its own weights in its own forward."""

        def forward(self, x):
            return F.linear(x, self.weight, self.bias)


    class Normed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = BatchNormAct2d(4)
            self.fc = Linear(4, 3)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return self.fc(y.reshape_as(y).mean([2, 3]))


    class Mixed(nn.Module):
        """Statistics of one BatchNorm with the weights of another: no spec layer."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.a = nn.BatchNorm2d(4)
            self.b = nn.BatchNorm2d(4)

        def forward(self, x):
            return F.batch_norm(self.conv(x), self.a.running_mean, self.a.running_var, self.b.weight, self.b.bias, False, 0.0, 1e-5)
''')


def test_batch_norm_and_linear_in_their_own_forward_are_their_layers_with_their_weights(tmp_path: Path, cli) -> None:
    path = tmp_path / "norm_models.py"
    path.write_text(NORMS)
    spec_path = tmp_path / "normed.yaml"
    code, _, err = emit(cli, path, "Normed", spec_path, "3x6x6")
    assert code == 0, err
    spec = yaml.safe_load(spec_path.read_text())
    assert types(spec) == ["Conv2d", "BatchNorm2d", "SiLU", "AdaptiveAvgPool2d", "Flatten", "Linear"]
    # independently of the emitter's proof: the spec with the model's conv and its BatchNormAct2d's
    # statistics gives the model's output (round_trip's leaf matching skips a module with children)
    from convcalc import load_model
    from convcalc.verify import build_module, load_python_model
    from convcalc.verify.specs import materialize

    model = load_python_model(f"{path}:Normed").eval()
    net = build_module(load_model(str(spec_path)).summary(), torch)
    materialize(torch, net, torch.device("cpu"), torch.float32)
    net.layers[0].load_state_dict(model.conv.state_dict())
    net.layers[1].load_state_dict({k: v for k, v in model.bn.state_dict().items() if not k.startswith("act.")})
    net.layers[5].load_state_dict(model.fc.state_dict())
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), model(x), rtol=1e-4, atol=1e-5)
        y = torch.nn.functional.silu(model.conv(x)).mean([2, 3])
        assert not torch.allclose(model.fc(y), model(x), atol=1e-2)  # the statistics matter
    out = tmp_path / "mixed.yaml"
    code, _, err = emit(cli, path, "Mixed", out, "3x6x6")
    line = err.strip().splitlines()[-1]
    assert code == 1 and "fx node 'batch_norm'" in line and "not one BatchNorm module's running statistics" in line, line


def test_adding_zero_and_multiplying_by_one_are_no_rows(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "Neutral", "3x4x4")
    assert types(spec) == ["Conv2d", "Conv2d", "Add"]


def test_an_indexed_split_view_is_an_unflatten_then_narrows(slices: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, slices, tmp_path, "SplitIndexed", "3x4x4")
    assert types(spec) == ["Conv2d", "Unflatten", "Narrow", "Flatten", "Narrow", "Flatten", "Add"]


def test_torch_narrow_and_the_narrow_method_are_narrow_rows(slices: Path, tmp_path: Path, cli) -> None:
    # they said "calls torch.narrow, which has no spec layer"
    spec, _ = round_trip(cli, slices, tmp_path, "Narrowed", "3x5x5")
    narrows = [e["Narrow"] for e in spec["layers"] if "Narrow" in e]
    assert narrows[:2] == [{"dim": 1, "start": 2, "length": 3}, {"dim": -1, "start": -3, "length": 2}]


def test_a_number_computed_from_sizes_is_a_rescale_said_to_hold_for_these_sizes(models: Path, tmp_path: Path, cli) -> None:
    """y / math.sqrt(y.size(1)) (attention's scaling by the head size) and * x.shape[-1]: Rescale rows with the
    numbers the traced input gave, and the spec says which rows hold for this input's sizes only."""
    out = tmp_path / "sized.yaml"
    code, _, err = emit(cli, models, "SizeScaled", out, "3x6x7")
    assert code == 0, err
    text = out.read_text()
    assert "# for this input's sizes: truediv, mul use(s) a number computed from them" in text, text
    spec = yaml.safe_load(text)
    scales = [e["Rescale"]["scale"] for e in spec["layers"] if isinstance(e, dict) and "Rescale" in e]
    assert scales == [pytest.approx(1 / math.sqrt(4)), 7.0], scales
