"""``tie:`` in a spec: a layer that shares the parameters of an earlier one (a module called again,
or tied weights). Its parameters count once, at the layer it names; its MACs count at every call;
verify builds the two rows on the same tensors and torch agrees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from convcalc import load_model
from convcalc.errors import ConvcalcError

TWICE = """
    name: twice
    input: [4, 8, 8]
    layers:
      - {Conv2d: {out: 4, k: 3, p: 1}, name: conv}
      - {ReLU: {}, name: relu}
      - {Conv2d: {out: 4, k: 3, p: 1}, name: conv_again, tie: conv}   # the same module, called again
      - {Conv2d: {out: 4, k: 3, p: 2, d: 2}, name: dilated, tie: conv}  # the same weights, dilated
      - {Add: [conv, dilated], name: add}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_tied_parameters_count_once_and_macs_every_time(tmp_path: Path) -> None:
    summary = load_model(str(write(tmp_path, TWICE))).summary()
    rows = {r.name: r for r in summary.rows}
    assert rows["conv"].params == 4 * 4 * 9 + 4
    assert rows["conv_again"].params == rows["dilated"].params == 0
    assert rows["conv_again"].macs == rows["conv"].macs == 8 * 8 * 4 * 4 * 9
    assert summary.totals.params == summary.totals.trainable_params == 148
    assert summary.totals.macs == 3 * rows["conv"].macs
    assert rows["dilated"].as_dict()["tie"] == "conv" and "tie" not in rows["conv"].as_dict()


def test_tie_inside_a_block_names_the_blocks_own_layers(tmp_path: Path) -> None:
    spec = """
        name: blocks
        input: [4, 8, 8]
        blocks:
          twice:
            params: [width]
            layers:
              - {Conv2d: {out: $width, k: 1}, name: a}
              - {Conv2d: {out: $width, k: 1}, name: b, tie: a}
        layers:
          - {twice: {width: 4}, name: stage, repeat: 2}
    """
    summary = load_model(str(write(tmp_path, spec))).summary()
    assert [(r.name, r.params, r.tie) for r in summary.rows] == [
        ("stage.0.a", 20, None), ("stage.0.b", 0, "stage.0.a"), ("stage.1.a", 20, None), ("stage.1.b", 0, "stage.1.a"),
    ]


@pytest.mark.parametrize(
    "entry, words",
    [
        ("- {Conv2d: {out: 4, k: 3}, tie: nowhere}", ["spec.yaml:6", "tie: 'nowhere' names no layer above it"]),
        ("- {Linear: {out: 4}, tie: conv}", ["spec.yaml:6", "tie: 'conv' is a Conv2d", "of its own type"]),
        ("- {Add: [conv, relu], tie: conv}", ["spec.yaml:6", "tie: applies to one layer"]),
        ("- {Conv2d: {out: 8, k: 3, p: 1}, tie: conv}", ["spec.yaml:6", "out_channels is 8 here and 4 there"]),
        ("- {Conv2d: {out: 4, k: 3, p: 1, bias: false}, tie: conv}", ["bias is False here and True there"]),
        ("- {Conv2d: {out: 4, k: 3}, tie: input}", ["tie: takes the name of an earlier layer"]),
    ],
)
def test_a_wrong_tie_is_a_spec_error_with_its_line(tmp_path: Path, entry: str, words: list[str]) -> None:
    spec = f"""\
        name: bad
        input: [4, 8, 8]
        layers:
          - {{Conv2d: {{out: 4, k: 3, p: 1}}, name: conv}}
          - {{ReLU: {{}}, name: relu}}
          {entry}
    """
    path = write(tmp_path, spec)
    with pytest.raises(ConvcalcError) as caught:
        load_model(str(path)).summary()
    for word in words:
        assert word in caught.value.message


def test_a_block_use_cannot_tie(tmp_path: Path) -> None:
    spec = """
        name: bad
        input: [4, 8, 8]
        blocks:
          one: [{Conv2d: {out: 4, k: 1}}]
        layers:
          - {Conv2d: {out: 4, k: 1}, name: conv}
          - {one: {}, tie: conv}
    """
    with pytest.raises(ConvcalcError) as caught:
        load_model(str(write(tmp_path, spec)))
    assert "tie: applies to one layer; block 'one'" in caught.value.message


def test_verify_builds_tied_rows_on_the_same_tensors(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from convcalc.verify import build_module, verify_model

    model = load_model(str(write(tmp_path, TWICE)))
    report = verify_model(model)
    assert report.ok, report.mismatches
    assert report.totals.params == 148
    checks = {c.name: c for c in report.checks}
    assert checks["conv_again"].torch_params == 0 and checks["conv"].torch_params == 148
    net = build_module(model.summary(), torch)
    layers = dict(zip([r.name for r in model.summary().rows], net.layers))
    assert layers["dilated"].weight is layers["conv"].weight and layers["conv_again"].bias is layers["conv"].bias
    assert sum(p.numel() for p in net.parameters()) == 148  # torch counts shared tensors once, too


def test_the_cli_shows_the_tie(tmp_path: Path, cli) -> None:
    code, out, err = cli("model", write(tmp_path, TWICE))
    assert code == 0, err
    line = next(line for line in out.splitlines() if " dilated " in line)
    assert "tie=conv" in line


@pytest.mark.parametrize("layer", [
    "MultiheadAttention: {num_heads: 2}",
    "ShiftedWindowAttention: {window_size: 2, num_heads: 2}",
    "ShiftedWindowAttentionV2: {window_size: 2, num_heads: 2}",
])  # fmt: skip
def test_a_tied_layer_with_submodules_shares_all_of_them(tmp_path: Path, layer: str) -> None:
    """verify shared only the tied module's own tensors: MultiheadAttention's out_proj and Swin's qkv/proj are
    submodules, so the second row had torch parameters of its own ('params 0 vs torch 72', a disagreement)."""
    torch = pytest.importorskip("torch")
    from convcalc.verify import build_module, verify_model

    text = f"input: {'[4, 8]' if layer.startswith('Multihead') else '[4, 4, 8]'}\nlayers:\n  - {{{layer}, name: first}}\n  - {{{layer}, name: again, tie: first}}\n"
    model = load_model(str(write(tmp_path, text)))
    report = verify_model(model)
    assert report.ok, report.mismatches
    net = build_module(model.summary(), torch)
    first, again = net.layers
    assert {id(p) for p in again.parameters()} == {id(p) for p in first.parameters()}
