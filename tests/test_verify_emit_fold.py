"""emit-spec of torch's im2col and col2im: ``nn.Unfold``/``nn.Fold`` modules and ``F.unfold``/``F.fold`` calls are
rows of the torch.nn class (verify builds them as torch's own); a model that unfolds, mixes each block with a Linear
and folds back (overlapping blocks summed) round-trips: params, MACs, output shape and output."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_verify_emit_channels_last import kinds, round_trip

MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Im2col(nn.Module):
        def __init__(self):
            super().__init__()
            self.unfold = nn.Unfold(kernel_size=3, padding=1)
            self.fc = nn.Linear(27, 8)
            self.fold = nn.Fold(output_size=(6, 4), kernel_size=2, padding=1)

        def forward(self, x):  # N, 3, 6, 4
            cols = self.unfold(x)  # N, 27, 24
            y = self.fc(cols.transpose(1, 2)).transpose(1, 2)  # N, 8, 24
            y = F.fold(y, (6, 4), kernel_size=1)  # N, 8, 6, 4: a 1×1 fold is a reshape
            z = F.unfold(y, 2, stride=(1, 1), padding=(1, 1))  # N, 32, 35 (7 × 5 blocks)
            return self.fold(z)  # N, 8, 6, 4: the overlapping 2×2 blocks summed back
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "fold_ops.py"
    path.write_text(MODELS)
    return path


def test_unfold_and_fold_are_torchs_layers_and_round_trip(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, model, summary) = round_trip(cli, models, tmp_path, "Im2col", "3x6x4")
    found = kinds(spec["layers"])
    assert found.count("Unfold") == 2 and found.count("Fold") == 2, found
    rows = {r.type: r for r in summary.rows if r.type in ("Unfold", "Fold")}
    assert all(r.params == 0 and r.macs == 0 for r in rows.values())
    with torch.no_grad():
        expected = model(torch.randn(1, 3, 6, 4))
    assert tuple(summary.output_shape) == tuple(expected.shape) == (1, 8, 6, 4)
