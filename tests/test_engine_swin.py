"""PatchMerge and ShiftedWindowAttention(V2) (torchvision's Swin layers) against torch: shapes, parameters,
MACs (FlopCounterMode ÷ 2) and refusals on random arguments; verify's own modules compute what a reference
written here from torch ops computes. The reference does the work another way (one window and one head at a
time, the bias and the shift's mask built position by position), so it shares no code with verify's module.
torchvision's own functions are compared in tests/test_verify_swin_torchvision.py (skipped without it)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")
F = torch.nn.functional

SOME = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def counted(fn: Any, *args: Any) -> tuple[Any, int] | Exception:
    """fn's output and FlopCounterMode's count ÷ 2, or what it raised."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings(), counter, torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args)
        except Exception as error:  # noqa: BLE001  torch refuses
            return error
    return out, counter.get_total_flops() // 2


# -- PatchMerge -------------------------------------------------------------------------------


def merge_reference(x: Any) -> Any:
    """torchvision's _patch_merging_pad written out: zero rows/columns to even H and W, then per output
    position the channels of (2i, 2j), (2i+1, 2j), (2i, 2j+1), (2i+1, 2j+1) in that order."""
    h, w = x.shape[-3], x.shape[-2]
    x = torch.cat([x, x.new_zeros((*x.shape[:-3], h % 2, w, x.shape[-1]))], dim=-3)
    x = torch.cat([x, x.new_zeros((*x.shape[:-2], w % 2, x.shape[-1]))], dim=-2)
    rows = []
    for i in range(0, x.shape[-3], 2):
        cols = []
        for j in range(0, x.shape[-2], 2):
            cols.append(torch.cat([x[..., i, j, :], x[..., i + 1, j, :], x[..., i, j + 1, :], x[..., i + 1, j + 1, :]], dim=-1))
        rows.append(torch.stack(cols, dim=-2))
    return torch.stack(rows, dim=-3)


def merge_oracle(shape: tuple[int, ...]) -> tuple[tuple[int, ...], int] | Exception:
    """torchvision's own ops on ``shape`` (F.pad of H and W to even, the four strided slices, cat)."""

    def run(x: Any) -> Any:
        h, w, _ = x.shape[-3:]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)

    result = counted(run, torch.zeros(shape))
    return result if isinstance(result, Exception) else (tuple(result[0].shape), result[1])


@SOME
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=5).map(tuple))
def test_patch_merge_matches_torch(shape: tuple[int, ...]) -> None:
    theirs = merge_oracle(shape)
    layer = convcalc.layer("PatchMerge")
    if isinstance(theirs, Exception):
        with pytest.raises(ShapeError) as caught:
            layer.output_shape(shape)
        assert "\n" not in str(caught.value) and str(caught.value).startswith("PatchMerge: "), str(caught.value)
        return
    assert (layer.output_shape(shape), layer.macs(shape), layer.num_params) == (theirs[0], theirs[1], 0), shape


@SOME
@given(shape=st.lists(st.integers(1, 6), min_size=3, max_size=5).map(tuple))
def test_verify_builds_patch_merge_as_the_reference(shape: tuple[int, ...]) -> None:
    from convcalc.verify.specs import torch_twin

    module = torch_twin(torch, convcalc.layer("PatchMerge"))
    x = torch.randn(shape)
    assert type(module).__name__ == "PatchMerge"
    assert torch.equal(module(x), merge_reference(x))


def test_patch_merge_refuses_fewer_than_three_dimensions() -> None:
    with pytest.raises(ShapeError, match=r"PatchMerge: expects a channels-last input \(…, H, W, C\) of 3 or more dimensions, got 2-D"):
        convcalc.layer("PatchMerge").output_shape((4, 4))


# -- ShiftedWindowAttention -------------------------------------------------------------------


