"""convcalc.SpecBuilder: a spec built from Python gives the rows the same spec written in YAML
gives, with the same checks (names, wiring, arguments resolved by the families' own rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import convcalc
from convcalc.errors import ErrorKind
from convcalc.graph import model_from_text

MNIST = """\
name: MNIST CNN
input: [1, 28, 28]
layers:
  - Conv2d: {out_channels: 16, kernel_size: 3}
  - ReLU
  - MaxPool2d: {k: 2, s: 2, p: 1}
  - Conv2d: {out: 32, k: 3}
  - ReLU
  - MaxPool2d: {k: 2, s: 2, p: 1}
  - Flatten
  - Linear: {out_features: 32}
  - ReLU
  - Dropout: {p: 0.3}
  - Linear: {out: 10}
"""


def mnist() -> convcalc.SpecBuilder:
    b = convcalc.SpecBuilder("MNIST CNN", (1, 28, 28))
    b.add("Conv2d", out_channels=16, kernel_size=3)
    b.add("ReLU")
    b.add("MaxPool2d", k=2, s=2, p=1)
    b.add("Conv2d", out=32, k=3)
    b.add("ReLU")
    b.add("MaxPool2d", k=2, s=2, p=1)
    b.add("Flatten")
    b.add("Linear", out_features=32)
    b.add("ReLU")
    b.add("Dropout", p=0.3)  # Dropout's own p, not the padding alias
    b.add("Linear", out=10)
    return b


def test_built_equals_written():
    built = mnist().model().summary().as_dict()
    written = model_from_text(MNIST).summary().as_dict()
    for row in (*built["layers"], *written["layers"]):
        row.pop("line")
    assert built == written
    assert built["totals"]["params"] == 55338


def test_wiring_and_branches():
    b = convcalc.SpecBuilder("res", (8, 16, 16))
    b.add("Conv2d", name="a", out=8, k=3, p=1)
    b.add("BatchNorm2d", name="bn")
    b.add("Add", name="sum", inputs=["bn", "input"])
    assert b.model().summary().rows[-1].output_shape == (1, 8, 16, 16)


@pytest.mark.parametrize(
    "calls, needle",
    [
        ([("Conv2d", {"name": "x", "out": 4, "k": 3}), ("ReLU", {"name": "x"})], "the name 'x' is used twice"),
        ([("ReLU", {"inputs": ["nowhere"]})], "'nowhere', which is not an earlier node"),
        ([("Conv2d", {"kernal_size": 3, "out": 4})], "did you mean kernel_size?"),
    ],
)
def test_refusals(calls, needle):
    b = convcalc.SpecBuilder("bad", (1, 8, 8))
    with pytest.raises(convcalc.SpecError) as caught:
        for type_name, kwargs in calls:
            b.add(type_name, **kwargs)
    assert needle in caught.value.message


def test_an_empty_builder_is_refused():
    with pytest.raises(convcalc.SpecError, match="at least one layer"):
        convcalc.SpecBuilder("empty", (1, 8, 8)).build()


def test_the_readme_example():
    b = convcalc.SpecBuilder("tiny", (1, 28, 28))
    b.add("Conv2d", out_channels=8, kernel_size=3)
    b.add("ReLU", name="act")
    b.add("Add", inputs=["act", "act"])
    assert b.model().summary().totals.params == 80 == 8 * 9 + 8


# -- blocks as Python objects -------------------------------------------------------------------


def resnet18() -> convcalc.SpecBuilder:
    """packaged resnet18.yaml, written with the Python builder (the same blocks, the same names)."""
    basic = convcalc.Block("basic", ["planes"])
    basic.add("Conv2d", name="conv1", out="$planes", k=3, p=1, bias=False)
    basic.add("BatchNorm2d", name="bn1")
    basic.add("ReLU", name="relu", inplace=True)
    basic.add("Conv2d", name="conv2", out="$planes", k=3, p=1, bias=False)
    basic.add("BatchNorm2d", name="bn2")
    basic.add("Add", name="add", inputs=["bn2", "input"])
    basic.add("ReLU", name="relu2", inplace=True)
    downsample = convcalc.Block("downsample", ["planes", "stride"])
    downsample.add("Conv2d", out="$planes", k=1, s="$stride", bias=False).add("BatchNorm2d")
    down = convcalc.Block("basic_down", ["planes", "stride"])
    down.add("Conv2d", name="conv1", out="$planes", k=3, s="$stride", p=1, bias=False)
    down.add("BatchNorm2d", name="bn1")
    down.add("ReLU", name="relu", inplace=True)
    down.add("Conv2d", name="conv2", out="$planes", k=3, p=1, bias=False)
    down.add("BatchNorm2d", name="bn2")
    down.add(downsample, name="downsample", inputs="input", planes="$planes", stride="$stride")
    down.add("Add", name="add", inputs=["bn2", "downsample"])
    down.add("ReLU", name="relu2", inplace=True)
    stage = convcalc.Block("stage", ["planes", "stride"])
    stage.add(down, planes="$planes", stride="$stride").add(basic, planes="$planes")

    b = convcalc.SpecBuilder("ResNet-18", (3, 224, 224))
    b.add("Conv2d", name="conv1", out=64, k=7, s=2, p=3, bias=False)
    b.add("BatchNorm2d", name="bn1")
    b.add("ReLU", name="relu", inplace=True)
    b.add("MaxPool2d", name="maxpool", k=3, s=2, p=1)
    b.add(basic, name="layer1", repeat=2, planes=64)
    for index, planes in enumerate((128, 256, 512), start=2):
        b.add(stage, name=f"layer{index}", planes=planes, stride=2)
    b.add("AdaptiveAvgPool2d", name="avgpool", output_size=1)
    b.add("Flatten", name="flatten", start_dim=1)
    b.add("Linear", name="fc", out=1000)
    return b


def without_lines(document: dict) -> dict:
    for row in document["layers"]:
        row.pop("line")
    return document


def test_blocks_built_in_python_equal_the_packaged_yaml():
    built = resnet18().model().summary().as_dict()
    written = convcalc.load_model(str(Path(convcalc.__file__).parent / "data" / "models" / "resnet18.yaml")).summary().as_dict()
    assert without_lines(built) == without_lines(written)
    assert built["totals"]["params"] == 11_689_512  # torchvision.models.resnet18()
    names = [row["name"] for row in built["layers"]]
    assert names[4:6] == ["layer1.0.conv1", "layer1.0.bn1"] and "layer2.0.downsample.0" in names


def test_unnamed_entries_are_named_by_position_as_in_yaml():
    pair = convcalc.Block("pair").add("Conv2d", out=4, k=3, p=1).add("ReLU")
    b = convcalc.SpecBuilder("positions", (1, 8, 8))
    b.add("Conv2d", out=4, k=1)
    assert b.add(pair) == "1.1"
    assert b.add("ReLU") == "2"  # the block is one entry, like `- pair` in YAML
    assert b.add(pair, repeat=2) == "4.1"  # copies count, as nn.Sequential numbers its children
    assert [node.name for node in b.build().nodes] == ["0", "1.0", "1.1", "2", "3.0", "3.1", "4.0", "4.1"]


def test_repeat_and_trainable():
    b = convcalc.SpecBuilder("frozen", (1, 8, 8))
    b.add("Conv2d", name="stem", out=4, k=3, p=1, trainable=False)
    b.add("Conv2d", name="body", out=4, k=3, p=1, repeat=3)
    rows = b.model().summary().rows
    assert [row.name for row in rows] == ["stem", "body.0", "body.1", "body.2"]
    assert rows[0].params == 40 and rows[0].trainable_params == 0
    assert all(row.trainable_params == 148 for row in rows[1:])


def test_a_frozen_block_freezes_every_layer_in_it():
    block = convcalc.Block("convs", ["c"]).add("Conv2d", out="$c", k=1).add("BatchNorm2d")
    b = convcalc.SpecBuilder("frozen", (2, 8, 8))
    b.add(block, c=2, trainable=False)
    assert b.model().summary().totals.trainable_params == 0


@pytest.mark.parametrize(
    "make, needle, kind",
    [
        (lambda: convcalc.Block("b", ["planes"]).add("Conv2d", out="$plane", k=3),
         "$plane is not a param of block 'b'; did you mean planes?", ErrorKind.BLOCK),
        (lambda: convcalc.Block("b", ["planes", "unused"]).add("Conv2d", out="$planes", k=3),
         "block 'b' declares params it never uses: unused", ErrorKind.BLOCK),
        (lambda: convcalc.Block("Conv2d").add("ReLU"), "block name 'Conv2d' is already a layer type", ErrorKind.BLOCK),
        (lambda: convcalc.Block("empty"), "block 'empty' needs layers:", ErrorKind.BLOCK),
        (lambda: convcalc.Block("b").add("ReLU", inputs="nowhere"), "from: 'nowhere' names no entry above it in block 'b'",
         ErrorKind.WIRING),
        (lambda: convcalc.Block("b").add("Conv2d", out=4, kernal_size=3), "Conv2d has no argument 'kernal_size'", ErrorKind.ARGUMENT),
        (lambda: convcalc.Block("b").add("Conv3x3"), "unknown layer type 'Conv3x3'", ErrorKind.UNKNOWN_LAYER),
    ],
)
def test_a_bad_block_is_refused_where_it_is_used(make, needle, kind):
    b = convcalc.SpecBuilder("bad", (1, 8, 8))
    with pytest.raises(convcalc.SpecError) as caught:
        b.add(make(), planes=4) if "planes" in make().params else b.add(make())
    assert needle in caught.value.message and caught.value.kind is kind


def test_block_use_errors():
    block = convcalc.Block("b", ["planes"]).add("Conv2d", out="$planes", k=1)
    b = convcalc.SpecBuilder("bad", (1, 8, 8))
    with pytest.raises(convcalc.SpecError, match="block 'b' needs planes"):
        b.add(block)
    with pytest.raises(convcalc.SpecError, match="block 'b' has no param 'plane'; did you mean planes?"):
        b.add(block, plane=4)
    looped = convcalc.Block("loop")
    looped.add(looped)
    with pytest.raises(convcalc.SpecError, match="block 'loop' uses itself") as caught:
        b.add(looped)
    assert caught.value.kind is ErrorKind.BLOCK


def test_the_budget_is_checked_before_building():
    ten = convcalc.Block("ten").add("ReLU", repeat=10)
    b = convcalc.SpecBuilder("huge", (1, 8, 8))
    with pytest.raises(convcalc.SpecError) as caught:
        b.add(ten, repeat=10_001)
    assert "repeat: must be a whole number from 1 to 10,000, got 10001" in caught.value.message
    with pytest.raises(convcalc.SpecError) as caught:
        hundred = convcalc.Block("hundred").add(ten, repeat=10)
        b.add(convcalc.Block("many").add(hundred, repeat=1000), repeat=2)
    assert "the model is too large: 2 × block 'many' (100,000 layers each)" in caught.value.message
    assert caught.value.kind is ErrorKind.TOO_LARGE and b.nodes == []


def test_summary_takes_a_builder():
    s = convcalc.summary(mnist(), (4, 1, 28, 28))
    assert s.total_params == 55338 and s.rows[0].output_shape == (4, 16, 26, 26)


def test_the_readme_builder_block_runs_as_written():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- builder-example:", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102  the repository's own README
    summary = namespace["summary"]
    claimed = dict(re.findall(r"^(summary\.\S+)\s+# (.+)$", block, re.MULTILINE))
    assert claimed == {"summary.rows[-1].output_shape": "(1, 10)", "summary.totals.params": "55,370"}
    assert summary.rows[-1].output_shape == (1, 10)
    assert f"{summary.totals.params:,}" == "55,370"
    assert summary.totals.trainable_params == summary.totals.params - summary.rows[-1].params
    names = [row.name for row in summary.rows]
    assert names[3:5] == ["layer1.0.conv", "layer1.0.bn"] and names[-3:] == ["layer1.1.add", "5", "6"]


@pytest.mark.parametrize(
    "entry, kwargs",
    [
        ("Conv2d: {out: 4, kernal_size: 3}", {"out": 4, "kernal_size": 3}),
        ("Conv2d: {out: 4, k: 3, kernel_size: 3}", {"out": 4, "k": 3, "kernel_size": 3}),
        ("Conv2d: {out: 4, k: 3, s: 0}", {"out": 4, "k": 3, "s": 0}),
        ("ReLU: {p: 1}", {"p": 1}),
        ("Dropout: {p: 2}", {"p": 2}),
        ("AdaptiveAvgPool2d: {out: 0}", {"out": 0}),
    ],
)
def test_yaml_and_python_refuse_an_argument_alike(entry, kwargs):
    """One rule per family for keywords and aliases: the same detail, kind and layer from both."""
    with pytest.raises(convcalc.SpecError) as written:
        model_from_text(f"input: [1, 8, 8]\nlayers:\n  - {entry}\n", "spec.yaml")
    with pytest.raises(convcalc.SpecError) as built:
        convcalc.SpecBuilder("python", (1, 8, 8)).add(entry.split(":")[0], **kwargs)
    assert written.value.detail == built.value.detail
    assert (written.value.kind, written.value.layer) == (built.value.kind, built.value.layer)
    assert written.value.message == f"spec.yaml:3: {built.value.detail}"


def test_aliases_follow_each_family():
    b = convcalc.SpecBuilder("aliases", (3, 9, 9))
    b.add("Conv2d", out=8, k=3, s=2, p=1, d=1, g=1)  # out → out_channels
    b.add("AdaptiveAvgPool2d", out=1)  # out → output_size
    b.add("Dropout", p=0.5)  # p is Dropout's own probability
    b.add("Flatten")
    b.add("Linear", out=4)  # out → out_features
    rows = b.model().summary().rows
    assert [row.output_shape for row in rows] == [(1, 8, 5, 5), (1, 8, 1, 1), (1, 8, 1, 1), (1, 8), (1, 4)]
    assert rows[2].layer.torch_kwargs()["p"] == 0.5


def test_inputs_name_an_entry_or_any_node_before():
    block = convcalc.Block("pair", ["c"]).add("Conv2d", name="a", out="$c", k=1).add("ReLU", name="b")
    b = convcalc.SpecBuilder("wiring", (2, 8, 8))
    b.add(block, name="first", c=2)
    b.add(block, name="second", c=2)
    b.add("Add", name="sum", inputs=["first", "second"])  # a block's name is its last node, as in YAML
    b.add("Add", name="inner", inputs=["first.a", "sum"])  # any node by its full name
    nodes = {node.name: node for node in b.build().nodes}
    assert nodes["sum"].inputs == ("first.b", "second.b") and nodes["inner"].inputs == ("first.a", "sum")
    with pytest.raises(convcalc.SpecError, match="the name 'first' is used twice"):
        b.add("ReLU", name="first")


def test_a_forward_reference_in_a_python_block_names_no_line():
    block = convcalc.Block("b").add("ReLU", inputs="later").add("ReLU", name="later")
    with pytest.raises(convcalc.SpecError) as caught:
        convcalc.SpecBuilder("forward", (1, 8, 8)).add(block)
    assert "from: 'later' names no entry above it in block 'b'" in caught.value.message


def test_tie_shares_an_earlier_layers_parameters():
    twice = convcalc.Block("twice", ["w"]).add("Conv2d", name="a", out="$w", k=1).add("Conv2d", name="b", out="$w", k=1, tie="a")
    b = convcalc.SpecBuilder("tied", (4, 8, 8))
    b.add("Conv2d", name="conv", out=4, k=3, p=1)
    b.add("Conv2d", name="again", out=4, k=3, p=2, d=2, tie="conv")
    b.add(twice, name="stage", w=4)
    rows = {row.name: row for row in b.model().summary().rows}
    assert rows["conv"].params == 148 and rows["again"].params == 0 and rows["again"].tie == "conv"
    assert rows["stage.b"].tie == "stage.a" and rows["stage.b"].params == 0
    with pytest.raises(convcalc.SpecError, match="tie: 'nowhere' names no layer above it") as caught:
        b.add("Conv2d", out=4, k=3, tie="nowhere")
    assert caught.value.kind is ErrorKind.WIRING
