"""AttentionBias (LeViT's and EfficientFormer's relative position bias, ``attn + attention_biases[:, attention_bias_idxs]``)
against timm's code, copied as timm writes it (tests/attention_bias_copy.py: CI has no timm): the same verdict and output
shape as torch's broadcasting of the biases on random inputs, the parameters of timm's table, MACs (FlopCounterMode) 0;
verify's module computes what timm computes; emit-spec finds the grid and stride from timm's index buffer, and a model of
EfficientFormer's attention round-trips."""

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
copy = pytest.importorskip("attention_bias_copy")

SOME = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def timm_index(resolution: tuple[int, int], stride: int) -> Any:
    return copy.levit_attention_idxs(resolution) if stride == 1 else copy.levit_downsample_idxs(resolution, stride)


def engine(kwargs: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    try:
        layer = convcalc.layer("AttentionBias", **kwargs)
        out = layer.output_shape(shape)
    except (ShapeError, SpecError) as error:
        assert "\n" not in str(error) and str(error).startswith("AttentionBias"), str(error)
        return error
    layer.describe()
    assert layer.explain(shape)
    return out, layer.num_params, layer.macs(shape)


def oracle(kwargs: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    from torch.utils.flop_counter import FlopCounterMode

    resolution = copy.to_2tuple(kwargs["resolution"])
    table = torch.nn.Parameter(torch.zeros(kwargs["num_heads"], resolution[0] * resolution[1]))
    index = timm_index(resolution, kwargs.get("stride", 1))
    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings(), counter:
        warnings.simplefilter("ignore")
        try:
            out = torch.zeros(shape) + table[:, index]
        except RuntimeError as error:  # the shapes do not broadcast
            return error
    return tuple(out.shape), table.numel(), counter.get_total_flops() // 2


@SOME
@given(heads=st.integers(1, 4), resolution=st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))),
       stride=st.integers(1, 3), lead=st.lists(st.integers(1, 3), max_size=2), data=st.data())
def test_attention_bias_matches_timms(heads: int, resolution: Any, stride: int, lead: list[int], data: st.DataObject) -> None:
    """Scores drawn to fit (heads or 1, queries, keys) about half the time, else any sizes."""
    h, w = copy.to_2tuple(resolution)
    queries = len(range(0, h, stride)) * len(range(0, w, stride))
    fits = [data.draw(st.sampled_from([heads, 1])), queries, h * w]
    last = data.draw(st.one_of(st.just(fits), st.lists(st.integers(1, 16), min_size=1, max_size=3)))
    kwargs = {"num_heads": heads, "resolution": list(resolution) if isinstance(resolution, tuple) else resolution, "stride": stride}
    shape = (*lead, *last)
    mine, theirs = engine(kwargs, shape), oracle(kwargs, shape)
    where = f"AttentionBias({kwargs}) on {shape}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises ({theirs}) but convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc raises ({mine}) but torch gives {theirs[0]}: {where}"
    assert mine == theirs, where


@settings(deadline=None, max_examples=60)
@given(heads=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5), stride=st.integers(1, 3))
def test_verify_computes_timms_biases_and_emission_finds_the_grid(heads: int, h: int, w: int, stride: int) -> None:
    from convcalc.verify.attention_bias import find_grid
    from convcalc.verify.specs import torch_twin

    layer = convcalc.layer("AttentionBias", num_heads=heads, resolution=[h, w], stride=stride)
    module = torch_twin(torch, layer)
    table = torch.randn(heads, h * w)
    module.load_state_dict({"weight": table})
    index = timm_index((h, w), stride)
    x = torch.randn(2, heads, index.shape[0], h * w)
    with torch.no_grad():
        assert torch.equal(module(x), x + table[:, index])
    found = find_grid(torch, table, index)
    assert found is not None
    # another grid or stride with the same index (a 1-wide grid's stride beyond its width) computes the same biases
    other = convcalc.layer("AttentionBias", num_heads=heads, resolution=list(found[0]), stride=found[1])
    assert other.biases == layer.biases
    again = torch_twin(torch, other)
    again.load_state_dict({"weight": table})
    with torch.no_grad():
        assert torch.equal(again(x), module(x))


def test_an_index_of_no_grid_is_not_found() -> None:
    from convcalc.verify.attention_bias import find_grid

    index = copy.levit_attention_idxs((3, 3)).flip(0)
    assert find_grid(torch, torch.zeros(2, 9), index) is None


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "attention_biases.py"
    path.write_text((Path(__file__).parent / "attention_bias_copy.py").read_text())
    return path


def test_efficientformers_attention_round_trips(models: Path, tmp_path: Path, cli) -> None:
    from test_verify_emit_channels_last import kinds, round_trip

    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "EfficientFormerLike", "12x16")
    (block,) = spec["blocks"].values()  # one block of timm's Attention, called with 2 and 3 heads
    assert "AttentionBias" in kinds(block["layers"]), kinds(block["layers"])
    rows = [r for r in summary.rows if r.type == "AttentionBias"]
    assert [(r.layer.num_heads, r.layer.resolution, r.layer.stride) for r in rows] == [(2, (3, 4), 1), (3, (3, 4), 1)]
    assert [r.params for r in rows] == [2 * 12, 3 * 12] and [r.macs for r in rows] == [0, 0]
    assert tuple(summary.output_shape) == (1, 12, 16)
