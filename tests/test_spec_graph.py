"""Graph specs: names, from:, merges, blocks with params, repeat — their errors (one line, with
file:line, in bounded time), the diagnosis at a merge that does not line up, and --find-sizes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from convcalc.errors import ConvcalcError, SpecError
from convcalc.graph import Model, load_model, model_from_text
from convcalc.spec import MAX_NODES

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"
UNET = str(MODELS / "unet.yaml")


def line_of(text: str, marker: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line containing ``marker``."""
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if marker in line]
    return hits[nth - 1]


def spec_error(text: str, path: str = "spec.yaml") -> SpecError:
    with pytest.raises(SpecError) as caught:
        model_from_text(text, path).summary()
    error = caught.value
    assert "\n" not in error.message and "Traceback" not in error.message
    assert error.message.startswith(f"{path}:{error.line}: "), error.message
    return error


# -- wiring errors ---------------------------------------------------------------------------

WIRING = """\
input: [3, 32, 32]
layers:
  - {Conv2d: {out: 8, k: 3, p: 1}, name: stem}
  - {ReLU: {}, name: act}
  - {Add: [stem, akt], name: join}
"""


def test_unknown_name_suggests_the_closest() -> None:
    error = spec_error(WIRING)
    assert error.line == 5
    assert error.message == "spec.yaml:5: from: 'akt' names no entry above it; did you mean act?"


def test_from_pointing_forward() -> None:
    text = "input: [3, 32, 32]\nlayers:\n  - {Conv2d: {out: 8, k: 3}, name: a, from: later}\n  - {ReLU: {}, name: later}\n"
    error = spec_error(text)
    assert error.line == 3
    assert "from: 'later' points forward to line 4; from: may only name entries above it" in error.message


def test_self_reference() -> None:
    text = "input: [3, 32, 32]\nlayers:\n  - {Conv2d: {out: 8, k: 3}, name: a}\n  - {Add: [a, loop], name: loop}\n"
    error = spec_error(text)
    assert error.line == 4
    assert "Add 'loop' takes its input from itself" in error.message


def test_merges_need_two_named_inputs() -> None:
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - Add\n")
    assert error.line == 4 and "Add joins two or more branches: name them, like Add: [a, b]" in error.message
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - Concat: [a]\n")
    assert error.line == 4 and "Concat joins two or more branches, but names only 'a'" in error.message
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - {Add: [a, input], repeat: 3}\n")
    assert "Add cannot repeat" in error.message


def test_a_layer_takes_one_input() -> None:
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - {Conv2d: {out: 3, k: 1}, from: [a, input]}\n")
    assert error.line == 4 and "Conv2d takes one input; from: names 2. Join branches with Add or Concat first" in error.message


def test_a_block_sees_only_its_own_names() -> None:
    text = """\
input: [3, 8, 8]
blocks:
  blk:
    layers:
      - {Add: [input, stem]}
layers:
  - {Conv2d: {out: 3, k: 1}, name: stem}
  - blk: {}
"""
    error = spec_error(text)
    assert error.line == 5
    assert "from: 'stem' names no entry above it in block 'blk'" in error.message
    assert "only the block's own entries and 'input'" in error.message


def test_names_are_unique_words() -> None:
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - {ReLU: {}, name: a}\n")
    assert error.line == 4 and "the name 'a' is used twice" in error.message
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a.b}\n")
    assert "name 'a.b' must be a word" in error.message


# -- block errors ----------------------------------------------------------------------------

BLOCK = """\
input: [3, 32, 32]
blocks:
  conv_bn:
    params: [planes, stride]
    layers:
      - Conv2d: {out: $planes, k: 3, s: $stride, p: 1}
      - BatchNorm2d
layers:
  - conv_bn: {planes: 8, stride: 1}
"""


def test_cycle_through_blocks() -> None:
    text = """\
input: [3, 8, 8]
blocks:
  a:
    layers:
      - ReLU
      - b: {}
  b:
    layers:
      - a: {}
layers:
  - a: {}
"""
    error = spec_error(text)
    assert error.line == 9
    assert "block 'a' uses itself (a → b → a); blocks cannot be recursive" in error.message


