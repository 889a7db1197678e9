"""Slice (``x[..., start:end:step]`` on one dimension) against torch's indexing: the same verdict and shape on random
arguments (Python's slice rules: None, negative, clamped ends; torch's positive steps only), 0 parameters and
FlopCounterMode's 0 MACs, an empty result refused with a slice that works; verify's module slices as torch; emit-spec
writes stepped slices as Slice rows: LeViT's Subsample (``x.view(B, r, r, C)[:, ::stride, ::stride]``, copied as timm
writes it) round-trips."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError
from convcalc.layers import IDENTITY, Window

torch = pytest.importorskip("torch")

SOME = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def engine(kwargs: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    try:
        layer = convcalc.layer("Slice", **kwargs)
        out = layer.output_shape(shape)
    except (ShapeError, SpecError) as error:
        assert "\n" not in str(error) and str(error).startswith("Slice"), str(error)
        return error
    layer.window(shape)
    layer.describe()
    return out, layer.num_params, layer.macs(shape)


def oracle(kwargs: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    """torch's x[..., start:end:step] on dimension dim; an empty result counts as a refusal (convcalc does not calculate
    with empty tensors)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings(), counter:
        warnings.simplefilter("ignore")
        try:
            index = [slice(None)] * len(shape)
            index[kwargs["dim"]] = slice(kwargs.get("start"), kwargs.get("end"), kwargs.get("step", 1))
            out = torch.zeros(shape)[tuple(index)]
        except (IndexError, ValueError) as error:  # a dimension out of range, a step below 1
            return error
    if out.numel() == 0:
        return ValueError(f"empty output {tuple(out.shape)}")
    return tuple(out.shape), 0, counter.get_total_flops() // 2


ENDS = st.one_of(st.none(), st.integers(-9, 9))


@SOME
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4).map(tuple), dim=st.integers(-5, 4),
       kwargs=st.fixed_dictionaries({}, optional={"start": ENDS, "end": ENDS, "step": st.integers(-1, 4)}))
def test_slice_matches_torch(shape: tuple[int, ...], dim: int, kwargs: dict[str, Any]) -> None:
    kwargs = {"dim": dim, **kwargs}
    mine, theirs = engine(kwargs, shape), oracle(kwargs, shape)
    where = f"Slice({kwargs}) on {shape}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises ({theirs}) but convcalc answers {mine}: {where}"
        if isinstance(mine, ShapeError) and "keeps no entry" in str(mine):  # the slice it names works
            assert "such as start 0 and no end" in str(mine)
            assert not isinstance(oracle({"dim": dim, "start": 0, "step": kwargs.get("step", 1)}, shape), Exception)
        return
    assert not isinstance(mine, Exception), f"convcalc raises ({mine}) but torch gives {theirs[0]}: {where}"
    assert mine == theirs, where


@settings(deadline=None, max_examples=60)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple), data=st.data())
def test_verify_builds_slice_as_torch_indexing(shape: tuple[int, ...], data: st.DataObject) -> None:
    from convcalc.verify.specs import _merge_classes

    dim = data.draw(st.integers(0, len(shape) - 1))
    kwargs = {"dim": dim, "start": data.draw(st.integers(0, shape[dim] - 1)), "end": data.draw(ENDS), "step": data.draw(st.integers(1, 3))}
    if isinstance(engine(kwargs, shape), Exception):
        return
    module = _merge_classes(torch)["Slice"](**convcalc.layer("Slice", **kwargs).torch_kwargs())
    x = torch.randn(shape)
    index = [slice(None)] * len(shape)
    index[dim] = slice(kwargs["start"], kwargs["end"], kwargs["step"])
    assert torch.equal(module(x), x[tuple(index)])


def test_a_stepped_spatial_slice_is_a_strided_window() -> None:
    layer = convcalc.layer("Slice", dim=3, start=1, step=2)
    assert layer.output_shape((1, 3, 8, 9)) == (1, 3, 8, 4)
    assert layer.window((1, 3, 8, 9)) == [Window(1, 1, 0), Window(1, 2, -1)]
    assert convcalc.layer("Slice", dim=1, step=2).window((1, 3, 8, 9)) == IDENTITY


def test_an_empty_slice_says_one_that_works() -> None:
    with pytest.raises(ShapeError, match=r"\[5:\] keeps no entry of dimension 1 of \[2, 4, 3\] \(size 4\); use a start from -4 to 3"):
        convcalc.layer("Slice", dim=1, start=5).output_shape((2, 4, 3))


MODELS = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Subsample(nn.Module):  # timm.models.levit.Subsample
        def __init__(self, stride, resolution):
            super().__init__()
            self.stride = stride
            self.resolution = resolution

        def forward(self, x):
            B, N, C = x.shape
            x = x.view(B, self.resolution, self.resolution, C)[:, ::self.stride, ::self.stride]
            return x.reshape(B, -1, C)


    class LevitLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.sub = Subsample(2, 5)
            self.q = nn.Linear(8, 4)

        def forward(self, x):  # N, 25, 8 tokens of a 5×5 grid
            return self.q(self.sub(self.fc(x)))[:, 1::3]
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "sliced.py"
    path.write_text(MODELS)
    return path


def test_levits_subsample_round_trips(models: Path, tmp_path: Path, cli) -> None:
    from test_verify_emit_channels_last import kinds, round_trip

    spec, (_, _, summary) = round_trip(cli, models, tmp_path, "LevitLike", "25x8")
    slices = [e["Slice"] for e in spec["layers"] if isinstance(e, dict) and "Slice" in e]
    assert slices == [{"dim": 1, "start": 0, "end": 5, "step": 2}, {"dim": 2, "start": 0, "end": 5, "step": 2},
                      {"dim": 1, "start": 1, "end": 9, "step": 3}], kinds(spec["layers"])
    assert tuple(summary.output_shape) == (1, 3, 4)
