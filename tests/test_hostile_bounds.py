"""Time and memory bounded by the work, not by a trick of the input (benchmark-style: generous
bounds that catch "unbounded" or "quadratic", never tight timings).

Each case is refused early (one line naming what was counted) or answered with output that
grows linearly with the spec.
"""

from __future__ import annotations

from pathlib import Path

from hostile import check_refusal, run

import convcalc


def test_flow_lists_of_millions_are_refused_before_parsing(tmp_path: Path) -> None:
    body = ",".join(["1"] * 3_000_000)  # 6 MB: under the file limit, far over the value limit
    (tmp_path / "flow.yaml").write_text(f"input: [1, 28, 28]\nlayers:\n  - ReLU\ndescription: [{body}]\n")
    outcome = run(["model", "flow.yaml"], tmp_path)
    line = check_refusal(outcome, 1, "counted before parsing")
    assert "3,000,0" in line and "alias" not in line
    assert outcome.seconds < 20  # counted, not parsed (parsing took 7 s and 1 GB)


def test_many_mapping_keys_are_refused_before_parsing(tmp_path: Path) -> None:
    keys = "".join(f" k{i}: 1\n" for i in range(1_100_000))
    (tmp_path / "keys.yaml").write_text(f"input: [1, 28, 28]\nlayers:\n  - ReLU\ndescription:\n{keys}")
    check_refusal(run(["model", "keys.yaml"], tmp_path), 1, "counted before parsing")


