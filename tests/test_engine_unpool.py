"""Max pooling with ``return_indices=True`` and MaxUnpool1d/2d/3d: the engine agrees with real
torch layers (torch is the oracle).

A max pool with return_indices returns (values, indices); convcalc's output shape is the values'
shape and the indices have the same shape. MaxUnpool takes (values, indices) and scatters them
to ``(in − 1)·stride − 2·padding + kernel`` per axis. Property tests draw random arguments and
inputs, values torch refuses included, and assert that convcalc refuses exactly when torch does
(an empty output counts as a refusal: convcalc does not calculate with empty tensors), and
otherwise gives torch's shapes, 0 parameters and 0 MACs (FlopCounterMode).
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SCALE, input_shapes, per_axis, values

import convcalc

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

EXAMPLES = int(150 * SCALE)
MAX_SIZE = {1: 10, 2: 8, 3: 5}


def engine(type_name: str, kwargs: dict, shape: tuple[int, ...]):
    try:
        layer = convcalc.layer(type_name, **kwargs)
        return layer.output_shape(shape), layer.num_params, layer.macs(shape), layer
    except (convcalc.ShapeError, convcalc.SpecError) as error:
        assert "\n" not in str(error)
        return error


def run_torch(module, *inputs):
    """(output shapes, params, MACs) or the exception; an empty output is a refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                out = module(*inputs)
        except Exception as error:  # torch refuses with RuntimeError, ValueError, IndexError …
            return error
    outs = out if isinstance(out, tuple) else (out,)
    if any(o.numel() == 0 for o in outs):
        return ValueError("empty output")
    return tuple(tuple(o.shape) for o in outs), sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


def agree(mine, theirs, where: str) -> str:
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises {theirs!r} but convcalc answers {mine[:3]}: {where}"
        return "error"
    assert not isinstance(mine, Exception), f"convcalc raises {mine} but torch gives {theirs}: {where}"
    return "ok"


@st.composite
def pool_cases(draw, type_name: str):
    dims = int(type_name[-2])
    wild = draw(st.booleans())
    kwargs = {"kernel_size": draw(per_axis(dims, values([1, 2, 3], [0], wild))), "return_indices": True}
    if draw(st.booleans()):
        kwargs["stride"] = draw(st.none() | per_axis(dims, values([1, 2, 3], [0], wild)))
    if draw(st.booleans()):
        kwargs["padding"] = draw(per_axis(dims, values([0, 1, 1], [-1, 2], wild)))
    if draw(st.booleans()):
        kwargs["dilation"] = draw(per_axis(dims, values([1, 2], [0], wild)))
    kwargs["ceil_mode"] = draw(st.booleans())
    return kwargs, draw(input_shapes(dims, MAX_SIZE[dims], wild))


@pytest.mark.parametrize("type_name", ["MaxPool1d", "MaxPool2d", "MaxPool3d"])
def test_max_pool_with_indices_agrees_with_torch(type_name: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(pool_cases(type_name))
    def check(case):
        kwargs, shape = case
        mine = engine(type_name, kwargs, shape)
        try:
            module = getattr(torch.nn, type_name)(**kwargs)
        except Exception as error:  # noqa: BLE001
            agree(mine, error, f"{type_name}{kwargs} {shape}")
            return
        theirs = run_torch(module, torch.zeros(shape))
        if agree(mine, theirs, f"{type_name}{kwargs} {shape}") == "ok":
            out, params, macs, layer = mine
            assert theirs == ((out, out), params, macs)  # values and indices of the same shape
            assert layer.returns_indices and layer.torch_kwargs()["return_indices"] is True

    check()


@pytest.mark.parametrize("type_name", ["AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"])
def test_adaptive_max_pool_with_indices_agrees_with_torch(type_name: str) -> None:
    dims = int(type_name[-2])

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(st.integers(1, 4), input_shapes(dims, MAX_SIZE[dims], False))
    def check(size, shape):
        kwargs = {"output_size": size, "return_indices": True}
        mine = engine(type_name, kwargs, shape)
        theirs = run_torch(getattr(torch.nn, type_name)(**kwargs), torch.zeros(shape))
        if agree(mine, theirs, f"{type_name}{kwargs} {shape}") == "ok":
            assert theirs == ((mine[0], mine[0]), 0, 0)

    check()


@st.composite
def unpool_cases(draw, type_name: str):
    dims = int(type_name[-2])
    wild = draw(st.booleans())
    kwargs = {"kernel_size": draw(per_axis(dims, values([1, 2, 3, 4], [], wild)))}
    if draw(st.booleans()):
        kwargs["stride"] = draw(st.none() | per_axis(dims, values([1, 2, 3], [], wild)))
    if draw(st.booleans()):
        kwargs["padding"] = draw(per_axis(dims, values([0, 1, 2], [3, 5], wild)))
    return kwargs, draw(input_shapes(dims, MAX_SIZE[dims], False))


@pytest.mark.parametrize("type_name", ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"])
def test_max_unpool_agrees_with_torch(type_name: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(unpool_cases(type_name))
    def check(case):
        kwargs, shape = case
        mine = engine(type_name, kwargs, shape)
        module = getattr(torch.nn, type_name)(**kwargs)
        theirs = run_torch(module, torch.zeros(shape), torch.zeros(shape, dtype=torch.long))
        if agree(mine, theirs, f"{type_name}{kwargs} {shape}") == "ok":
            assert theirs == ((mine[0],), 0, 0)
            rebuilt = getattr(torch.nn, type_name)(**mine[3].torch_kwargs())
            assert run_torch(rebuilt, torch.zeros(shape), torch.zeros(shape, dtype=torch.long)) == theirs

    check()


def test_unpool_after_pool_restores_the_size() -> None:
    pool = convcalc.layer("MaxPool2d", kernel_size=2, return_indices=True)
    unpool = convcalc.layer("MaxUnpool2d", kernel_size=2)
    assert unpool.output_shape(pool.output_shape((1, 3, 8, 6))) == (1, 3, 8, 6)


def test_the_oracle_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """An off-by-one in the unpool formula is caught."""
    from convcalc.layers.unpool import MaxUnpool

    real = MaxUnpool._output
    monkeypatch.setattr(MaxUnpool, "_output", lambda self, shape: (*real(self, shape)[:-1], real(self, shape)[-1] + 1))
    mine = engine("MaxUnpool2d", {"kernel_size": 2}, (1, 1, 3, 3))
    theirs = run_torch(torch.nn.MaxUnpool2d(2), torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3, dtype=torch.long))
    assert theirs[0] != (mine[0],)
