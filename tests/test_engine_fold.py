"""Unfold and Fold (im2col, col2im) against torch.nn.Unfold and torch.nn.Fold: the same verdict, shape,
parameters (none) and MACs (FlopCounterMode's count / 2: none) on random arguments and inputs of every
rank, torch's refusals included (no block fits, a channel count that is no multiple of kh·kw, a block
count that output_size does not hold, 3-D/4-D and 2-D/3-D inputs only); each refusal is one line that
names a value that works, and torch takes that value."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError

torch = pytest.importorskip("torch")

SOME = settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
Result = tuple[tuple[int, ...], int, int]


def engine(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> Result | Exception:
    try:
        layer = convcalc.layer(type_name, **kwargs)
        out = layer.output_shape(shape)
    except (ShapeError, SpecError) as error:
        message = str(error)
        assert "\n" not in message and message.startswith(type_name), message
        return error
    layer.describe()  # the rest of the API answers for any input the layer accepts
    layer.warnings(shape)
    assert layer.explain(shape)
    layer.window(shape)
    return out, layer.num_params, layer.macs(shape)


def oracle(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> Result | Exception:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings(), counter:
        warnings.simplefilter("ignore")
        try:
            module = getattr(torch.nn, type_name)(**kwargs)
            out = module(torch.zeros(shape))
        except (RuntimeError, IndexError, ValueError, TypeError) as error:  # torch refuses
            return error
    return tuple(out.shape), sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


def same(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> Result | Exception:
    mine, theirs = engine(type_name, kwargs, shape), oracle(type_name, kwargs, shape)
    where = f"{type_name}({kwargs}) on {shape}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises ({theirs}) but convcalc answers {mine}: {where}"
    else:
        assert not isinstance(mine, Exception), f"convcalc raises ({mine}) but torch gives {theirs[0]}: {where}"
        assert mine == theirs, where
    return mine


def pair(low: int, high: int) -> st.SearchStrategy[Any]:
    """An int or a pair, as torch's _pair reads them; sometimes a list of the wrong length."""
    one = st.integers(low, high)
    return st.one_of(one, st.tuples(one, one), st.lists(one, min_size=1, max_size=3))


WINDOW = {"kernel_size": pair(0, 4), "dilation": pair(0, 3), "padding": pair(-1, 2), "stride": pair(0, 3)}


@SOME
@given(kwargs=st.fixed_dictionaries({"kernel_size": pair(0, 4)}, optional={k: v for k, v in WINDOW.items() if k != "kernel_size"}),
       shape=st.lists(st.integers(1, 7), min_size=1, max_size=5).map(tuple))
def test_unfold_matches_torch(kwargs: dict[str, Any], shape: tuple[int, ...]) -> None:
    same("Unfold", kwargs, shape)


def _blocks(size: int, k: int, d: int, p: int, s: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@SOME
@given(kwargs=st.fixed_dictionaries({"output_size": pair(0, 8), "kernel_size": pair(0, 4)},
                                    optional={k: v for k, v in WINDOW.items() if k != "kernel_size"}),
       lead=st.lists(st.integers(1, 3), max_size=2), channels=st.integers(1, 3), data=st.data())
def test_fold_matches_torch(kwargs: dict[str, Any], lead: list[int], channels: int, data: st.DataObject) -> None:
    """Inputs drawn to fit (C·kh·kw values, the block count output_size holds) about half the time, else anything."""

    def two(name: str, default: int) -> tuple[int, int]:
        value = kwargs.get(name, default)
        return tuple(value) if isinstance(value, (list, tuple)) and len(value) == 2 else (value, value) if isinstance(value, int) else (1, 1)

    (oh, ow), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = (two(n, d) for n, d in
                                                         (("output_size", 1), ("kernel_size", 1), ("dilation", 1), ("padding", 0), ("stride", 1)))
    fits = [max(channels * kh * kw, 1), max(_blocks(oh, kh, dh, ph, sh) * _blocks(ow, kw, dw, pw, sw) if min(sh, sw) > 0 else 1, 1)]
    last = data.draw(st.one_of(st.just(fits), st.lists(st.integers(1, 40), min_size=0, max_size=3)))
    same("Fold", kwargs, (*lead, *last))


@pytest.mark.parametrize("rank", [1, 2, 3, 4, 5])
def test_the_ranks_torch_takes(rank: int) -> None:
    """Unfold: 3-D (unbatched) and 4-D; Fold: 2-D (unbatched) and 3-D; as torch (checked on one input of each rank)."""
    shape = (1, 4, 3, 3, 3)[-rank:] if rank < 5 else (1, 1, 4, 3, 3)
    assert isinstance(same("Unfold", {"kernel_size": 2}, shape), Exception) == (rank not in (3, 4))
    shape = (2, 4, 1, 1, 1)[:rank] if rank != 2 else (4, 1)
    folded = same("Fold", {"output_size": 2, "kernel_size": 2}, shape)
    assert isinstance(folded, Exception) == (rank not in (2, 3)), folded


def _apply_fix(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...], message: str) -> tuple[dict[str, Any], tuple[int, ...]]:
    """The arguments and input a refusal's "use …" names (the first value it offers)."""
    axis = {"H": 0, "W": 1}
    if found := re.search(r"^\w+: ([HW]): .*; use an input of at least (\d+) or padding", message):
        spatial = list(shape[-2:])
        spatial[axis[found[1]]] = int(found[2])
        return kwargs, (*shape[:-2], *spatial)
    if found := re.search(r"^\w+: ([HW]): .*; use an output_size of at least (\d+) or padding", message):
        size = kwargs["output_size"]
        size = list(size) if isinstance(size, (list, tuple)) else [size, size]
        size[axis[found[1]]] = int(found[2])
        return {**kwargs, "output_size": size}, shape
    if found := re.search(r"must be divisible by kernel_size .*; use (\d+)", message):
        return kwargs, (*shape[:-2], int(found[1]), shape[-1])
    if found := re.search(r"; use an input of \[([\d, ]+)\]$", message):
        return kwargs, tuple(int(v) for v in found[1].split(","))
    raise AssertionError(f"no value that works in {message!r}")


