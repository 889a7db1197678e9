"""Swin in verify and --emit-spec without torchvision: tests/swin_copy.py is torchvision's Swin layers as torchvision
writes them, under torchvision's qualified names. Emission writes a small Swin (V1 and V2) as a spec that is proven
and loads with the model's totals; verify judges each attention module whole; a subclass is neither mapped nor
judged. (tests/test_verify_swin_torchvision.py does the same with torchvision itself, where it is installed.)"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

import convcalc

torch = pytest.importorskip("torch")
swin_copy = pytest.importorskip("swin_copy")


def _verify(model: Any, shape: tuple[int, ...]) -> Any:
    from convcalc.verify import verify_python

    with contextlib.redirect_stdout(io.StringIO()):
        return verify_python(model, shape)


def _model(v2: bool) -> Any:
    torch.manual_seed(0)
    model = swin_copy.Swin(v2=v2)
    with torch.no_grad():  # torchvision starts the bias table at ±0.02: values large enough to matter in the proof
        for name, p in model.named_parameters():
            if "relative_position_bias_table" in name or "cpb_mlp" in name:
                p.normal_()
    return model


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("batch", [1, 2])
def test_a_small_swin_is_emitted_proven_and_loads_with_its_totals(v2: bool, batch: int, tmp_path: Path) -> None:
    from convcalc.verify.fx_emission import Emitted, fx_emission

    model = _model(v2)
    report = _verify(model, (3, 30, 26)) if batch == 1 else None
    if report is None:
        from convcalc.verify import verify_python

        with contextlib.redirect_stdout(io.StringIO()):
            report = verify_python(model, (3, 30, 26), batch=batch)
    emitted = fx_emission(report)
    assert isinstance(emitted, Emitted), emitted
    kind = "ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention"
    path = tmp_path / "swin.yaml"
    path.write_text(emitted.text)
    summary = convcalc.load_model(str(path)).summary(batch=batch)
    assert (summary.totals.params, summary.totals.macs) == (report.totals.params, report.totals.macs)
    assert tuple(summary.output_shape) == (batch, 5)
    types = [row.type for row in summary.rows]
    assert types.count(kind) == 4 and types.count("PatchMerge") == 1, types
    attention = next(row for row in summary.rows if row.type == kind and row.name.endswith("1.attn"))
    assert attention.layer.shift_size == (1, 1) and attention.layer.window_size == (3, 3)


def test_the_proof_catches_a_wrong_reading_of_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break emission's reading on purpose (every window unshifted): the spec's output differs and nothing is written."""
    from convcalc.verify import fx_emission as emission
    from convcalc.verify.report import VerifyError

    right = emission.attention_layer

    def unshifted(module: Any) -> Any:
        return right(module).with_values(shift_size=(0, 0))

    monkeypatch.setattr(emission, "attention_layer", unshifted)
    with pytest.raises(VerifyError, match=r"fx node 'features_1_1_attn' .* gives another value as the spec's ShiftedWindowAttention"):
        emission.fx_emission(_verify(_model(False), (3, 30, 26)))


@pytest.mark.parametrize("v2", [False, True])
def test_verify_judges_the_attention_modules_whole(v2: bool) -> None:
    report = _verify(_model(v2), (3, 30, 26))
    kind = "ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention"
    rows = [c for c in report.checks if c.name.endswith(".attn")]
    assert report.ok and len(rows) == 4 and all(c.known and c.judged_as == kind for c in rows), rows
    assert not [c.name for c in report.checks if c.own or c.not_judged or ".attn." in c.name]


def test_a_subclass_is_neither_mapped_nor_judged() -> None:
    """Only the class of torchvision's name itself is kept whole: a subclass (its forward may differ) is traced
    through, its work is an own-forward row (not judged), and emission refuses the bias it gathers from its table."""
    from convcalc.verify.fx_emission import fx_emission
    from convcalc.verify.report import VerifyError

    class Mine(swin_copy.ShiftedWindowAttention):
        pass

    model = _model(False)
    old = model.features[1][0].attn
    model.features[1][0].attn = Mine(12, old.window_size, old.shift_size, old.num_heads)
    report = _verify(model, (3, 30, 26))
    own = [c for c in report.checks if c.name.startswith("features.1.0.attn")]
    assert [c.own for c in own] == [True] and not own[0].known, own
    with pytest.raises(VerifyError, match=r"fx node '_get_relative_position_bias' in 'features\.1\.0\.attn' \(.*Mine\)"):
        fx_emission(report)


@pytest.mark.parametrize("v2", [False, True])
def test_an_attention_module_verified_on_its_own_is_one_judged_row(v2: bool) -> None:
    """The root itself kept whole: V2's cpb_mlp inside it is no row of its own."""
    cls = swin_copy.ShiftedWindowAttentionV2 if v2 else swin_copy.ShiftedWindowAttention
    from convcalc.verify import verify_python

    with contextlib.redirect_stdout(io.StringIO()):
        report = verify_python(cls(12, [3, 3], [1, 1], 3), (7, 5, 12), batch=2)
    assert report.ok and [(c.known, c.judged_as) for c in report.checks] == [(True, cls.__name__)], report.checks


@pytest.mark.parametrize(("layer", "what"), [
    ("ShiftedWindowAttention: {window_size: 1000000000000, num_heads: 2}", "0 (ShiftedWindowAttention)"),
    ("ShiftedWindowAttentionV2: {window_size: 100000, num_heads: 2}", "0 (ShiftedWindowAttentionV2)"),
])  # fmt: skip
def test_attention_past_int64_elements_is_refused_on_meta_too(tmp_path: Any, cli: Any, layer: str, what: str) -> None:
    """A window's scores (heads × positions² per window) or its position index beyond int64 elements: verify
    --device meta printed 'internal error: TypeError … Overflow when unpacking long long' and 40 lines of C++
    frames (V1), or a disagreement 'valid vs RuntimeError: numel: integer multiplication overflow' (V2)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"input: [8, 8, 8]\nlayers:\n  - {layer}\n")
    for device in ("meta", "cpu"):
        code, out, err = cli("verify", str(spec), "--device", device)
        assert code == 1 and err.count("\n") == 1, err
        assert f"{what} computes a tensor of about 10^" in err and "int64" in err and "internal" not in err, err
