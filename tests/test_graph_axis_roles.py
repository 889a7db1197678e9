"""What the model walk knows of each axis (``Layer.axis_roles``), and the Linear warning it decides.

"Linear: the input … is 4-D … add a Flatten first" is written for one mistake: a Linear straight
on feature maps, acting on W (or L) instead of the features. A Linear on the last axis of a tensor
whose channels a Permute put last (ConvNeXt's block, a Mixer's or ViT's N×L×C tokens) acts on the
features on purpose: no warning there. Both sides are checked, and where the last axis ends up is
checked against torch itself (distinct sizes name the axes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.graph import model_from_text

FLATTEN = "add a Flatten first"


def linear_warnings(text: str) -> list[str]:
    rows = model_from_text(text).summary().rows
    return [w for row in rows for w in row.warnings if FLATTEN in w]


def spec(*layers: str, input: str = "[3, 16, 16]") -> str:
    return "\n".join([f"input: {input}", "layers:", *(f"  - {layer}" for layer in layers)]) + "\n"


CONVNEXT_BLOCK = (
    "Conv2d: {out: 8, k: 7, p: 3, groups: 8}",
    "Permute: {dims: [0, 2, 3, 1]}",
    "LayerNorm: {normalized_shape: [8]}",
    "Linear: {out: 32}",
    "GELU",
    "Linear: {out: 8}",
    "Permute: {dims: [0, 3, 1, 2]}",
)


# -- channels last: the Linear acts on the features on purpose -----------------------------------


def test_a_convnext_block_has_no_linear_warning() -> None:
    assert linear_warnings(spec("Conv2d: {out: 8, k: 3, p: 1}", *CONVNEXT_BLOCK)) == []


def test_tokens_n_l_c_have_no_linear_warning() -> None:
    """ViT's patch embedding: conv, flatten(2), transpose(1, 2), then Linears on N×L×C."""
    text = spec(
        "Conv2d: {out: 12, k: 4, s: 4}",
        "Flatten: {start_dim: 2}",
        "Permute: {dims: [0, 2, 1]}",
        "LayerNorm: {normalized_shape: [12]}",
        "Linear: {out: 48}",
        "GELU",
        "Linear: {out: 12}",
    )
    assert linear_warnings(text) == []


def test_tokens_given_as_the_input_read_after_attention_have_no_linear_warning() -> None:
    """A hand-written transformer block on an input of tokens, [16, 32]: the contract reads it as (N, C, L), but
    MultiheadAttention reads its last axis as the features, so the MLP's Linears after it are not warned about
    (they were: "add a Flatten first"); a Linear straight on that input, before any attention, still is."""
    block = ("LayerNorm: {normalized_shape: 32}", "MultiheadAttention: {num_heads: 4}", "Linear: {out: 64}", "GELU", "Linear: {out: 32}")
    assert linear_warnings(spec(*block, input="[16, 32]")) == []
    assert len(linear_warnings(spec("Linear: {out: 32}", *block, input="[16, 32]"))) == 1
    unbatched_order = spec("MultiheadAttention: {num_heads: 4, batch_first: false}", "Linear: {out: 8}", input="[16, 32]")
    assert linear_warnings(unbatched_order) == []


def test_branches_merged_channels_last_have_no_linear_warning() -> None:
    text = spec(
        "Conv2d: {out: 8, k: 3, p: 1}",
        "name: last\n    Permute: {dims: [0, 2, 3, 1]}",
        "name: mlp\n    Linear: {out: 8}",
        "name: sum\n    Add: [last, mlp]",
        "Linear: {out: 4}",
        "name: cat\n    Concat: {from: [sum, mlp], dim: -1}",
        "Linear: {out: 4}",
    )
    assert linear_warnings(text) == []


