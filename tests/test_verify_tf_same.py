"""timm's TensorFlow-like "same" layers, ``Conv2dSame`` and ``AvgPool2dSame`` (copied below as timm
1.0 writes them; timm is not needed): verify judges each as a ZeroPad2d of TensorFlow's "same"
padding for its input (asymmetric where the total is odd) and the torch layer; emit-spec keeps them
whole (fx cannot trace their size-dependent padding) and writes those two rows, proven like any
spec. A module of that name that pads otherwise is not judged and not written."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from convcalc import load_model
from convcalc.verify import load_python_model, verify_python

TIMM = textwrap.dedent('''
    import math
    from typing import List, Tuple
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    # timm/layers/padding.py
    def get_same_padding(x: int, kernel_size: int, stride: int, dilation: int):
        if isinstance(x, torch.Tensor):
            return torch.clamp(((x / stride).ceil() - 1) * stride + (kernel_size - 1) * dilation + 1 - x, min=0)
        else:
            return max((math.ceil(x / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - x, 0)


    def pad_same(x, kernel_size: List[int], stride: List[int], dilation: List[int] = (1, 1), value: float = 0):
        ih, iw = x.size()[-2:]
        pad_h = get_same_padding(ih, kernel_size[0], stride[0], dilation[0])
        pad_w = get_same_padding(iw, kernel_size[1], stride[1], dilation[1])
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=value)
        return x


    # timm/layers/conv2d_same.py
    def conv2d_same(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1):
        x = pad_same(x, weight.shape[-2:], stride, dilation)
        return F.conv2d(x, weight, bias, stride, (0, 0), dilation, groups)


    class Conv2dSame(nn.Conv2d):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
            super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

        def forward(self, x):
            return conv2d_same(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


    # timm/layers/pool2d_same.py
    class AvgPool2dSame(nn.AvgPool2d):
        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
            kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            stride = (stride, stride) if isinstance(stride, int) else stride
            super().__init__(kernel_size, stride, (0, 0), ceil_mode, count_include_pad)

        def forward(self, x):
            x = pad_same(x, self.kernel_size, self.stride)
            return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


    class TFStem(nn.Module):
        """A tf_efficientnet-like stem: stride-2 'same' convs (odd and even totals), a dilated one, a 'same' pool."""

        def __init__(self, conv=Conv2dSame):
            super().__init__()
            self.conv_stem = conv(3, 8, 3, stride=2, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.conv_dw = conv(8, 8, 5, stride=2, groups=8)
            self.conv_dilated = conv(8, 8, 3, dilation=2)
            self.pool = AvgPool2dSame(3, 2)
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            x = self.conv_dilated(self.conv_dw(torch.relu(self.bn(self.conv_stem(x)))))
            return self.head(torch.flatten(self.pool(x).mean((2, 3), keepdim=True), 1))


    def symmetric():
        """A Conv2dSame that pads both sides alike (what torch's padding would do): for an odd total, not TF's."""
        Base = globals()["Conv2dSame"]

        class Conv2dSame(Base):
            def forward(self, x):
                total = [max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
                         for n, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation)]
                x = F.pad(x, (math.ceil(total[1] / 2),) * 2 + (math.ceil(total[0] / 2),) * 2)
                return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

        return Conv2dSame


    class LookAlike(TFStem):
        def __init__(self):
            super().__init__(conv=symmetric())
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "tf_same_models.py"
    path.write_text(TIMM)
    return path


def tf_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's rule, written again: output ceil(n / s); the odd one of the total at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("size", [(17, 20), (16, 16), (9, 31)])
def test_verify_judges_each_same_layer_as_its_padding_and_torch_layer(models: Path, size: tuple[int, int]) -> None:
    model = load_python_model(f"{models}:TFStem")
    report = verify_python(model, (3, *size))
    checks = {c.name: c for c in report.checks}
    assert report.ok, [(c.name, c.mismatches, c.not_judged) for c in report.checks]
    h, w = size
    top, bottom = tf_pads(h, 3, 2)
    left, right = tf_pads(w, 3, 2)
    stem = checks["conv_stem"]
    assert stem.confirmed is True and stem.judged_as == f"Conv2dSame: TF 'same' padding (ZeroPad2d {[left, right, top, bottom]}, Conv2d)"
    assert stem.output_shape == (1, 8, math.ceil(h / 2), math.ceil(w / 2))
    for name in ("conv_dw", "conv_dilated", "pool"):
        assert checks[name].confirmed is True and checks[name].judged_as.startswith(f"{type(getattr(model, name)).__name__}: TF 'same'")
    assert report.totals.params == sum(p.numel() for p in model.parameters())


def test_emit_spec_writes_the_padding_and_the_layer_and_round_trips(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "stem.yaml"
    code, _, err = cli("verify", f"{models}:TFStem", "--input", "3x17x20", "--emit-spec", str(out))
    assert code == 0 and "same output as the model" in err, err
    spec = yaml.safe_load(out.read_text())
    kinds = [next(k for k in e if k not in ("name", "from", "tie", "trainable")) if isinstance(e, dict) else e for e in spec["layers"]]
    assert kinds[:3] == ["ZeroPad2d", "Conv2d", "BatchNorm2d"], kinds
    assert spec["layers"][0]["ZeroPad2d"] == {"padding": [*tf_pads(20, 3, 2), *tf_pads(17, 3, 2)]}
    assert kinds.count("ZeroPad2d") == 4 and "AvgPool2d" in kinds  # one per layer: the dilated stride-1 conv pads 2 each side
    code, report_json, err = cli("verify", f"{models}:TFStem", "--input", "3x17x20", "--json")
    assert code == 0, err
    report = json.loads(report_json)
    summary = load_model(str(out)).summary()
    assert summary.totals.params == report["totals"]["params"] and summary.totals.macs == report["totals"]["macs"]
    assert tuple(summary.output_shape) == (1, 4)


def test_a_same_layer_that_pads_otherwise_is_not_judged_nor_written(models: Path, tmp_path: Path, cli) -> None:
    model = load_python_model(f"{models}:LookAlike")
    report = verify_python(model, (3, 17, 20))
    stem = {c.name: c for c in report.checks}["conv_stem"]
    assert stem.confirmed is None and "not Conv2dSame: TF 'same' padding" in stem.not_judged and "values differ" in stem.not_judged
    out = tmp_path / "lookalike.yaml"
    code, _, err = cli("verify", f"{models}:LookAlike", "--input", "3x17x20", "--emit-spec", str(out))
    assert code == 1 and not out.exists() and "which convcalc knows by name, but" in err and "nothing written" in err, err
