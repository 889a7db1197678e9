"""emit-spec of maxima: VOLO's ``x_aux.max(1)[0]`` (the values of ``x.max(dim)``), ``torch.max(x, dim, keepdim)[0]``
and ``torch.amax(x, dims)`` are ``Amax`` rows and round-trip; the indices (item 1), a maximum of everything and the
elementwise ``torch.max(a, b)`` are refused naming the node."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_verify_emit_channels_last import emit, kinds, round_trip

MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class VoloHead(nn.Module):
        """VOLO's forward_head with its token-label head: x[:, 0] of the class token plus 0.5 × the largest aux logit."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Linear(4, 3)
            self.aux_head = nn.Linear(4, 3)

        def forward(self, x):
            x = self.conv(x)
            m = torch.max(x, dim=2, keepdim=True)[0] + torch.amax(x, (2, 3), keepdim=True)  # N, 4, 1, W and N, 4, 1, 1
            x = (x + m).flatten(2).transpose(1, 2)  # N, L, 4
            out = self.head(x[:, 0])
            x_aux = self.aux_head(x[:, 1:])
            return out + 0.5 * x_aux.max(1)[0]


    class Indices(nn.Module):
        def forward(self, x):
            return x.max(1)[1].float()


    class Everything(nn.Module):
        def forward(self, x):
            return x * x.max()


    class Pairwise(nn.Module):
        def forward(self, x):
            return torch.max(x, x * 2)
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "max_models.py"
    path.write_text(MODELS)
    return path


def test_volos_max_and_amax_round_trip(models: Path, tmp_path: Path, cli) -> None:
    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "VoloHead", "3x5x6")
    rows = [e["Amax"] for e in spec["layers"] if isinstance(e, dict) and "Amax" in e]
    assert rows == [{"dim": [2], "keepdim": True}, {"dim": [2, 3], "keepdim": True}, {"dim": [1]}], kinds(spec["layers"])
    assert tuple(summary.output_shape) == (1, 3)


@pytest.mark.parametrize("name, words", [("Indices", ["takes item 1"]), ("Everything", ["fx node 'max", "of every element"]),
                                         ("Pairwise", ["fx node 'max", "elementwise maximum of two tensors"])])
def test_what_amax_cannot_hold_is_refused_naming_the_node(models: Path, tmp_path: Path, cli, name: str, words: list[str]) -> None:
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, name, out, "3x5x6")
    line = err.strip().splitlines()[-1]
    assert code == 1 and not out.exists() and all(w in line for w in words), line
