"""The receptive field through permutes: a channels-last stretch (ConvNeXt's Permute, LayerNorm, Linear,
GELU, Linear, Permute back) keeps the field of each spatial axis, which the Permutes carry along with
the axis; a layer that mixes a spatial axis (a Linear over W) leaves it undefined, as before.

The oracle is torch's autograd: the input positions an output position reads are those where the
gradient of that output is nonzero; the field is the span from the first to the last (a stride
before a larger kernel leaves gaps inside it) (float64, random weights, GELU rather than ReLU so no gradient dies).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.graph import load_model, model_from_text


def spec(*layers: str, input: str = "[3, 32, 32]") -> str:
    return "\n".join([f"input: {input}", "layers:", *(f"  - {layer}" for layer in layers)]) + "\n"


def fields(text: str) -> list[object]:
    return [None if row.receptive_field is None else [a.as_dict() for a in row.receptive_field] for row in model_from_text(text).summary().rows]


STEM = ("Conv2d: {out: 8, k: 4, s: 4}", "Conv2d: {out: 8, k: 7, p: 3, groups: 8}")
CHANNELS_LAST = (
    "Permute: {dims: [0, 2, 3, 1]}",
    "LayerNorm: {normalized_shape: [8]}",
    "Linear: {out: 32}",
    "GELU",
    "Linear: {out: 8}",
    "Permute: {dims: [0, 3, 1, 2]}",
)
#: The same block written channels first: 1×1 convolutions for the Linears (GroupNorm(1) stands in for
#: LayerNorm over the channels; it keeps the field as the LayerNorm does).
CHANNELS_FIRST = (
    "Identity",
    "GroupNorm: {num_groups: 1, num_channels: 8}",
    "Conv2d: {out: 32, k: 1}",
    "GELU",
    "Conv2d: {out: 8, k: 1}",
    "Identity",
)
TAIL = ("Conv2d: {out: 8, k: 2, s: 2}", "Conv2d: {out: 8, k: 3, p: 1}")


def test_channels_last_block_has_the_field_of_its_channels_first_twin() -> None:
    last = fields(spec(*STEM, *CHANNELS_LAST, *TAIL, *CHANNELS_LAST))
    first = fields(spec(*STEM, *CHANNELS_FIRST, *TAIL, *CHANNELS_FIRST))
    assert last == first
    assert last[-1] == [{"size": 48, "jump": 8, "start": 4.0}] * 2


def test_the_cli_shows_the_same_columns(cli, tmp_path: Path) -> None:
    def columns(layers: tuple[str, ...]) -> list[list[str]]:
        path = tmp_path / "m.yaml"
        path.write_text(spec(*STEM, *layers, *TAIL))
        code, out, err = cli("model", str(path))
        assert (code, err) == (0, ""), err
        rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
        return [row[-5:-2] for row in rows]  # RF, jump, start (memory is two words)

    assert columns(CHANNELS_LAST) == columns(CHANNELS_FIRST)
    assert columns(CHANNELS_LAST)[-1] == ["48", "8", "4"]


@pytest.mark.parametrize(
    "layers",
    [
        ("Linear: {out: 8}",),  # over W, in N, C, H, W
        ("Permute: {dims: [0, 1, 3, 2]}", "Linear: {out: 8}"),  # over H
        ("Permute: {dims: [0, 2, 1, 3]}", "Linear: {out: 8}", "Permute: {dims: [0, 2, 1, 3]}"),  # over W, C in the middle
        ("Permute: {dims: [0, 2, 3, 1]}", "LayerNorm: {normalized_shape: [8, 8]}", "Permute: {dims: [0, 3, 1, 2]}"),  # W and C
        ("Permute: {dims: [0, 2, 3, 1]}", "Softmax: {dim: 2}", "Permute: {dims: [0, 3, 1, 2]}"),  # softmax over W
        ("Permute: {dims: [0, 2, 3, 1]}", "Conv2d: {out: 8, k: 1}", "Permute: {dims: [0, 3, 1, 2]}"),  # a conv reading H as channels
        ("Permute: {dims: [0, 2, 3, 1]}", "BatchNorm2d", "Permute: {dims: [0, 3, 1, 2]}"),  # a family that does not say
        ("Permute: {dims: [0, 2, 3, 1]}", "Flatten: {start_dim: 1, end_dim: 2}", "Unflatten: {dim: 1, unflattened_size: [8, 8]}"),
    ],
)
def test_a_layer_that_mixes_a_spatial_axis_leaves_the_field_undefined(layers: tuple[str, ...]) -> None:
    got = fields(spec(*STEM, *layers, *TAIL))
    assert got[len(STEM) - 1] is not None
    assert got[len(STEM) + len(layers) - 1] is None
    assert got[-1] is None


def test_softmax_over_the_channels_last_keeps_the_field() -> None:
    got = fields(spec(*STEM, "Permute: {dims: [0, 2, 3, 1]}", "Softmax: {dim: -1}", "Dropout", "Permute: {dims: [0, 3, 1, 2]}"))
    assert got[-1] == got[len(STEM) - 1]


def test_a_permute_carries_each_axis_its_own_field() -> None:
    """A 3×1 kernel, then H and W swapped: the columns show W's field first."""
    got = fields(spec("Conv2d: {out: 4, k: [3, 1]}", "Permute: {dims: [0, 1, 3, 2]}"))
    assert got[0] == [{"size": 3, "jump": 1, "start": 1.5}, {"size": 1, "jump": 1, "start": 0.5}]
    assert got[1] == [got[0][1], got[0][0]]


