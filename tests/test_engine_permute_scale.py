"""Torch as the oracle for Permute (``x.permute(dims)``) and Scale (``x * weight``), the two families
torch.nn has no class for (ConvNeXt's channels-last MLP and its layer scale), and for LayerNorm over
the channels of a permuted N×H×W×C map.

As in ``test_engine_layers.py``: convcalc refuses (ShapeError/SpecError) exactly when torch raises,
and otherwise gives torch's output shape, parameter count and MACs (FlopCounterMode's flops // 2);
a refusal is one line starting with the type name, and the value it suggests works. The layer is
rebuilt through ``torch_kwargs()`` as the module ``verify`` builds (``convcalc.verify.specs``), which
must compute what torch's own call computes.
"""

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

SOME = settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])


def shapes(min_rank: int = 1, max_rank: int = 5, max_size: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(1, max_size), min_size=min_rank, max_size=max_rank).map(tuple)


def verify_module(type_name: str, layer: Any) -> Any:
    from convcalc.verify.specs import _merge_classes

    return _merge_classes(torch)[type_name](**layer.torch_kwargs())


def torch_answer(call: Any, shape: tuple[int, ...], params: int = 0) -> Any:
    """(output shape, params, FlopCounterMode's flops // 2) of ``call(x)`` on zeros of ``shape``, or what it raises."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad(), counter:
                result = call(torch.zeros(shape))
        except Exception as exc:  # torch's refusals: RuntimeError, IndexError …
            return exc
    return tuple(result.shape), params, counter.get_total_flops() // 2


def engine_answer(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> Any:
    try:
        layer = convcalc.layer(type_name, **kwargs)
        out = layer.output_shape(shape)
        params, macs = layer.num_params, layer.macs(shape)
    except (ShapeError, SpecError) as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(type_name), f"message not one line: {message!r}"
        return exc
    layer.window(shape)
    layer.describe()
    layer.warnings(shape)
    layer.explain(shape)
    return out, params, macs, layer


def agree(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...], call: Any, params: int = 0) -> str:
    where = f"{type_name}(**{kwargs!r}) on input {shape}"
    mine = engine_answer(type_name, kwargs, shape)
    theirs = torch_answer(call, shape, params)
    if isinstance(theirs, Exception):
        assert isinstance(mine, Exception), f"torch raises but convcalc answers {mine[:3]}: {where}\n  torch: {theirs}"
        return "error"
    assert not isinstance(mine, Exception), f"convcalc raises but torch gives {theirs[0]}: {where}\n  convcalc: {mine}"
    assert mine[:3] == theirs, f"convcalc {mine[:3]} ≠ torch {theirs}: {where}"
    module = verify_module(type_name, mine[3])
    for p in module.parameters():
        torch.nn.init.uniform_(p, 0.5, 1.5)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rebuilt = module(x)
    assert tuple(rebuilt.shape) == theirs[0] and sum(p.numel() for p in module.parameters()) == theirs[1], where
    return "ok"


def suggested(message: str, key: str) -> Any:
    """The value a refusal suggests (``…; use shape: [3, 1, 1]`` / ``e.g. dims: [0, 2, 1, 3]``)."""
    found = re.search(rf"{key}: (\[[-0-9, ]*\])", message)
    assert found, f"no {key} suggested in {message!r}"
    return [int(v) for v in found.group(1).strip("[]").split(",")]


# -- Permute ---------------------------------------------------------------------------------------


@st.composite
def permute_cases(draw):
    shape = draw(shapes(1, 5))
    rank = len(shape)
    if draw(st.booleans()):  # a permutation of the rank, some indices negative
        order = draw(st.permutations(list(range(rank))))
        dims = [d - rank if draw(st.booleans()) else d for d in order]
    else:  # anything: another length, out of range, repeated
        dims = draw(st.lists(st.integers(-rank - 2, rank + 1), min_size=1, max_size=rank + 2))
    return shape, dims


@SOME
@given(permute_cases())
def test_permute_matches_torch(case):
    shape, dims = case
    verdict = agree("Permute", {"dims": dims}, shape, lambda x: x.permute(dims))
    if verdict == "error":
        message = str(engine_answer("Permute", {"dims": dims}, shape))
        fix = suggested(message, "dims")
        assert sorted(fix) == list(range(len(shape))), message  # the value it names works
    else:
        assert agree("Permute", {"dims": dims}, shape, lambda x: torch.permute(x, dims)) == "ok"


@SOME
@given(shape=shapes(1, 5), data=st.data())
def test_permute_moves_each_size_where_torch_moves_it(shape, data):
    """Distinct sizes, so that a dims list read the other way round (the inverse permutation) is caught."""
    sizes = tuple(range(2, 2 + len(shape)))
    dims = data.draw(st.permutations(list(range(len(sizes)))))
    assert convcalc.layer("Permute", dims=dims).output_shape(sizes) == tuple(torch.zeros(sizes).permute(dims).shape)


@pytest.mark.parametrize(
    "dims, shape, words",
    [
        ([0, 2, 1], (1, 3, 8, 8), ["name 3 dimensions", "has 4", "input.dim() = 4 is not equal to len(dims) = 3", "dims: [0, 2, 1, 3]"]),
        ([0, 1, 2, 4], (1, 3, 8, 8), ["dims[3] = 4 is out of range", "[-4, 3]", "dims: [0, 1, 2, 3]"]),
        ([0, 1, 3, -1], (1, 3, 8, 8), ["dimension 3 twice", "3 and -1", "duplicate dims are not allowed", "dims: [0, 1, 3, 2]"]),
    ],
)
def test_permute_refusals_say_torch_s_rule_and_a_value_that_works(dims, shape, words):
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("Permute", dims=dims).output_shape(shape)
    assert all(w in caught.value.message for w in words), caught.value.message


@pytest.mark.parametrize("dims", [[], 3, "0,2,3,1", [0, 1.5], [True, 0]])
def test_permute_dims_must_be_a_list_of_indices(dims):
    with pytest.raises(SpecError) as caught:
        convcalc.layer("Permute", dims=dims)
    assert caught.value.message.startswith("Permute: dims")


# -- Scale -----------------------------------------------------------------------------------------


@st.composite
def scale_cases(draw):
    shape = draw(shapes(1, 5))
    if draw(st.booleans()):  # a weight that broadcasts: each of its trailing sizes equal to the input's or 1
        rank = draw(st.integers(1, len(shape) + 1))
        lead = (1,) * max(0, rank - len(shape))
        tail = shape[len(shape) - min(rank, len(shape)) :]
        weight = [*lead, *(s if draw(st.booleans()) else 1 for s in tail)]
        if lead and draw(st.booleans()):
            weight[0] = draw(st.integers(1, 3))  # a leading size beyond the input's rank widens the output
    else:
        weight = draw(shapes(0, 5))  # rank 0: a scalar parameter (``nn.Parameter(torch.tensor(0.5))``)
    return shape, list(weight)


@SOME
@given(scale_cases(), st.booleans())
def test_scale_matches_torch(case, weight_first):
    shape, weight = case
    w = torch.nn.Parameter(torch.ones(weight))
    call = (lambda x: w * x) if weight_first else (lambda x: x * w)
    verdict = agree("Scale", {"shape": weight}, shape, call, params=w.numel())
    if verdict == "error":
        message = str(engine_answer("Scale", {"shape": weight}, shape))
        fix = suggested(message, "shape")
        assert engine_answer("Scale", {"shape": fix}, shape)[0] == tuple(torch.broadcast_shapes(tuple(fix), shape)), message


def test_scale_computes_x_times_its_weight():
    layer = convcalc.layer("Scale", shape=[3, 1, 1])
    module = verify_module("Scale", layer)
    weight = torch.tensor([2.0, -1.0, 0.5]).reshape(3, 1, 1)
    module.load_state_dict({"weight": weight})
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(module(x), x * weight)
    assert layer.num_params == 3 and layer.macs((2, 3, 4, 4)) == 0  # elementwise: no MACs, as FlopCounterMode counts


def test_scale_refusal_names_the_dimension_and_a_shape_that_works():
    with pytest.raises(ShapeError) as caught:
        convcalc.layer("Scale", shape=[96, 1, 1]).output_shape((1, 64, 8, 8))
    message = caught.value.message
    assert "dimension -3 (96 vs 64)" in message and "use shape: [64, 1, 1]" in message, message


def test_a_scalar_weight_is_a_scale_of_shape_empty(cli, tmp_path):
    # torch: nn.Parameter(torch.tensor(0.5)) * x is x scaled by one learned number; emit-spec writes it as shape: []
    layer = convcalc.layer("Scale", shape=[])
    assert layer.output_shape((2, 3, 4, 4)) == (2, 3, 4, 4) and layer.num_params == 1
    module = verify_module("Scale", layer)
    module.load_state_dict({"weight": torch.tensor(0.5)})
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(module(x), x * 0.5)
    spec = tmp_path / "scalar.yaml"
    spec.write_text("name: s\ninput: [3, 8, 8]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - Scale: {shape: []}\n")
    code, out, err = cli("verify", spec)
    assert code == 0 and "✓ all 2 layers agree" in out, out + err


@pytest.mark.parametrize("shape", ["96", [0, 1], [96, 1.0], True])
def test_scale_shape_must_be_sizes(shape):
    with pytest.raises(SpecError) as caught:
        convcalc.layer("Scale", shape=shape)
    assert caught.value.message.startswith("Scale: shape")


# -- LayerNorm over the channels of N×H×W×C ---------------------------------------------------------


@SOME
@given(shape=shapes(4, 4, 5), wrong=st.integers(1, 6), right=st.booleans())
def test_layernorm_over_the_channels_last_axis_matches_torch(torch_agrees, shape, wrong, right):
    """ConvNeXt: permute to N×H×W×C, LayerNorm(C) over the last axis, permute back."""
    channels = shape[-1] if right else wrong
    torch_agrees("LayerNorm", {"normalized_shape": channels, "eps": 1e-6}, shape, bound=True, empty_is_error=True)


def test_a_channels_last_block_as_a_spec_verifies(cli, tmp_path):
    """Permute, LayerNorm over C, Linear, Permute back and a Scale: every row confirmed by torch."""
    spec = tmp_path / "cn.yaml"
    spec.write_text(
        "name: cnblock\ninput: [8, 6, 5]\nlayers:\n"
        "  - {Conv2d: {out: 8, k: 7, p: 3, groups: 8}, name: dw}\n"
        "  - Permute: {dims: [0, 2, 3, 1]}\n"
        "  - LayerNorm: {normalized_shape: 8, eps: 1.0e-6}\n"
        "  - Linear: {out: 32}\n  - GELU\n  - Linear: {out: 8}\n"
        "  - Permute: {dims: [0, 3, 1, 2]}\n"
        "  - {Scale: {shape: [8, 1, 1]}, name: ls}\n"
        "  - {Add: [ls, input]}\n"
    )
    code, out, err = cli("verify", spec, "--json")
    assert code == 0, err
    import json

    report = json.loads(out)
    rows = report["layers"]
    assert [r["type"] for r in rows] == ["Conv2d", "Permute", "LayerNorm", "Linear", "GELU", "Linear", "Permute", "Scale", "Add"]
    assert rows[1]["output_shape"] == [1, 6, 5, 8] and rows[6]["output_shape"] == [1, 8, 6, 5]
    assert rows[7]["params"] == 8 and rows[7]["macs"] == 0
    assert all(r["confirmed"] for r in rows) and report["ok"]
    code, _, err = cli("model", spec)
    assert code == 0, err


def test_a_channels_last_block_from_the_python_builder():
    b = convcalc.SpecBuilder("cn", (8, 6, 5))
    b.add("Conv2d", out_channels=8, kernel_size=3, padding=1, groups=8)
    b.add("Permute", dims=[0, 2, 3, 1])
    b.add("LayerNorm", normalized_shape=8)
    b.add("Permute", dims=[0, 3, 1, 2])
    b.add("Scale", shape=[8, 1, 1])
    summary = b.model().summary()
    assert [tuple(r.output_shape) for r in summary.rows][1:] == [(1, 6, 5, 8), (1, 6, 5, 8), (1, 8, 6, 5), (1, 8, 6, 5)]
    assert summary.totals.params == 8 * 9 + 8 + 16 + 8


@pytest.mark.parametrize(("step", "moved"), [
    ("Permute((1, 0, 2, 3))", True),  # torch: 1×3×8×8 → 3×1×8×8, three samples of 1×8×8
    ("Scale((5, 3, 1, 1))", True),  # broadcast to a batch of 5
    ("Scale((2, 1, 3, 1, 1))", True),  # a new leading dimension of 2
    ("Permute((0, 2, 3, 1))", False),
    ("Scale((3, 1, 1))", False),
    ("Narrow(0, 0, 1)", False),
    ("Flatten(0)", True),  # torch: 192, no batch left (the chain raised IndexError)
    ("Flatten(0, 1)", True),  # torch: 3×8×8, the batch joined to the channels (the chain said 8x8)
    ("Unflatten(1, (3, 1))", False),
])
def test_a_chain_refuses_a_step_that_changes_the_one_sample_it_follows(cli, step: str, moved: bool) -> None:
    from convcalc.torchcall import parse_call

    type_name, kwargs = parse_call(step)
    x = torch.zeros(1, 3, 8, 8)
    if type_name == "Permute":
        out = x.permute(kwargs["dims"])
    elif type_name == "Scale":
        out = x * torch.ones(kwargs["shape"])
    elif type_name == "Narrow":
        out = torch.narrow(x, kwargs["dim"], kwargs["start"], kwargs["length"])
    else:
        out = getattr(torch.nn, type_name)(**kwargs)(x)
    assert (out.dim() < 2 or out.shape[0] != 1) == moved
    code, stdout, err = cli("chain", "3x8x8", "--dims", "2", step, "Flatten")
    if moved:
        assert code == 1 and err.count("\n") == 1 and "one sample" in err and "convcalc model" in err, err
    else:
        assert code == 0, err
        assert stdout.splitlines()[0] == f"3x8x8 → {'x'.join(map(str, out.shape[1:]))} → {out[0].numel()}"