def test_model_and_verify_print_no_warning_for_channels_last(cli, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = tmp_path / "cl.yaml"
    path.write_text(spec("Conv2d: {out: 8, k: 3, p: 1}", *CONVNEXT_BLOCK))
    for command in ("model", "verify"):
        code, _, err = cli(command, str(path))
        assert code == 0 and err == "", (command, err)


# -- the mistake it was written for still warns ----------------------------------------------------


@pytest.mark.parametrize(
    "layers",
    [
        ("Conv2d: {out: 4, k: 3}", "Linear: {out: 10}"),
        ("MaxPool2d: {k: 2}", "Linear: {out: 10}"),
        ("Linear: {out: 10}",),  # on the input itself: (N, C, H, W) by the spec's contract
        ("Conv2d: {out: 4, k: 3}", "ReLU", "BatchNorm2d", "Dropout: {p: 0.1}", "Linear: {out: 10}"),
        ("Conv2d: {out: 4, k: 3}", "Flatten: {start_dim: 2}", "Linear: {out: 10}"),  # H·W is still space
        ("Conv2d: {out: 4, k: 3}", "Permute: {dims: [0, 1, 3, 2]}", "Linear: {out: 10}"),  # H and W swapped
        ("Conv2d: {out: 8, k: 3}", *CONVNEXT_BLOCK, "Linear: {out: 10}"),  # permuted back to N, C, H, W
        ("Permute: {dims: [0, 2, 3, 1]}", "Conv2d: {out: 4, k: 3}", "Linear: {out: 10}"),  # conv reads N, C, H, W
        ("Flatten: {start_dim: 2}", "Unflatten: {dim: 2, unflattened_size: [16, 16]}", "Linear: {out: 10}"),
        ("Narrow: {dim: 1, start: 0, length: 2}", "Scale: {shape: [2, 1, 1]}", "Linear: {out: 10}"),
    ],
    ids=["conv", "pool", "input", "conv-norm-dropout", "flatten-space", "swap-hw", "permuted-back", "conv-after-permute", "unflatten-space",
         "narrow-scale"],
)
def test_a_linear_on_feature_maps_still_warns(layers: tuple[str, ...]) -> None:
    warned = linear_warnings(spec(*layers))
    assert len(warned) == 1 and "Linear: the input [1, " in warned[0], warned


def test_a_scale_that_adds_leading_axes_keeps_the_roles_of_the_input_s() -> None:
    # torch: 1×3×16×16 * a 2×1×3×1×1 weight is 2×1×3×16×16; its last axis is still W (the walk lost the roles)
    warned = linear_warnings(spec("Scale: {shape: [2, 1, 3, 1, 1]}", "Linear: {out: 10}"))
    assert len(warned) == 1 and "the input [2, 1, 3, 16, 16]" in warned[0], warned
    assert linear_warnings(spec("Permute: {dims: [0, 2, 3, 1]}", "Scale: {shape: [2, 1, 1, 1, 3]}", "Linear: {out: 10}")) == []


def test_a_merge_of_feature_maps_still_warns() -> None:
    text = spec("name: a\n    Conv2d: {out: 4, k: 3, p: 1}", "name: b\n    from: input\n    Conv2d: {out: 4, k: 3, p: 1}", "Add: [a, b]", "Linear: {out: 10}")
    assert len(linear_warnings(text)) == 1


def test_a_spatial_row_or_unknown_layout_decides_by_what_is_known() -> None:
    """A mixed join (H with W·C) is neither features nor space: no warning (unknown is not a mistake);
    the calculator's bare shape is read as (N, C, *spatial) and warns."""
    from convcalc.layers import make_layer

    assert linear_warnings(spec("Permute: {dims: [0, 2, 3, 1]}", "Flatten: {start_dim: 1, end_dim: 2}", "Linear: {out: 5}")) == []
    assert make_layer("Linear", out=3).warnings((1, 3, 4, 4)) != []
    assert make_layer("Linear", out=3).warnings((1, 4, 4, 3), ("N", "S", "S", "C")) == []


# -- torch as the oracle of where the axes go ------------------------------------------------------

SIZES = (2, 3, 5, 7)  # N, C, H, W: distinct, so a size names its axis


@settings(max_examples=60, deadline=None)
@given(st.lists(st.permutations(range(4)), min_size=1, max_size=4))
def test_the_warning_follows_torchs_permutes(perms: list[list[int]]) -> None:
    torch = pytest.importorskip("torch")
    x = torch.empty(SIZES)
    for dims in perms:
        x = x.permute(*dims)
    spatial_last = x.shape[-1] in SIZES[2:]
    text = spec(*(f"Permute: {{dims: {list(d)}}}" for d in perms), "Linear: {out: 6}", input=str(list(SIZES[1:])))
    rows = model_from_text(text).summary(batch=SIZES[0]).rows
    assert rows[-2].output_shape == tuple(x.shape)
    assert bool([w for w in rows[-1].warnings if FLATTEN in w]) == spatial_last, (perms, tuple(x.shape))
