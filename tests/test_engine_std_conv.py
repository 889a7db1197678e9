"""StdConv2d and ScaledStdConv2d (timm's weight-standardised convolutions) against timm's classes, copied as timm
writes them (tests/std_conv_copy.py: CI has no timm): the same verdict, output shape, parameters and MACs
(FlopCounterMode's count / 2) on random arguments, torch's refusals included; verify's modules compute what timm's
compute with the same weights; a small normaliser-free net round-trips through --emit-spec."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")
copy = pytest.importorskip("std_conv_copy")

SOME = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def engine(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    try:
        layer = convcalc.layer(type_name, **kwargs).bind(shape)
        out = layer.output_shape(shape)
    except (ShapeError, SpecError) as error:
        assert "\n" not in str(error) and str(error).startswith(type_name), str(error)
        return error
    layer.describe()
    layer.explain(shape)
    return out, layer.num_params, layer.macs(shape)


def oracle(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    channels = shape[-3]
    with warnings.catch_warnings(), counter:
        warnings.simplefilter("ignore")
        try:
            module = getattr(copy, type_name)(channels, **kwargs)
            with torch.no_grad():
                out = module.eval()(torch.randn(shape))
        except (RuntimeError, ValueError) as error:  # torch refuses
            return error
    return tuple(out.shape), sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


@SOME
@given(scaled=st.booleans(), out=st.integers(1, 8), kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2),
       dilation=st.integers(1, 2), groups=st.integers(1, 4), bias=st.booleans(), gamma=st.floats(0.5, 2.0),
       shape=st.lists(st.integers(1, 8), min_size=3, max_size=4).map(tuple))
def test_std_convs_match_timms(scaled: bool, out: int, kernel: int, stride: int, padding: int, dilation: int, groups: int, bias: bool,
                               gamma: float, shape: tuple[int, ...]) -> None:
    type_name = "ScaledStdConv2d" if scaled else "StdConv2d"
    kwargs: dict[str, Any] = {"out_channels": out, "kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                              "groups": groups, "bias": bias}
    if scaled:
        kwargs["gamma"] = gamma
    mine, theirs = engine(type_name, kwargs, shape), oracle(type_name, kwargs, shape)
    where = f"{type_name}({kwargs}) on {shape}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"timm's raises ({theirs}) but convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc raises ({mine}) but timm's gives {theirs[0]}: {where}"
    assert mine == theirs, where


@settings(deadline=None, max_examples=40)
@given(scaled=st.booleans(), kernel=st.integers(1, 3), groups=st.sampled_from([1, 2]), gamma=st.floats(0.5, 2.0), eps=st.sampled_from([1e-6, 1e-4]))
def test_verify_builds_what_timm_computes(scaled: bool, kernel: int, groups: int, gamma: float, eps: float) -> None:
    from convcalc.verify.specs import torch_twin

    type_name = "ScaledStdConv2d" if scaled else "StdConv2d"
    kwargs: dict[str, Any] = {"out_channels": 4, "kernel_size": kernel, "padding": 1, "groups": groups, "bias": True, "eps": eps}
    if scaled:
        kwargs["gamma"] = gamma
    theirs = getattr(copy, type_name)(4, **kwargs)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(0.5, 1.5)
    layer = convcalc.layer(type_name, **kwargs).bind((2, 4, 6, 6))
    mine = torch_twin(torch, layer)
    assert type(mine).__name__ == type_name
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.allclose(mine(x), theirs(x), rtol=1e-5, atol=1e-6)


def test_no_padding_mode() -> None:
    """timm's forward calls F.conv2d, which pads with zeros: the family has no padding_mode to write."""
    with pytest.raises(SpecError, match="has no argument 'padding_mode'"):
        convcalc.layer("StdConv2d", out_channels=4, kernel_size=3, padding_mode="reflect")


def test_scaled_has_a_gain_per_output_channel() -> None:
    layer = convcalc.layer("ScaledStdConv2d", out_channels=8, kernel_size=3).bind((1, 3, 9, 9))
    assert layer.num_params == 8 * 3 * 9 + 8 + 8
    assert convcalc.layer("StdConv2d", out_channels=8, kernel_size=3).bind((1, 3, 9, 9)).num_params == 8 * 3 * 9 + 8


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "std_convs.py"
    path.write_text((Path(__file__).parent / "std_conv_copy.py").read_text())
    return path


def test_a_normaliser_free_net_round_trips(models: Path, tmp_path: Path, cli) -> None:
    from test_verify_emit_channels_last import kinds, round_trip

    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "NormFreeLike", "3x9x9")
    assert kinds(spec["layers"]).count("ScaledStdConv2d") == 2 and kinds(spec["layers"]).count("StdConv2d") == 1, kinds(spec["layers"])
    stem = next(e["ScaledStdConv2d"] for e in spec["layers"] if isinstance(e, dict) and "ScaledStdConv2d" in e)
    assert stem["gamma"] == pytest.approx(1.7139)
    assert tuple(summary.output_shape) == (1, 8, 5, 5)  # timm's get_padding(3, stride=2) is 1


def test_the_tf_same_variants_round_trip_with_their_padding(models: Path, tmp_path: Path, cli) -> None:
    """StdConv2dSame / ScaledStdConv2dSame: a ZeroPad2d of TF 'same' padding where the module pads in forward (same_pad),
    then the family's row; a static one is the family's row with its padding."""
    from test_verify_emit_channels_last import kinds, round_trip

    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "NormFreeSame", "3x9x8")
    rows = [(r.type, r.layer.describe()) for r in summary.rows if r.type in ("ZeroPad2d", "StdConv2d", "ScaledStdConv2d")]
    assert [t for t, _ in rows] == ["ZeroPad2d", "ScaledStdConv2d", "StdConv2d", "ZeroPad2d", "ScaledStdConv2d"], kinds(spec["layers"])
    pads = [r.layer.padding for r in summary.rows if r.type == "ZeroPad2d"]
    # (left, right, top, bottom): W 8 at stride 2 gives 4, total 1 (after); H 9 gives 5, total 2; then k 4: total 3 each
    assert pads == [(0, 1, 1, 1), (1, 2, 1, 2)], pads
    assert tuple(summary.output_shape) == (1, 4, 5, 4)
