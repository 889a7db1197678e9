"""verify and --emit-spec on models with nn.MultiheadAttention.

- A user's nn.MultiheadAttention called as self-attention (the same tensor as query, key and value) is judged
  as the engine's MultiheadAttention: shape (with the attention weights where it returns them), parameters,
  MACs. Called as cross-attention or with a mask it is shown, "not judged", with the reason — never a ✓.
- --emit-spec writes one MultiheadAttention row for ``attn(x, x, x, ...)[0]`` and the spec round-trips (verify's
  numbers, and the same output with the model's weights); cross-attention, masks and the weights are refused.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")
nn = torch.nn

from convcalc import load_model
from convcalc.verify import verify_model, verify_python

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    class TokenNet(nn.Module):
        """A small ViT without class token: conv patches → tokens, a pre-norm block, head on the first token."""

        def __init__(self, dim=16, heads=4, batch_first=True, **attention):
            super().__init__()
            self.batch_first = batch_first
            self.patches = nn.Conv2d(3, dim, 4, stride=4)
            self.ln_1 = nn.LayerNorm(dim)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=batch_first, **attention)
            self.ln_2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            self.head = nn.Linear(dim, 10)

        def attend(self, y):
            return self.attn(y, y, y, need_weights=False)[0]

        def forward(self, x):
            x = self.patches(x).flatten(2).permute(0, 2, 1)
            y = self.ln_1(x)
            if not self.batch_first:
                y = y.permute(1, 0, 2)
            a = self.attend(y)
            if not self.batch_first:
                a = a.permute(1, 0, 2)
            x = x + a
            x = x + self.mlp(self.ln_2(x))
            return self.head(x[:, 0])


    class BatchSecond(TokenNet):
        def __init__(self):
            super().__init__(batch_first=False)


    class KeysLonger(TokenNet):
        def __init__(self):
            super().__init__(add_bias_kv=True, add_zero_attn=True, bias=False)


    class WeightsAsked(TokenNet):
        def attend(self, y):
            return self.attn(y, y, y)[0]  # need_weights=True (torch's default), the weights unused


    class Cross(TokenNet):
        def attend(self, y):
            kv = torch.nn.functional.relu(y)
            return self.attn(y, kv, kv, need_weights=False)[0]


    class Masked(TokenNet):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", torch.zeros(16, 16))  # 16 tokens of a 16x16 input

        def attend(self, y):
            return self.attn(y, y, y, attn_mask=self.mask, need_weights=False)[0]


    class WeightsUsed(TokenNet):
        def attend(self, y):
            out, weights = self.attn(y, y, y)
            return out + weights.mean()
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "attention_models.py"
    path.write_text(MODELS)
    return path


def _model(models: Path, name: str) -> Any:
    from convcalc.verify import load_python_model

    return load_python_model(f"{models}:{name}")


def _attention_check(report: Any) -> Any:
    return next(c for c in report.checks if c.type == "MultiheadAttention")


@pytest.mark.parametrize("name", ["TokenNet", "BatchSecond", "KeysLonger", "WeightsAsked", "WeightsUsed"])
def test_self_attention_is_judged(models: Path, name: str) -> None:
    model = _model(models, name)
    report = verify_python(model, (3, 16, 16), batch=2)
    check = _attention_check(report)
    assert check.known and check.confirmed, check
    attn = model.attn
    assert check.params == check.torch_params == sum(p.numel() for p in attn.parameters())
    assert check.macs == check.torch_macs > 0
    if name in ("WeightsAsked", "WeightsUsed"):  # (output, weights): both shapes compared
        assert check.output_shape == check.torch_output_shape == ((2, 16, 16), (2, 16, 16))
    elif name == "BatchSecond":
        assert check.output_shape == check.torch_output_shape == (16, 2, 16)
    else:
        assert check.output_shape == check.torch_output_shape == (2, 16, 16)


@pytest.mark.parametrize("name, reason", [("Cross", "cross-attention"), ("Masked", "called with attn_mask")])
def test_cross_attention_and_masks_are_not_judged(models: Path, name: str, reason: str) -> None:
    report = verify_python(_model(models, name), (3, 16, 16))
    check = _attention_check(report)
    assert not check.known and check.confirmed is None, check
    assert reason in check.not_judged and "not compared" in check.not_judged, check.not_judged


def test_a_wrong_engine_number_is_a_mismatch(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ✓ is a comparison: an engine that miscounts the MACs (or the keys) gets a ✗."""
    from convcalc.layers.attention import MultiheadAttention

    monkeypatch.setattr(MultiheadAttention, "keys", lambda self, positions: positions)  # forgets bias_k and the zero key
    check = _attention_check(verify_python(_model(models, "KeysLonger"), (3, 16, 16)))
    assert check.known and not check.confirmed and any(m.what == "MACs" for m in check.mismatches), check