def weights(c: int, window: tuple[int, int], heads: int, qkv_bias: bool, proj_bias: bool, v2: bool, seed: int = 0) -> dict[str, Any]:
    """Random weights under verify's module's names (torchvision's, a dot written ``_``)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*size: int) -> Any:
        return torch.randn(size, generator=g)

    out = {"qkv_weight": rand(3 * c, c) * c**-0.5, "proj_weight": rand(c, c) * c**-0.5}
    if qkv_bias:
        out["qkv_bias"] = rand(3 * c)
    if proj_bias:
        out["proj_bias"] = rand(c)
    if v2:
        out.update(logit_scale=rand(heads, 1, 1), cpb_mlp_0_weight=rand(512, 2), cpb_mlp_0_bias=rand(512), cpb_mlp_2_weight=rand(heads, 512) * 0.05)
    else:
        out["relative_position_bias_table"] = rand((2 * window[0] - 1) * (2 * window[1] - 1), heads)
    return out


def attention_reference(x: Any, w: dict[str, Any], window: tuple[int, int], shift: tuple[int, int], heads: int, v2: bool) -> Any:
    """Swin's window attention, one window and one head at a time: zero padding to whole windows, a cyclic
    shift (none along an axis one window covers), attention with the relative position bias and -100 between
    positions of different regions of the shifted map (per axis: before the last window, the last window
    before the last ``shift`` positions, those), the shift undone, the padding cut off."""
    n, h, w_, c = x.shape
    wh, ww = window
    ph, pw = -(-h // wh) * wh, -(-w_ // ww) * ww
    sh, sw = (0 if wh >= ph else shift[0]), (0 if ww >= pw else shift[1])
    x = torch.cat([x, x.new_zeros(n, ph - h, w_, c)], 1)
    x = torch.cat([x, x.new_zeros(n, ph, pw - w_, c)], 2)
    x = torch.roll(x, (-sh, -sw), (1, 2))
    d = c // heads
    tokens = [(i, j) for i in range(wh) for j in range(ww)]
    if v2:  # the continuous position bias: the MLP on log-spaced offsets, 16·sigmoid
        def coord(offset: int, size: int) -> float:
            t = torch.tensor(offset / (size - 1) * 8.0)
            return float(torch.sign(t) * torch.log2(t.abs() + 1.0) / 3.0)

        offsets = [(a, b) for a in range(-(wh - 1), wh) for b in range(-(ww - 1), ww)]
        coords = torch.tensor([[coord(a, wh), coord(b, ww)] for a, b in offsets])
        table = F.linear(torch.relu(F.linear(coords, w["cpb_mlp_0_weight"], w["cpb_mlp_0_bias"])), w["cpb_mlp_2_weight"])
        table = 16 * torch.sigmoid(table)
    else:
        table = w["relative_position_bias_table"]
    bias = torch.stack([torch.stack([table[(a[0] - b[0] + wh - 1) * (2 * ww - 1) + (a[1] - b[1] + ww - 1)] for b in tokens]) for a in tokens])

    def region(pos: int, size: int, win: int, s: int) -> int:
        """0 before the last window, 1 in it before the last ``s`` positions, 2 in those (the last ``s`` win where a
        shift longer than the window makes them overlap the first region: torchvision writes them last)."""
        return 2 if pos >= size - s else (1 if pos >= size - win else 0)

    qkv_bias = w.get("qkv_bias")
    if v2 and qkv_bias is not None:
        qkv_bias = torch.cat([qkv_bias[:c], torch.zeros(c), qkv_bias[2 * c :]])
    out = torch.zeros_like(x)
    for b in range(n):
        for top in range(0, ph, wh):
            for left in range(0, pw, ww):
                block = x[b, top : top + wh, left : left + ww].reshape(wh * ww, c)
                q, k, v = F.linear(block, w["qkv_weight"], qkv_bias).chunk(3, dim=-1)
                labels = torch.tensor([(region(top + i, ph, wh, sh) if sh else 0) * 3 + (region(left + j, pw, ww, sw) if sw else 0) for i, j in tokens])
                mask = (labels[:, None] != labels[None, :]).float() * -100.0 if sh or sw else 0.0
                heads_out = []
                for head in range(heads):
                    qh, kh, vh = (t[:, head * d : (head + 1) * d] for t in (q, k, v))
                    if v2:
                        scale = torch.clamp(w["logit_scale"][head, 0, 0], max=math.log(100.0)).exp()
                        attn = (F.normalize(qh, dim=-1) @ F.normalize(kh, dim=-1).T) * scale
                    else:
                        attn = (qh * d**-0.5) @ kh.T
                    attn = torch.softmax(attn + bias[:, :, head] + mask, dim=-1)
                    heads_out.append(attn @ vh)
                result = F.linear(torch.cat(heads_out, dim=-1), w["proj_weight"], w.get("proj_bias"))
                out[b, top : top + wh, left : left + ww] = result.reshape(wh, ww, c)
    out = torch.roll(out, (sh, sw), (1, 2))
    return out[:, :h, :w_].contiguous()


ATTENTION = st.fixed_dictionaries({
    "batch": st.integers(1, 2), "h": st.integers(1, 9), "w": st.integers(1, 9), "c": st.integers(1, 12),
    "window": st.tuples(st.integers(1, 5), st.integers(1, 5)), "shift": st.tuples(st.integers(0, 4), st.integers(0, 4)),
    "heads": st.integers(1, 6), "qkv_bias": st.booleans(), "proj_bias": st.booleans(), "v2": st.booleans(),
})  # fmt: skip


def _layer(a: dict[str, Any], **more: Any) -> Any:
    return convcalc.layer("ShiftedWindowAttentionV2" if a["v2"] else "ShiftedWindowAttention", window_size=list(a["window"]),
                          shift_size=list(a["shift"]), num_heads=a["heads"], qkv_bias=a["qkv_bias"], proj_bias=a["proj_bias"], **more)


@SOME
@given(a=ATTENTION)
def test_window_attention_matches_the_reference(a: dict[str, Any]) -> None:
    """Output shape, params (the reference's weights), MACs (FlopCounterMode on the reference) and the verdict
    (the reference cannot split C channels into heads that do not divide them); verify's module gives the
    reference's values with the same weights, and FlopCounterMode counts the same on it."""
    from convcalc.verify.specs import torch_twin

    window = a["window"]
    if a["v2"] and 1 in window:  # V2's coordinates divide by window - 1: NaN for a window of 1, as in torchvision
        window = tuple(max(2, s) for s in window)
        a = {**a, "window": window}
    shape = (a["batch"], a["h"], a["w"], a["c"])
    layer = _layer(a)
    if a["c"] % a["heads"]:
        with pytest.raises(ShapeError) as caught:
            layer.output_shape(shape)
        message = str(caught.value)
        assert message.startswith(layer.type_name + ": ") and "\n" not in message and "num_heads" in message, message
        suggested = int(message.rsplit("such as ", 1)[1])
        assert a["c"] % suggested == 0, message
        return
    w = weights(a["c"], window, a["heads"], a["qkv_bias"], a["proj_bias"], a["v2"])
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    theirs = counted(attention_reference, x, w, window, a["shift"], a["heads"], a["v2"])
    assert not isinstance(theirs, Exception), theirs
    bound = layer.bind(shape)
    assert bound.output_shape(shape) == tuple(theirs[0].shape) == shape
    assert bound.num_params == sum(t.numel() for t in w.values()), a
    assert bound.macs(shape) == theirs[1], a
    module = torch_twin(torch, bound).eval()
    module.load_state_dict(w)
    assert sum(p.numel() for p in module.parameters()) == bound.num_params
    mine = counted(module, x)
    assert not isinstance(mine, Exception), mine
    assert mine[1] == theirs[1], a
    assert torch.allclose(mine[0], theirs[0], rtol=1e-4, atol=1e-5), (a, (mine[0] - theirs[0]).abs().max())


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("shape", [(2, 4, 4), (1, 2, 4, 4, 4), (4,)])
def test_window_attention_takes_a_4d_input_only(v2: bool, shape: tuple[int, ...]) -> None:
    """torchvision reads ``B, H, W, C = input.shape``: any other rank raises there."""
    layer = convcalc.layer("ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention", window_size=2, num_heads=1)
    x = torch.zeros(shape)
    with pytest.raises(ValueError):
        _batch, _h, _w, _c = x.shape  # what torchvision's function does first
    with pytest.raises(ShapeError, match=r"expects a channels-last 4-D input \(N, H, W, C\), got"):
        layer.output_shape(shape)


def test_a_written_dim_must_be_the_channels() -> None:
    layer = convcalc.layer("ShiftedWindowAttention", dim=8, window_size=[2, 2], num_heads=2)
    with pytest.raises(ShapeError, match=r"expects dim = 6 .*use dim: 6"):
        layer.output_shape((1, 4, 4, 6))
    assert layer.output_shape((1, 4, 4, 8)) == (1, 4, 4, 8)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"window_size": [2, 2, 2], "num_heads": 1}, "window_size needs 2 values"),
    ({"window_size": 0, "num_heads": 1}, "window_size must be at least 1"),
    ({"window_size": 2, "shift_size": -1, "num_heads": 1}, "shift_size must be at least 0"),
    ({"window_size": 2, "num_heads": 0}, "num_heads must be at least 1"),
    ({"window_size": 2}, "num_heads"),
    ({"window_size": 2, "num_heads": 1, "dropout": 2.0}, "dropout must be between 0.0 and 1.0"),
])  # fmt: skip
def test_arguments_are_checked(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(SpecError, match=words):
        convcalc.layer("ShiftedWindowAttention", **kwargs)


def test_the_spec_runs_in_verify_and_every_row_is_confirmed(tmp_path: Any) -> None:
    """A Swin stage as a spec: verify builds the families with its own modules and confirms every row."""
    from convcalc.verify import verify_model

    spec = tmp_path / "swin.yaml"
    spec.write_text(
        "name: swin stage\ninput: [3, 30, 22]\nlayers:\n"
        "  - Conv2d: {out_channels: 12, kernel_size: 2, stride: 2}\n"
        "  - Permute: {dims: [0, 2, 3, 1]}\n"
        "  - ShiftedWindowAttention: {window_size: [4, 4], num_heads: 3}\n"
        "  - ShiftedWindowAttention: {window_size: 4, shift_size: 2, num_heads: 3, qkv_bias: false}\n"
        "  - PatchMerge\n"
        "  - Linear: {out_features: 24, bias: false}\n"
        "  - ShiftedWindowAttentionV2: {window_size: [3, 5], shift_size: [1, 2], num_heads: 4}\n"
        "  - PatchMerge\n"
    )
    report = verify_model(convcalc.load_model(str(spec)), batch=2)
    assert report.ok and len(report.checks) == 8, [str(c) for c in report.checks]
    assert tuple(report.summary.output_shape) == (2, 4, 3, 96)


def test_heads_that_do_not_divide_wide_channels_are_refused_at_once() -> None:
    """The suggested num_heads was searched among every divisor of the channels: 10¹²+1 channels ran for
    minutes (`convcalc model` on N×4×4×1000000000001 with num_heads: 2 never answered)."""
    import time

    layer = convcalc.layer("ShiftedWindowAttention", window_size=2, num_heads=2)
    start = time.perf_counter()
    with pytest.raises(ShapeError, match=r"do not split into num_heads=2 heads.*such as 1\b") as caught:
        layer.output_shape((1, 4, 4, 10**12 + 1))
    assert time.perf_counter() - start < 1
    assert "\n" not in caught.value.message
