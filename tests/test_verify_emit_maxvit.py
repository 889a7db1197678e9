"""emit-spec keeps MaxViT's window attention (torchvision's ``RelativePositionalMultiHeadAttention``,
copied in ``test_engine_relative_attention``) whole: one spec row, once a probe shows the module computes
what verify's own module computes with its weights. Round trip on a small MaxViT-like model (window
partition by reshape/permute, attention, residual, departition); a look-alike of that name that
computes something else is refused with the probe's reason, and never written."""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

import test_engine_relative_attention as oracle

from convcalc import load_model

MODELS = (
    "import math\nimport torch\nfrom torch import nn, Tensor\nfrom torch.nn import functional as F\n\n"
    + inspect.getsource(oracle._get_relative_position_index)
    + "\n\n"
    + inspect.getsource(oracle.RelativePositionalMultiHeadAttention)
    + textwrap.dedent('''

    class WindowBlock(nn.Module):
        """A MaxViT-like block: conv stem, 4x4 windows of an 8x8 map, pre-norm attention with a residual, back to N, C, H, W."""

        def __init__(self, channels=16, head_dim=4, p=4):
            super().__init__()
            self.p = p
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.norm = nn.LayerNorm(channels)
            self.attn = RelativePositionalMultiHeadAttention(channels, head_dim, p * p)
            self.head = nn.Linear(channels, 10)

        def forward(self, x):
            x = self.stem(x)
            B, C, H, W = x.shape
            p = self.p
            x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1).reshape(B, (H // p) * (W // p), p * p, C)
            x = x + self.attn(self.norm(x))
            x = x.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)
            return self.head(x.mean((2, 3)))


    def head_scaled():
        """A class of the same name that scales the keys by head_dim ** -0.5 (the usual choice), not
        feat_dim ** -0.5 as torchvision does."""
        Base = globals()["RelativePositionalMultiHeadAttention"]

        class RelativePositionalMultiHeadAttention(Base):
            def __init__(self, *args):
                super().__init__(*args)
                self.scale_factor = self.head_dim ** -0.5

        return RelativePositionalMultiHeadAttention


    class LookAlike(WindowBlock):
        def __init__(self):
            super().__init__()
            self.attn = head_scaled()(16, 4, 16)
    '''))



@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "maxvit_models.py"
    path.write_text(MODELS)
    return path


def test_maxvit_like_block_round_trips_with_its_attention_as_one_row(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "block.yaml"
    code, _, err = cli("verify", f"{models}:WindowBlock", "--input", "3x8x8", "--emit-spec", str(out))
    assert code == 0, err
    assert "same output as the model" in err, err
    spec = yaml.safe_load(out.read_text())
    rows = [e for e in spec["layers"] if isinstance(e, dict) and "RelativePositionalMultiHeadAttention" in e]
    assert len(rows) == 1 and rows[0]["RelativePositionalMultiHeadAttention"] == {"feat_dim": 16, "head_dim": 4, "max_seq_len": 16}, rows
    code, report_json, err = cli("verify", f"{models}:WindowBlock", "--input", "3x8x8", "--json")
    assert code == 0, err
    report = json.loads(report_json)
    summary = load_model(str(out)).summary()
    from convcalc.verify import load_python_model

    model = load_python_model(f"{models}:WindowBlock")
    assert summary.totals.params == report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert summary.totals.macs == report["totals"]["macs"]  # FlopCounterMode's count of the real forward
    assert tuple(summary.output_shape) == (1, 10)
    attn = next(c for c in report["layers"] if c["name"] == "attn")  # on the real model: one row, judged by a probe
    assert attn["judged_as"] == "RelativePositionalMultiHeadAttention" and attn["confirmed"] is True, attn


def test_a_lookalike_of_that_name_is_refused_with_the_probe_s_reason(models: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "lookalike.yaml"
    code, _, err = cli("verify", f"{models}:LookAlike", "--input", "3x8x8", "--emit-spec", str(out))
    assert code == 1 and not out.exists(), err
    assert "which convcalc knows by name, but not RelativePositionalMultiHeadAttention: on a random" in err, err
    assert "values differ" in err and "nothing written" in err, err


def test_the_written_spec_verifies_row_by_row_and_a_row_not_compared_is_no_agreement(models: Path, tmp_path: Path, cli,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """verify on the emitted spec compares every row, the attention's included (verify's own module has children:
    it runs as one leaf). Where a row's module records no call, the rows from it on were not compared: that is said,
    never '✓ all N agree' for fewer rows than the spec has (it said '✓ all 29 layers agree' of 134)."""
    out = tmp_path / "block.yaml"
    code, _, err = cli("verify", f"{models}:WindowBlock", "--input", "3x8x8", "--emit-spec", str(out))
    assert code == 0, err
    rows = len(load_model(str(out)).summary().rows)
    code, text, err = cli("verify", str(out))
    assert code == 0 and f"all {rows} layers agree" in text + err, text + err

    from convcalc.verify import equivalents, verify_model

    monkeypatch.setattr(equivalents, "kept_whole", lambda module: False)  # the attention's children hooked, itself not
    report = verify_model(load_model(str(out)))
    assert not report.ok and len(report.checks) < rows
    assert report.failure is not None and "were not compared" in str(report.failure.torch), report.failure