def test_aliases_are_named_only_when_the_file_has_aliases(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    (tmp_path / "bomb.yaml").write_text("\n".join(["input: [1, 28, 28]", "layers:", "  - ReLU", *lines]) + "\n")
    check_refusal(run(["model", "bomb.yaml"], tmp_path), 1, "aliases")


def merge_spec(merges: int, refs: int) -> str:
    lines = ["input: [1, 4, 4]", "layers:", "  - ReLU: {}", "    name: a0"]
    for i in range(1, merges + 1):
        sources = ", ".join(f"a{max(0, i - 1 - j)}" for j in range(refs))
        lines += [f"  - Add: [{sources}]", f"    name: a{i}"]
    return "\n".join(lines) + "\n"


def test_one_wide_merge_does_not_widen_every_row(tmp_path: Path) -> None:
    """An Add of 5,000 inputs used to make the input column 50 KB wide, padded on every row."""
    text = merge_spec(1, 5000) + "".join("  - ReLU\n" for _ in range(5000))
    (tmp_path / "wide.yaml").write_text(text)
    outcome = run(["model", "wide.yaml"], tmp_path)
    assert outcome.code == 0, outcome.err
    assert len(outcome.out) < 2_000_000  # was 250 MB
    assert "… (5,000 inputs)" in outcome.out
    model = convcalc.load_model(str(tmp_path / "wide.yaml"))
    assert len(model.summary().rows[1].input_shape) == 5000  # the row itself keeps every input


def test_merge_errors_stay_short_with_many_inputs() -> None:
    shapes = [(1, 2, 4, 4)] * 4999 + [(1, 3, 4, 4)]
    add = convcalc.layer("Add")
    try:
        add.merge_shapes(shapes)
    except convcalc.ShapeError as error:
        assert len(str(error)) < 300 and "(5,000 inputs)" in str(error)
    else:
        raise AssertionError("mismatched Add inputs were accepted")


def test_ten_thousand_merges_with_ten_references_each(tmp_path: Path) -> None:
    (tmp_path / "adds.yaml").write_text(merge_spec(10_000, 10))
    outcome = run(["model", "adds.yaml"], tmp_path, timeout=120)
    assert outcome.code == 0, outcome.err
    assert outcome.out.count(" Add ") == 10_000
    widest = max(len(line) for line in outcome.out.splitlines())
    assert widest < 300


def bomb(levels: int) -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghijk"[:levels]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_counted_before_anything_is_built(monkeypatch) -> None:
    """9^9 values (387 million) from 90 nodes: the expansion is counted once per node, so the
    refusal costs what the file costs, not 2,000,000 built values (23 s on a busy machine)."""
    from convcalc import yamlio

    built = []
    monkeypatch.setattr(yamlio._TreeBuilder, "build", lambda self, *a, **k: built.append(1))
    try:
        yamlio.parse_yaml(bomb(8), "bomb.yaml")
    except convcalc.SpecError as error:
        assert "expands to more than 2,000,000 values" in str(error) and "alias bomb" in str(error)
    else:
        raise AssertionError("the alias bomb was accepted")
    assert not built


def test_shared_aliases_within_the_bound_still_load() -> None:
    from convcalc import yamlio

    data = yamlio.parse_yaml(bomb(3) + "input: [1, 28, 28]\n", "ok.yaml")  # 9^4 values: fine
    assert len(data["d"]) == 9 and data["d"][8][8][8] == ["x"] * 9


def test_an_alias_inside_itself_is_refused() -> None:
    from convcalc import yamlio

    try:
        yamlio.parse_yaml("a: &a [1, *a]\n", "self.yaml")
    except convcalc.SpecError as error:
        assert "refers to itself" in str(error)
    else:
        raise AssertionError("a recursive alias was accepted")


def test_chain_and_examples_compute_explanations_only_when_shown() -> None:
    """The worked explanation (window pictures) was most of a chain step's cost, computed for
    every step of every chain and exercise whether shown or not."""
    from convcalc import calc, exercises

    plain = calc.chain((28, 28), ["conv:k=3", "maxpool:k=2"], explain=False)
    full = calc.chain((28, 28), ["conv:k=3", "maxpool:k=2"])
    assert [s.explain for s in plain] == [[], []] and all(s.explain for s in full)
    assert [(s.output, s.warnings) for s in plain] == [(s.output, s.warnings) for s in full]
    outcome = exercises.solve({"question": "q", "input": 28, "layers": ["conv:k=3"], "expect": 26}, 1)
    assert outcome.ok


def test_chain_json_keeps_each_steps_explanation(tmp_path: Path) -> None:
    import json

    outcome = run(["chain", "28", "conv:k=3", "--json"], tmp_path)
    assert outcome.code == 0 and json.loads(outcome.out)["steps"][0]["explain"]


def test_folding_a_long_run_of_activations_is_linear(monkeypatch, tmp_path: Path) -> None:
    """draw folds each activation into the stage before it; the check "has this stage failed?"
    scanned every member of the stage so far, for every member added: 20,000 ReLUs took 165 s
    (drawing with --all-layers, no folding, 34 s). Count the member reads of that check."""
    from convcalc.draw import layout
    from convcalc.draw.model import items_from_summary

    (tmp_path / "relus.yaml").write_text("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n" + "  - ReLU\n" * 3000)
    items = items_from_summary(convcalc.load_model(str(tmp_path / "relus.yaml")).summary())
    reads = []
    original = layout.Stage.failed.fget
    monkeypatch.setattr(layout.Stage, "failed", property(lambda self: reads.append(len(self.members)) or original(self)))
    stages = layout.fold(items)
    assert [len(s.members) for s in stages] == [1, 3001]
    assert sum(reads) < 10 * len(items), f"{sum(reads):,} member reads for {len(items):,} items"


def test_an_output_beyond_the_size_limit_is_refused_by_the_layer_that_makes_it(tmp_path: Path) -> None:
    """Every size convcalc takes is at most 1e15; a layer that grows one past it (PatchMerge's 4 × channels, a
    Concat, a transposed convolution) was answered, and the next layer refused its own input for it (the last
    layer of a spec: a table with 1×1×1×1200000000000000 and exit 0)."""
    import pytest

    cases = [
        (convcalc.layer("PatchMerge"), (1, 2, 2, 3 * 10**14), "dimension 3"),
        (convcalc.layer("ConvTranspose1d", in_channels=1, out_channels=1, kernel_size=3, stride=2), (1, 1, 6 * 10**14), "dimension 2"),
    ]
    for layer, shape, where in cases:
        with pytest.raises(convcalc.ShapeError, match=f"beyond convcalc's limit of 1e\\+15 in {where}"):
            layer.output_shape(shape)
    with pytest.raises(convcalc.ShapeError, match="beyond convcalc's limit of 1e\\+15 in dimension 1"):
        convcalc.layer("Concat").merge_shapes([(1, 6 * 10**14)] * 2)
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: [2, 2, 300000000000000]\nlayers:\n  - PatchMerge\n")
    outcome = run(["model", "spec.yaml"], tmp_path)
    assert outcome.code == 1 and outcome.err.count("\n") == 1 and "PatchMerge at spec.yaml:3" in outcome.err, outcome.err


def test_a_merge_of_100000_inputs_is_diagnosed_in_one_short_line(tmp_path: Path) -> None:
    """The diagnosis of a merge described every input and every difference: an Add of 100,000 references
    that do not line up was one error line of 10.7 MB, a MatMul of 100,000 one of 3.8 MB."""
    many = ", ".join(["a", "b"] * 50_000)
    (tmp_path / "add.yaml").write_text(
        "input: [4, 4]\nlayers:\n  - {Identity: {}, name: a}\n  - {Narrow: {dim: 1, start: 0, length: 2}, name: b, from: input}\n"
        f"  - Add: [{many}]\n"
    )
    (tmp_path / "matmul.yaml").write_text(f"input: [4, 4]\nlayers:\n  - {{Identity: {{}}, name: a}}\n  - MatMul: [{many.replace('b', 'a')}]\n")
    for name, words in (("add.yaml", "channels differ between 'a' and 'b' by 2 (4 vs 2)"), ("matmul.yaml", "multiplies two inputs")):
        outcome = run(["model", name], tmp_path)
        assert outcome.code == 1 and outcome.err.count("\n") == 1, outcome.err[:500]
        assert len(outcome.err) < 1000 and "(100,000 inputs)" in outcome.err and words in outcome.err, outcome.err[:1000]