def test_block_that_uses_itself_directly() -> None:
    error = spec_error("input: [3, 8, 8]\nblocks:\n  a:\n    layers:\n      - ReLU\n      - a\nlayers:\n  - a\n")
    assert error.line == 6 and "block 'a' uses itself (a → a)" in error.message


def test_unused_param_points_at_params() -> None:
    text = BLOCK.replace("s: $stride, ", "")
    error = spec_error(text)
    assert error.line == line_of(text, "params:")
    assert "block 'conv_bn' declares params it never uses: stride (write $stride where it belongs" in error.message


def test_missing_and_unknown_params_at_the_use() -> None:
    text = BLOCK.replace("{planes: 8, stride: 1}", "{planes: 8}")
    error = spec_error(text)
    assert error.line == 9 and error.message.endswith("block 'conv_bn' needs stride")
    text = BLOCK.replace("{planes: 8, stride: 1}", "{planes: 8, strides: 1, stride: 1}")
    error = spec_error(text)
    assert error.line == 9
    assert "block 'conv_bn' has no param 'strides'; did you mean stride? (its params: planes, stride)" in error.message


def test_unknown_dollar_param_in_a_block_even_unused() -> None:
    text = BLOCK.replace("p: 1}", "p: $pad}").replace("  - conv_bn: {planes: 8, stride: 1}", "  - ReLU")
    error = spec_error(text)
    assert error.line == 6
    assert "$pad is not a param of block 'conv_bn' (its params: planes, stride; add pad to params: to pass it in)" in error.message


def test_dollar_param_outside_a_block() -> None:
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - Conv2d: {out: $planes, k: 1}\n")
    assert error.line == 3 and "$planes is not a param here (only block params can be substituted)" in error.message


def test_blocks_nested_a_thousand_deep_fail_fast() -> None:
    lines = ["input: [3, 8, 8]", "blocks:"]
    for level in range(1000):
        lines += [f"  b{level}:", "    layers:", f"      - b{level + 1}"]
    lines += ["  b1000:", "    layers: [ReLU]", "layers:", "  - b0"]
    text = "\n".join(lines) + "\n"
    error = spec_error(text)
    assert "blocks are nested more than 32 deep (b0 → b1 → b2 → … → b30 → b31 → b32)" in error.message
    assert error.line == line_of(text, "- b32")


def test_repeat_a_million_is_refused() -> None:
    text = "input: [3, 8, 8]\nlayers:\n  - ReLU: {}\n    repeat: 1000000\n"
    error = spec_error(text)
    assert error.line == 4 and "repeat: must be a whole number from 1 to 10,000, got 1000000" in error.message
    text = BLOCK.replace("  - conv_bn: {planes: 8, stride: 1}", "  - conv_bn: {planes: 8, stride: 1}\n    repeat: $n")
    assert "$n is not a param here" in spec_error(text).message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (  # 10,000 × 10,000 layers
            "input: [3, 8, 8]\nblocks:\n  r:\n    layers:\n      - ReLU: {}\n        repeat: 10000\n"
            "layers:\n  - r: {}\n    repeat: 10000\n",
            "the model is too large: 10,000 × block 'r' (10,000 layers each) = 100,000,000 layers",
        ),
        (  # each block uses the next twice: 2**30 layers
            "input: [3, 8, 8]\nblocks:\n"
            + "".join(f"  b{i}:\n    layers: [b{i + 1}, b{i + 1}]\n" for i in range(30))
            + "  b30:\n    layers: [ReLU]\nlayers:\n  - b0\n",
            f"block 'b0' alone expands to more than {MAX_NODES:,} layers",
        ),
    ],
)
def test_exploding_expansions_fail_before_building(text: str, needle: str) -> None:
    error = spec_error(text)
    assert needle in error.message and f"convcalc handles at most {MAX_NODES:,} layers" in error.message