def test_layer_from_module_reads_torch_s_attribute_names() -> None:
    """bias and add_bias_kv are kept as in_proj_bias and bias_k (MultiheadAttention.ATTRIBUTES)."""
    from convcalc.verify.user_models import layer_from_module

    layer: Any = layer_from_module(nn.MultiheadAttention(8, 2, bias=False, add_bias_kv=True, add_zero_attn=True))
    assert (layer.bias, layer.add_bias_kv, layer.add_zero_attn, layer.batch_first, layer.kdim) == (False, True, True, False, None)
    layer = layer_from_module(nn.MultiheadAttention(8, 2, batch_first=True))
    assert (layer.bias, layer.add_bias_kv, layer.batch_first, layer.embed_dim, layer.num_heads) == (True, False, True, 8, 2)


@pytest.mark.parametrize("name", ["TokenNet", "BatchSecond", "KeysLonger", "WeightsAsked"])
def test_emitted_spec_round_trips_with_one_attention_row(models: Path, tmp_path: Path, cli: Any, name: str) -> None:
    out = tmp_path / f"{name}.yaml"
    code, _, err = cli("verify", f"{models}:{name}", "--input", "3x16x16", "--emit-spec", str(out))
    assert code == 0, err
    assert "same output as the model" in err, err
    spec = yaml.safe_load(out.read_text())
    rows = [e["MultiheadAttention"] for e in spec["layers"] if isinstance(e, dict) and "MultiheadAttention" in e]
    assert len(rows) == 1, spec["layers"]
    expected = {"embed_dim": 16, "num_heads": 4}
    if name == "BatchSecond":
        expected["batch_first"] = False
    if name == "KeysLonger":
        expected.update(bias=False, add_bias_kv=True, add_zero_attn=True)
    assert rows[0] == expected, rows
    code, report_json, err = cli("verify", f"{models}:{name}", "--input", "3x16x16", "--json")
    assert code == 0, err
    report = json.loads(report_json)
    summary = load_model(str(out)).summary()
    model = _model(models, name)
    assert summary.totals.params == report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert summary.totals.macs == report["totals"]["macs"]  # FlopCounterMode's count of the real forward
    assert tuple(summary.output_shape) == (1, 10)
    code, _, err = cli("verify", str(out))  # the spec verifies against torch on its own
    assert code == 0, err
    report = verify_model(load_model(str(out)))
    assert len(report.checks) == len(summary.rows) and all(c.confirmed for c in report.checks), report.checks  # every row compared


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_spec_s_attention_rows_are_compared(tmp_path: Path, device: str) -> None:
    """verify's module for a row (torch's class, called with the one input) is a leaf of the walk too: every row is
    compared, on cpu (the fused kernel) and on meta."""
    spec = tmp_path / "tokens.yaml"
    spec.write_text(textwrap.dedent('''
        name: tokens
        input: [16, 8]
        layers:
          - {MultiheadAttention: {heads: 2}}
          - {MultiheadAttention: {num_heads: 4, add_bias_kv: true, add_zero_attn: true}}
          - {MultiheadAttention: {num_heads: 1, bias: false, batch_first: false}}
          - {Linear: {out_features: 3}}
    '''))
    model = load_model(str(spec))
    report = verify_model(model, batch=2, device=device)
    assert [c.type for c in report.checks] == ["MultiheadAttention"] * 3 + ["Linear"]
    assert all(c.confirmed for c in report.checks), report.checks
    assert report.checks[1].macs == 2 * 16 * (4 * 8 * 8 + 2 * 18 * 8)


@pytest.mark.parametrize("name, reason", [
    ("Cross", "cross-attention"),
    ("Masked", "with attn_mask"),
    ("WeightsUsed", "uses the attention weights"),
])
def test_emission_refuses_what_a_spec_cannot_say(models: Path, tmp_path: Path, cli: Any, name: str, reason: str) -> None:
    out = tmp_path / f"{name}.yaml"
    code, _, err = cli("verify", f"{models}:{name}", "--input", "3x16x16", "--emit-spec", str(out))
    assert code == 1 and not out.exists(), err
    assert reason in err and "nothing written" in err, err


def test_a_module_torch_cannot_allocate_even_on_meta_is_a_one_line_refusal(tmp_path, cli) -> None:
    """MultiheadAttention of 4·10⁹ features: its in_proj weight (1.2·10¹⁰ × 4·10⁹) overflows torch's storage size
    even on meta. A torch.nn class refused so said 'convcalc accepts it, but torch.nn.Linear(…) raises …'; verify's
    own modules (MultiheadAttention, Swin's) gave 'convcalc: internal error: RuntimeError: Storage size …'."""
    spec = tmp_path / "spec.yaml"
    for layer, width in (("MultiheadAttention: {num_heads: 1}", "[2, 4000000000]"),
                         ("ShiftedWindowAttention: {window_size: 2, num_heads: 1}", "[2, 2, 4000000000]")):
        spec.write_text(f"input: {width}\nlayers:\n  - {layer}\n")
        code, out, err = cli("verify", str(spec), "--device", "meta")
        assert code == 1 and err.count("\n") == 1, err
        assert "internal error" not in err and "convcalc accepts it, but" in err and "Storage size" in err, err
