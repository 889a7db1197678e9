"""emit-spec of reductions: ResNeSt's split attention (``x.reshape(B, radix, C // radix, H, W).sum(dim=1)``,
timm's ``SplitAttn`` as written there) and a token model's ``x.mean(dim=1)`` become ``Sum``/``Mean`` rows and
round-trip; a spatial mean stays an AdaptiveAvgPool; a reduction a spec cannot hold is refused by name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from test_verify_emit_channels_last import kinds, round_trip

MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class RadixSoftmax(nn.Module):  # timm/models/resnest.py (timm.layers.split_attn)
        def __init__(self, radix, cardinality):
            super().__init__()
            self.radix = radix
            self.cardinality = cardinality

        def forward(self, x):
            batch = x.size(0)
            if self.radix > 1:
                x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
                x = F.softmax(x, dim=1)
                x = x.reshape(batch, -1)
            else:
                x = torch.sigmoid(x)
            return x


    class SplitAttn(nn.Module):  # timm.layers.split_attn.SplitAttn, its defaults
        def __init__(self, in_channels, out_channels=None, kernel_size=3, stride=1, padding=1, groups=1, radix=2, rd_channels=8):
            super().__init__()
            out_channels = out_channels or in_channels
            self.radix = radix
            mid_chs = out_channels * radix
            self.conv = nn.Conv2d(in_channels, mid_chs, kernel_size, stride, padding, groups=groups * radix, bias=False)
            self.bn0 = nn.BatchNorm2d(mid_chs)
            self.drop = nn.Identity()
            self.act0 = nn.ReLU(inplace=True)
            self.fc1 = nn.Conv2d(out_channels, rd_channels, 1, groups=groups)
            self.bn1 = nn.BatchNorm2d(rd_channels)
            self.act1 = nn.ReLU(inplace=True)
            self.fc2 = nn.Conv2d(rd_channels, mid_chs, 1, groups=groups)
            self.rsoftmax = RadixSoftmax(radix, groups)

        def forward(self, x):
            x = self.conv(x)
            x = self.bn0(x)
            x = self.drop(x)
            x = self.act0(x)
            B, RC, H, W = x.shape
            if self.radix > 1:
                x = x.reshape((B, self.radix, RC // self.radix, H, W))
                x_gap = x.sum(dim=1)
            else:
                x_gap = x
            x_gap = x_gap.mean((2, 3), keepdim=True)
            x_gap = self.fc1(x_gap)
            x_gap = self.bn1(x_gap)
            x_gap = self.act1(x_gap)
            x_attn = self.fc2(x_gap)
            x_attn = self.rsoftmax(x_attn).view(B, -1, 1, 1)
            if self.radix > 1:
                out = (x * x_attn.reshape((B, self.radix, RC // self.radix, 1, 1))).sum(dim=1)
            else:
                out = x * x_attn
            return out.contiguous()


    class Split(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = SplitAttn(4, 6)
            self.head = nn.Linear(6, 3)

        def forward(self, x):
            return self.head(torch.flatten(F.adaptive_avg_pool2d(self.attn(x), 1), 1))


    class TokenMean(nn.Module):
        """Patches as tokens, a Linear on them, the tokens averaged (timm's global_pool='avg'), summed features kept."""

        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 8, 4, stride=4)
            self.fc = nn.Linear(8, 8)
            self.head = nn.Linear(9, 2)

        def forward(self, x):
            t = self.fc(self.patch(x).flatten(2).transpose(1, 2))  # N, L, 8
            pooled = t.mean(dim=1)  # N, 8
            energy = torch.sum(t, dim=(1, 2)).reshape(-1, 1)  # N, 1
            return self.head(torch.cat([pooled, energy], dim=1))


    class Everything(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x).sum()
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "reduce_models.py"
    path.write_text(MODELS)
    return path


def test_resnest_split_attention_round_trips_with_sum_rows(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "Split", "4x8x8")
    found = kinds(spec["layers"])
    assert found.count("Sum") == 2, found
    sums = [e["Sum"] for e in spec["layers"] if isinstance(e, dict) and "Sum" in e]
    assert sums == [{"dim": [1]}, {"dim": [1]}], sums
    assert "AdaptiveAvgPool2d" in found  # the spatial mean, keepdim: a pool to 1
    assert tuple(summary.output_shape) == (1, 3)


def test_token_mean_and_sum_round_trip(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "TokenMean", "3x8x8")
    rows = {k: e[k] for e in spec["layers"] if isinstance(e, dict) for k in ("Mean", "Sum") if k in e}
    assert rows == {"Mean": {"dim": [1]}, "Sum": {"dim": [1, 2]}}, rows
    assert tuple(summary.output_shape) == (1, 2)


def test_a_sum_of_everything_is_refused_naming_the_node(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "everything.yaml"
    code, _, err = cli("verify", f"{models}:Everything", "--input", "3x8x8", "--emit-spec", str(out))
    assert code == 1 and not out.exists(), err
    assert "fx node 'sum" in err and "sums every element into one number" in err, err