def test_repeat_from_a_param_is_checked_after_the_first_copy() -> None:
    text = """\
input: [3, 8, 8]
blocks:
  many:
    params: [n]
    layers:
      - ReLU: {}
        repeat: $n
layers:
  - many: {n: 10000}
    repeat: 10000
"""
    error = spec_error(text)
    assert error.line == 9 and "10,000 × block 'many'" in error.message


def test_spec_errors_on_the_command_line_are_one_line(cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(WIRING)
    code, out, err = cli("model", spec)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "spec.yaml:5: from: 'akt'" in err
    code, out, _ = cli("model", spec, "--json")
    assert code == 1 and json.loads(out)["error"]["line"] == 5


# -- names, order, totals --------------------------------------------------------------------

NAMING = """\
input: [3, 16, 16]
blocks:
  unit:
    params: [c]
    layers:
      - {Conv2d: {out: $c, k: 3, p: 1}, name: conv}
      - {ReLU: {}, name: relu}
  body:
    layers:
      - unit: {c: 4}
      - unit: {c: 4}
        repeat: 2
      - ReLU
layers:
  - {body: {}, name: features}
  - {unit: {c: 4}, name: stage, repeat: 2}
  - {unit: {c: 4}, name: head, trainable: false}
  - Flatten
"""


def test_names_follow_block_paths_and_sequential_numbering() -> None:
    names = [node.name for node in model_from_text(NAMING).nodes]
    assert names == [
        "features.0.conv", "features.0.relu",
        "features.1.conv", "features.1.relu",  # an unnamed repeat continues the numbering
        "features.2.conv", "features.2.relu",
        "features.3",
        "stage.0.conv", "stage.0.relu", "stage.1.conv", "stage.1.relu",  # a named one is indexed
        "head.conv", "head.relu",
        "4",  # positions count copies: features 0, stage 1–2, head 3
    ]  # fmt: skip
    depths = {node.name: node.depth for node in model_from_text(NAMING).nodes}
    assert depths["features.0.conv"] == 2 and depths["stage.0.conv"] == 1 and depths["4"] == 0


def test_frozen_block_and_parameters_counted_once() -> None:
    summary = model_from_text(NAMING).summary()
    conv = 4 * 3 * 9 + 4  # the first conv sees 3 channels
    later = 4 * 4 * 9 + 4
    assert summary.totals.params == conv + 5 * later
    assert summary.totals.non_trainable_params == later  # head
    assert sum(row.params for row in summary.rows) == summary.totals.params


def test_identical_layers_are_built_once_and_shared() -> None:
    nodes = model_from_text(NAMING).nodes
    assert nodes[2].layer is nodes[4].layer  # frozen and equal: one object


# -- merge diagnosis -------------------------------------------------------------------------


def test_broken_unet_names_branches_difference_and_fixes(cli) -> None:
    code, out, err = cli("model", UNET, "--input", "1x250x250")
    text = Path(UNET).read_text()
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    cat4, enc4, up4 = line_of(text, "name: cat4"), line_of(text, "name: enc4"), line_of(text, "name: up4")
    pool4 = line_of(text, "name: pool4")
    assert err == (
        f"error: Concat 'cat4' at {UNET}:{cat4}: 'enc4' (block double_conv, line {enc4}) gives 1×512×31×31"
        f" but 'up4' (ConvTranspose2d, line {up4}) gives 1×512×30×30: H and W differ by 1 (31 vs 30),"
        " and Concat (on dimension 1, channels) needs every other dimension equal."
        f" Cause: 'pool4' (MaxPool2d, line {pool4}) rounds 31×31 down to 15×15."
        f" Fix: output_padding: 1 on 'up4' (line {up4}) makes it 31×31;"
        " or input size 240 or 256 (the nearest that fit the whole model; --find-sizes LOW..HIGH lists them all)\n"
    )
    assert "bottleneck.relu2" in out and "up4" in out and "cat4" not in out  # rows up to the failure
    code, out, _ = cli("model", UNET, "--input", "1x250x250", "--json")
    data = json.loads(out)
    assert code == 1 and data["error"]["line"] == cat4 and data["error"]["layer"] == "cat4"
    assert data["layers"][-1]["name"] == "up4"


def test_the_suggested_output_padding_and_sizes_do_fix_it() -> None:
    fixed = Path(UNET).read_text().replace("{out: 512, k: 2, s: 2}", "{out: 512, k: 2, s: 2, output_padding: 1}")
    with pytest.raises(ConvcalcError) as caught:  # cat4 lines up now; 250 still fails two levels up
        model_from_text(fixed).summary(input_shape=(1, 250, 250))
    assert caught.value.layer == "cat2"
    for size in (240, 256):
        load_model(UNET).summary(input_shape=(1, size, size))


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (  # a 3×3 stride-2 transposed conv overshoots by one
            "input: [3, 32, 32]\nlayers:\n  - {Conv2d: {out: 8, k: 3, p: 1}, name: skip}\n  - {MaxPool2d: {k: 2}, name: pool}\n"
            "  - {ConvTranspose2d: {out: 8, k: 3, s: 2}, name: up}\n  - {Concat: [skip, up], name: cat}\n",
            ["'skip' (Conv2d, line 3) gives 1×8×32×32 but 'up' (ConvTranspose2d, line 5) gives 1×8×33×33",
             "H and W differ by 1 (32 vs 33)", "padding: 1, output_padding: 1 on 'up' (line 5) makes it 32×32"],
        ),
        (  # a residual whose branch forgot its padding
            "input: [3, 32, 48]\nlayers:\n  - {Conv2d: {out: 3, k: 3}, name: branch}\n  - {Add: [input, branch], name: sum}\n",
            ["'input' (the model input) gives 1×3×32×48 but 'branch' (Conv2d, line 3) gives 1×3×30×46",
             "H differs by 2 (32 vs 30); W differs by 2 (48 vs 46)",
             "Add needs equal sizes (or 1, which broadcasts)", "padding: 1 on 'branch' (line 3) makes it 32×48"],
        ),
        (  # a ResNet block without its downsample
            "input: [64, 56, 56]\nblocks:\n  basic:\n    params: [planes]\n    layers:\n"
            "      - {Conv2d: {out: $planes, k: 3, s: 2, p: 1}, name: conv1}\n      - {Add: [conv1, input], name: add}\n"
            "layers:\n  - {basic: {planes: 128}, name: layer2}\n",
            ["Add 'layer2.add'", "'input' (the input of block basic 'layer2', line 9) gives 1×64×56×56",
             "channels differ by 64 (128 vs 64); H and W differ by 28 (28 vs 56)",
             "project 'input' with Conv2d: {out: 128, k: 1, s: 2}"],
        ),
        (
            "input: [3, 8, 8]\nlayers:\n  - {Flatten: {}, name: flat}\n  - {Concat: [flat, input]}\n",
            ["'flat' (Flatten, line 3) gives 1×192 but 'input' (the model input) gives 1×3×8×8",
             "they differ in rank (2-D vs 4-D)"],
        ),
    ],
)
def test_merge_diagnosis(text: str, needles: list[str]) -> None:
    with pytest.raises(ConvcalcError) as caught:
        model_from_text(text).summary()
    for needle in needles:
        assert needle in caught.value.message, caught.value.message