@SOME
@given(kwargs=st.fixed_dictionaries({"output_size": st.tuples(st.integers(1, 6), st.integers(1, 6)), "kernel_size": st.integers(1, 4)},
                                    optional={"dilation": st.integers(1, 3), "padding": st.integers(0, 2), "stride": st.integers(1, 3)}),
       shape=st.lists(st.integers(1, 9), min_size=2, max_size=3).map(tuple), unfold=st.booleans())
def test_each_refusal_names_a_value_torch_takes(kwargs: dict[str, Any], shape: tuple[int, ...], unfold: bool) -> None:
    """Following the refusal's advice (an axis at a time) ends at an input torch takes."""
    type_name = "Unfold" if unfold else "Fold"
    if unfold:
        kwargs = {k: v for k, v in kwargs.items() if k != "output_size"}
        shape = (*shape, 2)
    for _ in range(6):  # each axis, the channels, the blocks
        verdict = same(type_name, kwargs, shape)
        if not isinstance(verdict, Exception):
            return
        assert isinstance(verdict, ShapeError), verdict
        kwargs, shape = _apply_fix(type_name, kwargs, shape, str(verdict))
    raise AssertionError(f"{type_name}({kwargs}) on {shape}: still refused after following its advice")


@pytest.mark.parametrize(
    "type_name, kwargs, shape, words",
    [
        ("Unfold", {"kernel_size": 4, "stride": 2}, (1, 2, 3, 5), ["H: kernel 4 is larger than the padded input 3", "no block fits",
                                                                   "at least 4 or padding ≥ 1"]),
        ("Unfold", {"kernel_size": 3}, (5, 5), ["expects a 4-D (N, C, H, W) or unbatched 3-D (C, H, W) input, got 2-D [5, 5]"]),
        ("Fold", {"output_size": 4, "kernel_size": 2}, (1, 13, 9), ["dimension 1 of [1, 13, 9] (13) must be divisible by kernel_size 2×2 = 4",
                                                                    "use 12 or 16"]),
        ("Fold", {"output_size": 4, "kernel_size": 2}, (1, 12, 8), ["output_size 4 holds 3×3 = 9 blocks, but dimension 2 of [1, 12, 8] is 8",
                                                                    "use an input of [1, 12, 9]"]),
        ("Fold", {"output_size": 3, "kernel_size": 5}, (1, 25, 1), ["kernel 5 is larger than the padded output_size 3",
                                                                    "use an output_size of at least 5 or padding ≥ 1"]),
        ("Fold", {"output_size": 4, "kernel_size": 2}, (1, 1, 12, 9), ["expects a 3-D (N, C×kh×kw, L) or unbatched 2-D"]),
    ],
)
def test_refusals_say_the_rule_and_a_value_that_works(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...], words: list[str]) -> None:
    with pytest.raises(ShapeError) as caught:
        convcalc.layer(type_name, **kwargs).output_shape(shape)
    assert all(w in str(caught.value) for w in words), str(caught.value)
    assert isinstance(oracle(type_name, kwargs, shape), Exception)


def test_im2col_of_the_lecture() -> None:
    """A 3×3 kernel over a 3-channel 32×32 image, padding 1: 27 values per block, 32·32 blocks; Fold puts them back."""
    unfold = convcalc.layer("Unfold", kernel_size=3, padding=1)
    assert unfold.output_shape((8, 3, 32, 32)) == (8, 27, 1024)
    lines = unfold.explain((8, 3, 32, 32))
    assert "blocks: L = 32 × 32 = 1024" in lines and "values per block: C × kh × kw = 3 × 3 × 3 = 27" in lines
    assert convcalc.layer("Fold", output_size=32, kernel_size=3, padding=1).output_shape((8, 27, 1024)) == (8, 3, 32, 32)


def test_params_are_torchs_constructor_arguments_in_order() -> None:
    import inspect

    from convcalc.layers.base import lookup

    for name in ("Unfold", "Fold"):
        _, family = lookup(name)
        assert not family.OWN_MODULE
        assert list(inspect.signature(getattr(torch.nn, name).__init__).parameters)[1:] == list(family.PARAMS)
