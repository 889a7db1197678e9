"""The Swin families against torchvision itself (skipped where torchvision is not installed: CI has none):
verify's modules give torchvision's values bit for bit with its weights, the engine its parameters and
FlopCounterMode's MACs, and ``--emit-spec`` writes small Swin V1 and V2 models as specs that round-trip."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc

torch = pytest.importorskip("torch")
if importlib.util.find_spec("torchvision") is None:
    pytest.skip("needs torchvision", allow_module_level=True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from torchvision_cpu import import_torchvision

S = import_torchvision().models.swin_transformer
SOME = settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])


def flops(fn: Any, *args: Any) -> tuple[Any, int]:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = fn(*args)
    return out, counter.get_total_flops() // 2


@SOME
@given(shape=st.lists(st.integers(1, 7), min_size=3, max_size=5).map(tuple))
def test_patch_merge_is_torchvisions_patch_merging_pad(shape: tuple[int, ...]) -> None:
    from convcalc.verify.specs import torch_twin

    x = torch.randn(shape)
    expected, macs = flops(S._patch_merging_pad, x)
    layer = convcalc.layer("PatchMerge")
    assert torch.equal(torch_twin(torch, layer)(x), expected)
    assert (layer.output_shape(shape), layer.macs(shape), layer.num_params) == (tuple(expected.shape), macs, 0)


@SOME
@given(v2=st.booleans(), batch=st.integers(1, 2), h=st.integers(1, 10), w=st.integers(1, 10), per_head=st.integers(1, 4),
       heads=st.integers(1, 3), window=st.tuples(st.integers(2, 5), st.integers(2, 5)),
       shift=st.tuples(st.integers(0, 3), st.integers(0, 3)), qkv_bias=st.booleans(), proj_bias=st.booleans())
def test_window_attention_is_torchvisions(v2: bool, batch: int, h: int, w: int, per_head: int, heads: int, window: tuple[int, int],
                                          shift: tuple[int, int], qkv_bias: bool, proj_bias: bool) -> None:
    """Emission's reading of the module (attention_layer, attention_state), the engine's numbers and verify's module."""
    from convcalc.verify.specs import torch_twin
    from convcalc.verify.swin import attention_layer, attention_state

    c = per_head * heads
    cls = S.ShiftedWindowAttentionV2 if v2 else S.ShiftedWindowAttention
    theirs = cls(c, list(window), list(shift), heads, qkv_bias=qkv_bias, proj_bias=proj_bias).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    x = torch.randn(batch, h, w, c)
    expected, macs = flops(theirs, x)
    layer = attention_layer(theirs).bind(x.shape)
    assert layer.type_name == cls.__name__
    assert (layer.output_shape(x.shape), layer.num_params, layer.macs(x.shape)) == (tuple(expected.shape), sum(p.numel() for p in theirs.parameters()), macs)
    mine = torch_twin(torch, layer).eval()
    mine.load_state_dict(attention_state(theirs))
    got, mine_macs = flops(mine, x)
    assert mine_macs == macs and torch.equal(got, expected)


def _small(v2: bool, **kwargs: Any) -> Any:
    extra = {"block": S.SwinTransformerBlockV2, "downsample_layer": S.PatchMergingV2} if v2 else {}
    torch.manual_seed(0)
    return S.SwinTransformer(patch_size=[4, 4], embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=[3, 3], num_classes=5,
                             **extra, **kwargs)


def _emit(model: Any, shape: tuple[int, ...]) -> Any:
    from convcalc.verify import verify_python
    from convcalc.verify.fx_emission import fx_emission

    with contextlib.redirect_stdout(io.StringIO()):
        report = verify_python(model, shape)
    return report, fx_emission(report)