@pytest.mark.parametrize(
    ("text", "needles", "wrong"),
    [
        (  # torch broadcasts inputs of different ranks: the rule that fails is the last dimension's
            "input: [2, 4]\nlayers:\n  - {Identity: {}, name: a}\n  - {Flatten: {}, name: b, from: input}\n  - Add: [a, b]\n",
            ["'a' (Identity, line 3) gives 1×2×4 but 'b' (Flatten, line 4) gives 1×8", "differ in dimension -1 (4 vs 8)"],
            "needs inputs of the same rank",
        ),
        (  # a matrix times a vector of another length: matmul's rule, not equal ranks
            "input: [2, 4]\nlayers:\n  - {Identity: {}, name: a}\n  - {Flatten: {start_dim: 0}, name: b, from: input}\n"
            "  - MatMul: [a, b]\n",
            ["the last dimension of a (4) must equal its only dimension of b (8)"],
            "same rank",
        ),
        (  # attention's query and key differ in features: not "equal sizes in every dimension"
            "input: [2, 4, 8]\nlayers:\n  - {Identity: {}, name: q}\n  - {Linear: {out_features: 6}, name: k, from: input}\n"
            "  - ScaledDotProductAttention: [q, k, q]\n",
            ["must have the same features (last dimension): 8 vs 6"],
            "in every dimension",
        ),
        (  # grouped-query attention with heads that do not divide: no convolution to project with
            "input: [4, 3, 8]\nlayers:\n  - {Identity: {}, name: q}\n  - {Narrow: {dim: 1, start: 0, length: 3}, name: k, from: input}\n"
            "  - ScaledDotProductAttention: {from: [q, k, k], enable_gqa: true}\n",
            ["the query's 4 heads (dimension -3) must be a multiple of the key's 3"],
            "Conv2d",
        ),
    ],
)
def test_merge_diagnosis_states_only_the_rule_of_the_merge(text: str, needles: list[str], wrong: str) -> None:
    """The branch-by-branch diagnosis (equal sizes or 1 in every dimension, equal ranks, a 1×1 conv to project
    with) is Add's and Concat's: MatMul's and attention's refusals, and a broadcast of different ranks, were
    given those rules, which torch does not have."""
    with pytest.raises(ConvcalcError) as caught:
        model_from_text(text).summary()
    message = caught.value.message
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert wrong not in message, message