def test_branches_join_only_where_the_spatial_axes_agree() -> None:
    text = spec(
        *STEM,
        "name: last\n    Permute: {dims: [0, 2, 3, 1]}",
        "name: mlp\n    Linear: {out: 8}",
        "name: sum\n    Add: [last, mlp]",
        "name: back\n    Permute: {dims: [0, 3, 1, 2]}",
    )
    assert fields(text)[-1] == fields(text)[len(STEM) - 1]


# -- against torch: the positions whose gradient is nonzero --------------------------------------

CONVS = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(0, 1))  # kernel, stride, padding
SEGMENT = st.lists(st.sampled_from(["LayerNorm", "Linear", "GELU", "Softmax"]), max_size=4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(CONVS, SEGMENT), min_size=1, max_size=5), st.data())
def test_the_field_is_what_torch_reads(parts: list[object], data: st.DataObject) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    size, channels = 20, 4
    layers: list[str] = []
    modules: list[object] = []
    for part in parts:
        if isinstance(part, tuple):
            k, s, p = part
            layers.append(f"Conv2d: {{out: {channels}, k: {k}, s: {s}, p: {p}}}")
            modules.append(nn.Conv2d(channels, channels, k, s, p))
            continue
        layers.append("Permute: {dims: [0, 2, 3, 1]}")
        modules.append(_permute((0, 2, 3, 1)))
        for kind in part:  # type: ignore[attr-defined]
            if kind == "LayerNorm":
                layers.append(f"LayerNorm: {{normalized_shape: [{channels}]}}")
                modules.append(nn.LayerNorm(channels))
            elif kind == "Linear":
                layers.append(f"Linear: {{out: {channels}}}")
                modules.append(nn.Linear(channels, channels))
            elif kind == "Softmax":
                layers.append("Softmax: {dim: -1}")
                modules.append(nn.Softmax(dim=-1))
            else:
                layers.append("GELU")
                modules.append(nn.GELU())
        layers.append("Permute: {dims: [0, 3, 1, 2]}")
        modules.append(_permute((0, 3, 1, 2)))
    rows = model_from_text(spec("Conv2d: {out: 4, k: 1}", *layers, input=f"[{channels}, {size}, {size}]")).summary().rows
    modules.insert(0, nn.Conv2d(channels, channels, 1))
    field = rows[-1].receptive_field
    assert field is not None  # every stretch is channels last with the spatial axes untouched
    out_h, out_w = rows[-1].output_shape[2:]
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    model = nn.Sequential(*modules).double()
    for parameter in model.parameters():
        nn.init.uniform_(parameter, 0.2, 1.0)  # no weight near 0: every path counts
        if parameter.dim() > 1:
            parameter.data /= parameter[0].numel()  # by the fan-in: values stay near 1, so a Softmax does not saturate to 0 gradients
    x = torch.randn(1, channels, size, size, dtype=torch.float64, requires_grad=True)
    y = model(x)
    assert tuple(y.shape[2:]) == (out_h, out_w)
    at = []
    for rf, count in zip(field, (out_h, out_w)):
        inside = [i for i in range(count) if rf.start + i * rf.jump - rf.size / 2 >= 0 and rf.start + i * rf.jump + rf.size / 2 <= size]
        assume(inside)  # else the field reaches into the padding at every output position: no whole span to compare
        at.append(data.draw(st.sampled_from(inside)))
    weights = torch.rand(channels, dtype=torch.float64) + 0.5  # a Softmax's outputs sum to 1: weigh them
    (grad,) = torch.autograd.grad((y[0, :, at[0], at[1]] * weights).sum(), x)
    for axis, rf in enumerate(field):
        reads = grad.abs().sum(dim=(0, 1)).sum(dim=1 - axis).nonzero().flatten().tolist()
        center = rf.start + at[axis] * rf.jump
        assert (reads[0], reads[-1] + 1) == (center - rf.size / 2, center + rf.size / 2)


def _permute(dims: tuple[int, ...]) -> object:
    """x.permute(dims) as a module, in torch alone."""
    import torch

    class Permute(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.permute(*dims)

    return Permute()


def test_branches_with_their_spatial_axes_in_different_places_give_no_field() -> None:
    """8×8×8: a map and its channels-last permute add up (the shapes agree), but no axis is spatial in both."""
    text = spec(*STEM, "name: last\n    Permute: {dims: [0, 2, 3, 1]}", f"Add: [{len(STEM) - 1}, last]")
    assert fields(text)[-1] is None


def test_an_emitted_convnext_has_its_receptive_field_to_the_pooling(cli, tmp_path: Path) -> None:
    """verify --emit-spec on test_verify_emit_channels_last's ConvNeXt-like model (torchvision's and timm's blocks,
    LayerNorm2d): every row before the global pooling has a field. By hand, channels first: stem k2 s2 (2, jump 2),
    two 7×7 blocks (+2·6·2 = 26), down k2 s2 (28, jump 4, start 2), one 7×7 block (+6·4 = 52)."""
    pytest.importorskip("torch")
    from tests.test_verify_emit_channels_last import MODELS

    models = tmp_path / "channels_last_models.py"
    models.write_text(MODELS)
    out = tmp_path / "cnx.yaml"
    code, _, err = cli("verify", f"{models}:ConvNeXtLike", "--input", "3x16x16", "--emit-spec", str(out))
    assert code == 0, err
    rows = load_model(str(out)).summary().rows
    pool = next(i for i, row in enumerate(rows) if row.type == "AdaptiveAvgPool2d")
    assert sum(row.type == "Permute" for row in rows[:pool]) == 10
    assert all(row.receptive_field is not None for row in rows[:pool]), [row.name for row in rows[:pool] if row.receptive_field is None]
    assert [a.as_dict() for a in rows[pool - 1].receptive_field] == [{"size": 52, "jump": 4, "start": 2.0}] * 2  # type: ignore[union-attr]
