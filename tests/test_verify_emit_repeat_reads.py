"""Copies of one block in a row become one entry with ``repeat:`` only where nothing after them reads a
copy other than the last: HGNet's (and VoVNet's) aggregation concatenates every layer's output, and the
folded spec named outputs that ``repeat:`` does not give (emit-spec wrote a spec it could not load)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_verify_emit_channels_last import round_trip  # noqa: E402

MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class ConvBNAct(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(cout)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))


    class Aggregating(nn.Module):
        """timm's HighPerfGpuBlock: layers in a row, each output kept, all concatenated, then a 1x1 conv."""

        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([ConvBNAct(4 if i == 0 else 6, 6) for i in range(4)])
            self.aggregation = nn.Conv2d(4 + 4 * 6, 8, 1)

        def forward(self, x):
            output = [x]
            for layer in self.layers:
                x = layer(x)
                output.append(x)
            return self.aggregation(torch.cat(output, dim=1))


    class Chained(nn.Module):
        """The same copies read only one after another: one entry with repeat."""

        def __init__(self):
            super().__init__()
            self.stem = ConvBNAct(4, 6)
            self.layers = nn.Sequential(*[ConvBNAct(6, 6) for _ in range(3)])

        def forward(self, x):
            return self.layers(self.stem(x))
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "repeat_models.py"
    path.write_text(MODELS)
    return path


def test_copies_read_after_the_next_one_are_not_folded_into_repeat(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "Aggregating", "4x6x6")
    assert not any("repeat" in e for e in spec["layers"] if isinstance(e, dict))
    concat = next(e for e in spec["layers"] if isinstance(e, dict) and "Concat" in e)["Concat"]
    assert len(concat) == 5 and concat[0] == "input", concat
    assert tuple(summary.output_shape) == (1, 8, 6, 6)


def test_copies_read_one_after_another_still_repeat(models: Path, tmp_path: Path, cli) -> None:
    spec, _ = round_trip(cli, models, tmp_path, "Chained", "4x6x6")
    repeated = [e for e in spec["layers"] if isinstance(e, dict) and e.get("repeat")]
    assert len(repeated) == 1 and repeated[0]["repeat"] == 3, spec["layers"]
