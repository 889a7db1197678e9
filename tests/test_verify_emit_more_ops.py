"""emit-spec of more of what real models write in forward, each as timm writes it: ECA's ``y.expand_as(x)``
before a product (no row: the product broadcasts), SelectiveKernel's ``torch.stack`` (an Unflatten per input
and a Concat), ResMLP's ``torch.addcmul(beta, alpha, x)`` (Scale then Bias), Swin's channels-last ``F.pad``
(a padding layer of that many axes and mode). Each round-trips; an expand read by something that does not
broadcast it back is refused by name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_verify_emit_channels_last import kinds, round_trip

MODELS = textwrap.dedent('''
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class EcaModule(nn.Module):  # timm.layers.eca.EcaModule
        def __init__(self, channels, kernel_size=3):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)
            self.gate = nn.Sigmoid()

        def forward(self, x):
            y = x.mean((2, 3)).view(x.shape[0], 1, -1)
            y = self.conv(y)
            y = self.gate(y).view(x.shape[0], -1, 1, 1)
            return x * y.expand_as(x)


    class Eca(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.eca = EcaModule(8)

        def forward(self, x):
            return self.eca(self.conv(x))


    class SelectiveKernel(nn.Module):
        """timm.layers.selective_kernel, reduced: two paths stacked, summed, attention over the paths."""

        def __init__(self):
            super().__init__()
            self.paths = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=2, dilation=2)])
            self.fc = nn.Conv2d(4, 8, 1)

        def forward(self, x):
            x_paths = [op(x) for op in self.paths]
            x = torch.stack(x_paths, dim=1)  # N, 2, 4, H, W
            x_s = x.sum(1).mean((2, 3), keepdim=True)
            B, _, C, _, _ = x.shape
            x_attn = self.fc(x_s).view(B, 2, C, 1, 1)
            x_attn = torch.softmax(x_attn, dim=1)
            return (x * x_attn).sum(1)


    class Affine(nn.Module):  # timm.models.mlp_mixer.Affine
        def __init__(self, dim):
            super().__init__()
            self.alpha = nn.Parameter(torch.ones((1, 1, dim)))
            self.beta = nn.Parameter(torch.zeros((1, 1, dim)))

        def forward(self, x):
            return torch.addcmul(self.beta, self.alpha, x)


    class ResMlpLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 6, 2, stride=2)
            self.norm = Affine(6)
            nn.init.uniform_(self.norm.alpha, 0.5, 1.5)
            nn.init.uniform_(self.norm.beta, -0.5, 0.5)
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            return self.fc(self.norm(t)).mean(1)


    class PaddedWindows(nn.Module):
        """timm's Swin block pads the channels-last map to whole windows: F.pad(x, (0, 0, 0, pad_w, 0, pad_h));
        and a reflect pad of N, C, H, W."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
            y = y.permute(0, 2, 3, 1)
            _, H, W, _ = y.shape
            pad_h, pad_w = (4 - H % 4) % 4, (4 - W % 4) % 4
            y = F.pad(y, (0, 0, 0, pad_w, 0, pad_h))
            return y.permute(0, 3, 1, 2)


    class GlobalResponseNorm(nn.Module):  # timm.layers.grn.GlobalResponseNorm (channels last)
        def __init__(self, dim, eps=1e-6, channels_last=True):
            super().__init__()
            self.eps = eps
            if channels_last:
                self.spatial_dim = (1, 2)
                self.channel_dim = -1
                self.wb_shape = (1, 1, 1, -1)
            else:
                self.spatial_dim = (2, 3)
                self.channel_dim = 1
                self.wb_shape = (1, -1, 1, 1)
            self.weight = nn.Parameter(torch.zeros(dim))
            self.bias = nn.Parameter(torch.zeros(dim))

        def forward(self, x):
            Gx = x.norm(p=2, dim=self.spatial_dim, keepdim=True)
            Nx = Gx / (Gx.mean(dim=self.channel_dim, keepdim=True) + self.eps)
            return x + torch.addcmul(self.bias.view(self.wb_shape), self.weight.view(self.wb_shape), x * Nx)


    class ConvNeXtV2Like(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.fc = nn.Linear(6, 6)
            self.grn = GlobalResponseNorm(6)
            nn.init.uniform_(self.grn.weight, 0.5, 1.5)
            nn.init.uniform_(self.grn.bias, -0.5, 0.5)

        def forward(self, x):
            return self.grn(self.fc(self.conv(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)


    class Squeezed(nn.Module):
        """CaiT's class attention unsqueezes its query token, CoaT squeezes it back: x.unsqueeze(1), torch.unsqueeze,
        x.squeeze(1), torch.squeeze(x, -1), x.squeeze() of a (N, C, 1, 1) map."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.conv(x).mean((2, 3))  # N, 4
            t = self.fc(y.unsqueeze(1))  # N, 1, 4
            t = torch.unsqueeze(t, -1).squeeze(1)  # N, 4, 1
            return torch.squeeze(t, -1) + self.conv(x).mean((2, 3), keepdim=True).squeeze(-1).squeeze(-1)


    class ExpandedAlone(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x).mean((2, 3), keepdim=True)
            return y.expand(-1, -1, 5, 5).flatten(1)
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "more_ops.py"
    path.write_text(MODELS)
    return path


def test_eca_expand_as_before_a_product_is_no_row(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "Eca", "3x6x6")
    assert "Multiply" in kinds(spec["layers"]) and tuple(summary.output_shape) == (1, 8, 6, 6)


def test_stack_is_unflattens_and_a_concat(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "SelectiveKernel", "3x6x6")
    found = kinds(spec["layers"])
    assert found.count("Unflatten") >= 2 and "Concat" in found and found.count("Sum") == 2, found
    concat = next(e for e in spec["layers"] if isinstance(e, dict) and "Concat" in e)["Concat"]
    assert concat["dim"] == 1 and len(concat["from"]) == 2, concat
    assert tuple(summary.output_shape) == (1, 4, 6, 6)


def test_addcmul_of_two_parameters_is_a_scale_and_a_bias(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "ResMlpLike", "3x4x4")
    rows = [(k, e[k]) for e in spec["layers"] if isinstance(e, dict) for k in ("Scale", "Bias") if k in e]
    assert rows == [("Scale", {"shape": [1, 1, 6]}), ("Bias", {"shape": [1, 1, 6]})], rows
    assert summary.totals.params == 3 * 6 * 4 + 6 + 12 + 6 * 2 + 2


def test_f_pad_is_the_padding_layer_of_its_axes_and_mode(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "PaddedWindows", "3x5x6")
    pads = [(k, e[k]) for e in spec["layers"] if isinstance(e, dict) for k in e if k.endswith(("Pad1d", "Pad2d", "Pad3d"))]
    assert pads == [("ReflectionPad2d", {"padding": 1}), ("ZeroPad3d", {"padding": [0, 0, 0, 2, 0, 3]})], pads
    assert tuple(summary.output_shape) == (1, 4, 8, 8)


def test_an_expand_that_nothing_broadcasts_back_is_refused(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "alone.yaml"
    code, _, err = cli("verify", f"{models}:ExpandedAlone", "--input", "3x5x5", "--emit-spec", str(out))
    assert code == 1 and not out.exists(), err
    assert "fx node 'expand'" in err and "does not broadcast it back" in err, err


def test_convnext_v2_global_response_norm_round_trips(models: Path, tmp_path: Path, cli) -> None:
    """x.norm(p=2, dim=(1, 2), keepdim=True) is a Norm row (it was refused as '.norm()'), then Mean, Rescale (+ eps),
    Divide, Multiply, the addcmul of the two parameter views (Scale, Bias) and the residual Add."""
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "ConvNeXtV2Like", "3x5x5")
    found = kinds(spec["layers"])
    assert found.count("Norm") == 1 and {"Mean", "Rescale", "Divide", "Scale", "Bias"} <= set(found), found
    norm = next(e["Norm"] for e in spec["layers"] if isinstance(e, dict) and "Norm" in e)
    assert norm == {"dim": [1, 2], "keepdim": True}, norm
    assert tuple(summary.output_shape) == (1, 6, 5, 5)


def test_unsqueeze_and_squeeze_are_reshapes(models: Path, tmp_path: Path, cli) -> None:
    """A new or dropped dimension of size 1 (they were refused as '.unsqueeze()' / '.squeeze()') is an Unflatten
    or a Flatten row; the spec computes the model's output."""
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "Squeezed", "3x5x5")
    found = kinds(spec["layers"])
    assert "Unflatten" in found and "Flatten" in found, found
    assert tuple(summary.output_shape) == (1, 4)


IN_PLACE = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class SkipInit(nn.Module):
        """timm's NormFreeBlock ends with out.mul_(self.skipinit_gain) (its result dropped), then out * alpha + shortcut;
        and x.add_(1.0) in place before a conv, read after it."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.skipinit_gain = nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            shortcut = x
            out = self.conv(x)
            out.mul_(self.skipinit_gain)
            out = out * 0.2 + shortcut
            out.add_(1.0)
            return self.conv(out)
''')


def test_an_in_place_method_whose_result_is_dropped_is_a_row(tmp_path: Path, cli) -> None:
    from test_verify_emit_channels_last import round_trip

    path = tmp_path / "in_place.py"
    path.write_text(IN_PLACE)
    spec, (_, _, summary) = round_trip(cli, path, tmp_path, "SkipInit", "3x5x5")
    found = kinds(spec["layers"])
    assert "Scale" in found and found.count("Rescale") == 2, found  # the gain, * 0.2 and + 1.0
    assert summary.totals.params == 3 * 3 * 9 + 3 + 1
