"""Narrow (``torch.narrow``) against torch: the same verdict, shape, parameters and MACs on random
arguments, torch's refusals included; verify's module for it computes what torch.narrow computes."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import ShapeError, SpecError
from convcalc.layers import IDENTITY, Window

torch = pytest.importorskip("torch")

SOME = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def engine(kwargs: dict[str, int], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    try:
        layer = convcalc.layer("Narrow", **kwargs)
        out = layer.output_shape(shape)
    except (ShapeError, SpecError) as error:
        message = str(error)
        assert "\n" not in message and message.startswith("Narrow"), message
        return error
    layer.window(shape)  # the rest of the API answers for any input the layer accepts
    layer.describe()
    layer.warnings(shape)
    layer.explain(shape)
    return out, layer.num_params, layer.macs(shape)


def oracle(kwargs: dict[str, int], shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int] | Exception:
    """torch.narrow's shape and FlopCounterMode's flops // 2; an empty result counts as a refusal
    (convcalc does not calculate with empty tensors)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings(), counter:
        warnings.simplefilter("ignore")
        try:
            out = torch.narrow(torch.zeros(shape), kwargs["dim"], kwargs["start"], kwargs["length"])
        except Exception as error:  # noqa: BLE001  IndexError, RuntimeError: torch refuses
            return error
    if out.numel() == 0:
        return ValueError(f"empty output {tuple(out.shape)}")
    return tuple(out.shape), 0, counter.get_total_flops() // 2


@SOME
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=5).map(tuple), dim=st.integers(-6, 5), start=st.integers(-8, 8),
       length=st.integers(-1, 8))
def test_narrow_matches_torch(shape: tuple[int, ...], dim: int, start: int, length: int) -> None:
    kwargs = {"dim": dim, "start": start, "length": length}
    mine, theirs = engine(kwargs, shape), oracle(kwargs, shape)
    where = f"Narrow({kwargs}) on {shape}"
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises ({theirs}) but convcalc answers {mine}: {where}"
        return
    assert not isinstance(mine, Exception), f"convcalc raises ({mine}) but torch gives {theirs[0]}: {where}"
    assert mine == theirs, where


@settings(deadline=None, max_examples=60)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple), data=st.data())
def test_verify_builds_narrow_as_torch_narrow(shape: tuple[int, ...], data: st.DataObject) -> None:
    from convcalc.verify.specs import _merge_classes

    dim = data.draw(st.integers(0, len(shape) - 1))
    start = data.draw(st.integers(0, shape[dim] - 1))
    length = data.draw(st.integers(1, shape[dim] - start))
    layer = convcalc.layer("Narrow", dim=dim, start=start, length=length)
    module = _merge_classes(torch)["Narrow"](**layer.torch_kwargs())
    x = torch.randn(shape)
    assert type(module).__name__ == "Narrow"
    assert torch.equal(module(x), torch.narrow(x, dim, start, length))


def test_params_are_torch_narrows_arguments_in_order() -> None:
    import inspect

    from convcalc.layers.base import lookup
    from convcalc.verify.specs import _merge_classes

    _, family = lookup("Narrow")
    assert family.OWN_MODULE
    assert torch.narrow.__doc__.lstrip().startswith(f"narrow(input, {', '.join(family.PARAMS)})")
    assert list(inspect.signature(_merge_classes(torch)["Narrow"].__init__).parameters)[1:] == list(family.PARAMS)


@pytest.mark.parametrize(
    "kwargs, shape, words",
    [
        ({"dim": 1, "start": 4, "length": 2}, (2, 5, 3), ["start 4 + length 2 exceeds dimension 1", "(size 5)", "a length up to 1"]),
        ({"dim": 1, "start": -6, "length": 1}, (2, 5, 3), ["start -6 is out of range", "from -5 to 4"]),
        ({"dim": 3, "start": 0, "length": 1}, (2, 5, 3), ["dim=3 is out of range", "from -3 to 2"]),
        ({"dim": 1, "start": 5, "length": 1}, (2, 5, 3), ["exceeds dimension 1", "a start from -5 to 4"]),
    ],
)
def test_refusals_say_the_rule_and_a_value_that_works(kwargs: dict[str, int], shape: tuple[int, ...], words: list[str]) -> None:
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("Narrow", **kwargs).output_shape(shape)
    assert all(w in str(caught.value) for w in words), str(caught.value)


def _suggested(message: str, kwargs: dict[str, int]) -> list[dict[str, int]]:
    """The arguments a refusal's "use …" names: each end of a start range, or the longest length."""
    import re

    if found := re.search(r"use start (-?\d+) and a length up to (\d+)$", message):
        return [{**kwargs, "start": int(found[1]), "length": int(found[2])}]
    if found := re.search(r"use a start from (-?\d+) to (-?\d+)$", message):
        return [{**kwargs, "start": int(found[1])}, {**kwargs, "start": int(found[2])}]
    if found := re.search(r"use a length up to (\d+)$", message):
        return [{**kwargs, "length": int(found[1])}]
    raise AssertionError(f"no value that works in {message!r}")


@SOME
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple), data=st.data())
def test_a_refused_start_or_length_names_values_that_torch_accepts(shape: tuple[int, ...], data: st.DataObject) -> None:
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    kwargs = {"dim": dim, "start": data.draw(st.integers(-9, 9)), "length": data.draw(st.integers(1, 9))}
    mine = engine(kwargs, shape)
    if not isinstance(mine, ShapeError):
        return
    for fix in _suggested(str(mine), kwargs):
        assert not isinstance(oracle(fix, shape), Exception), f"{mine} — but torch refuses {fix} on {shape}"


def test_an_empty_narrow_is_refused_when_written() -> None:
    with pytest.raises(SpecError, match="length must be at least 1"):
        convcalc.layer("Narrow", dim=1, start=0, length=0)


def test_a_slice_of_channels_keeps_the_receptive_field_and_a_spatial_crop_moves_its_start() -> None:
    assert convcalc.layer("Narrow", dim=1, start=2, length=2).window((1, 4, 6, 6)) == IDENTITY
    assert convcalc.layer("Narrow", dim=-1, start=-4, length=3).window((1, 4, 6, 6)) == [Window(1, 1, 0), Window(1, 1, -2)]


@pytest.mark.parametrize(("family", "kwargs"), [
    ("Narrow", {"dim": 10**23, "start": 0, "length": 1}),
    ("Narrow", {"dim": True, "start": 0, "length": 1}),
    ("Permute", {"dims": [0, 2, 3, 10**23]}),
    ("Permute", {"dims": [True, 0, 2, 3]}),
])
def test_a_dimension_that_is_no_index_names_one_that_is(family: str, kwargs: dict) -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.layer(family, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("a dimension from -rank to rank - 1 of the input, such as 1 (the channels of N×C×H×W)"), message