@pytest.mark.parametrize("v2", [False, True])
def test_a_small_swin_is_emitted_and_round_trips(v2: bool, tmp_path: Path) -> None:
    """fx_emission proves the spec (the model's weights in verify's modules give the model's output; params,
    MACs and output shape as verify measured them); loaded again, the spec gives the same totals."""
    from convcalc.verify.fx_emission import Emitted

    report, emitted = _emit(_small(v2), (3, 30, 26))  # 7×6 after the stem: padded to whole 3×3 windows; 4×3 after merging
    assert isinstance(emitted, Emitted), emitted
    kind = "ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention"
    assert f"{{{kind}: " in emitted.text and "{PatchMerge: {}" in emitted.text, emitted.text
    path = tmp_path / "swin.yaml"
    path.write_text(emitted.text)
    summary = convcalc.load_model(str(path)).summary()
    assert (summary.totals.params, summary.totals.macs) == (report.totals.params, report.totals.macs)
    assert sum(row.type == kind for row in summary.rows) == 4 and sum(row.type == "PatchMerge" for row in summary.rows) == 1


def test_a_subclass_of_torchvisions_attention_is_not_taken_for_it() -> None:
    """Only torchvision's classes themselves stay leaves: a subclass (whose forward may differ) is traced through,
    and the relative position bias it gathers from its table in its own forward is refused, not mapped."""
    from convcalc.verify.report import VerifyError

    class Mine(S.ShiftedWindowAttention):
        pass

    model = _small(False)
    for stage in (1, 3):
        for block in model.features[stage]:
            old = block.attn
            block.attn = Mine(old.qkv.in_features, old.window_size, old.shift_size, old.num_heads)
    with pytest.raises(VerifyError, match=r"fx node '_get_relative_position_bias' in 'features\.1\.0\.attn' \(.*Mine\)"):
        _emit(model, (3, 24, 24))


# -- verify on the real model: the attention modules are judged, whole --------------------------------


def _verify(model: Any, shape: tuple[int, ...]) -> Any:
    from convcalc.verify import verify_python

    with contextlib.redirect_stdout(io.StringIO()):
        return verify_python(model, shape)


@pytest.mark.parametrize("v2", [False, True])
def test_verify_judges_each_attention_module_as_its_family(v2: bool) -> None:
    """The attention module is one leaf (its qkv and proj Linears never run: their weights go to a function), probed
    against verify's module with its own weights, then compared with what the call did: ✓ and no own-forward row."""
    report = _verify(_small(v2), (3, 30, 26))
    kind = "ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention"
    rows = [c for c in report.checks if c.name.endswith(".attn")]
    assert report.ok and len(rows) == 4 and all(c.known and c.judged_as == kind and not c.mismatches for c in rows), rows
    assert not [c for c in report.checks if c.own or c.not_judged], [c.name for c in report.checks if c.own or c.not_judged]
    assert not [c for c in report.checks if ".attn." in c.name]  # nothing inside it is a row


def test_an_attention_module_that_computes_something_else_is_never_judged() -> None:
    """A torchvision module whose position index was changed, and one whose forward was replaced: the probe refutes
    both, the rows stay not judged (never ✓)."""
    model = _small(False)
    first, second = model.features[1][0].attn, model.features[1][1].attn
    first.relative_position_index.copy_(first.relative_position_index.flip(0))
    forward = second.forward
    second.forward = lambda x: forward(x) * 1.5
    report = _verify(model, (3, 24, 24))
    by_name = {c.name: c for c in report.checks}
    for path in ("features.1.0.attn", "features.1.1.attn"):
        row = by_name[path]
        assert not row.known and "not ShiftedWindowAttention: on a random" in row.not_judged and "values differ" in row.not_judged, row
    assert by_name["features.3.0.attn"].known


def test_a_wrong_engine_rule_for_the_attention_is_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcalc.layers.swin import ShiftedWindowAttention

    right = ShiftedWindowAttention.macs
    monkeypatch.setattr(ShiftedWindowAttention, "macs", lambda self, shape: right(self, shape) + 1)
    report = _verify(_small(False), (3, 24, 24))
    assert not report.ok
    assert {c.name for c in report.checks if c.mismatches} == {f"features.{s}.{b}.attn" for s in (1, 3) for b in (0, 1)}