@pytest.mark.parametrize("layer", [
    "MultiheadAttention: {num_heads: 3}",
    "MultiheadAttention: {num_heads: 2, kdim: 4}",
    "RelativePositionalMultiHeadAttention: {head_dim: 3, max_seq_len: 4}",
    "ShiftedWindowAttention: {window_size: 2, num_heads: 3}",
])  # fmt: skip
def test_an_input_rule_reads_as_a_sentence_after_its_place(layer: str) -> None:
    """An error of the kinds that say what the layer expects is written 'Layer at file:line expects …'; these
    rules did not start so, and read 'MultiheadAttention at spec.yaml:3 embed_dim 8 is not divisible …'."""
    text = f"input: [2, 4, 8]\nlayers:\n  - {{Flatten: {{start_dim: 1, end_dim: 1}}}}\n  - {layer}\n"
    if "Window" in layer:
        text = text.replace("[2, 4, 8]", "[4, 4, 8]")
    with pytest.raises(ConvcalcError) as caught:
        model_from_text(text).summary()
    assert re.search(r" at <spec>:4 expects ", caught.value.message), caught.value.message

# -- find-sizes ------------------------------------------------------------------------------


def test_find_sizes_piped_lists_multiples_of_16(cli) -> None:
    code, out, err = cli("model", UNET, "--find-sizes", "64..1024")
    assert code == 0 and err == ""
    assert out.splitlines() == [str(n) for n in range(64, 1025, 16)]


def test_find_sizes_json_and_nothing_found(cli) -> None:
    code, out, _ = cli("model", UNET, "--find-sizes", "100..140", "--json")
    assert code == 0 and json.loads(out) == {"sizes": [112, 128]}
    code, out, err = cli("model", UNET, "--find-sizes", "65..79")
    assert code == 1 and out == "" and "no size in 65..79 fits" in err


def test_find_sizes_in_process() -> None:  # its time: benchmarks/limits.py
    model = load_model(UNET)
    assert model.find_sizes(64, 1024) == list(range(64, 1025, 16))


@pytest.mark.parametrize("spec", ["unet", "resnet18", "mobilenet_v2"])
def test_find_sizes_agrees_with_full_summaries(spec: str) -> None:
    """The shape-only walk (bound layers, remembered answers) says yes exactly where summary() works."""
    model = load_model(str(MODELS / f"{spec}.yaml"))
    channels = model.input_shape[0]
    expected = []
    fresh = Model(model.spec)
    for n in range(1, 70):
        try:
            fresh.summary(input_shape=(channels, n, n))
        except ConvcalcError:
            continue
        expected.append(n)
    assert model.find_sizes(1, 69) == expected
    assert model.find_sizes(1, 69) == expected  # again, from the walker's memory
