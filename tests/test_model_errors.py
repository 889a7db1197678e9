"""`convcalc model` on specs that are wrong: one-line errors with file:line, diagnoses with fixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def model(cli, tmp_path: Path):
    """Write ``text`` to spec.yaml and run ``convcalc model`` on it: (code, stdout, stderr)."""

    def invoke(text: str | None, *args: str, name: str = "spec.yaml") -> tuple[int, str, str]:
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        return cli("model", path, *args)

    return invoke


def one_line_error(code: int, err: str, expected: int = 1) -> str:
    assert code == expected
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


MNIST_BAD_LINEAR = """\
name: broken
input: [1, 28, 28]
layers:
  - Conv2d: {out_channels: 16, kernel_size: 3}
  - ReLU
  - MaxPool2d: {kernel_size: 2, stride: 2}
  - Conv2d: {out: 32, k: 3}
  - Flatten
  - Linear: {in_features: 1568, out_features: 10}
"""


def test_linear_in_features_diagnosis_names_line_value_and_origin(model) -> None:
    code, out, err = model(MNIST_BAD_LINEAR)
    one_line_error(code, err)
    assert "Linear at " in err and "spec.yaml:9 expects in_features = 3872 (32×11×11 after Flatten at line 8)" in err
    assert "the spec says 1568" in err
    # the rows up to the failing layer are printed
    assert "Flatten" in out and "1×3872" in out and "Linear" not in out


def test_kernel_larger_than_input_gives_smallest_input(model) -> None:
    code, _, err = model("input: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - MaxPool2d: {k: 2}\n  - Conv2d: {out: 4, k: 5}\n")
    one_line_error(code, err)
    assert "spec.yaml:5" in err
    assert "kernel 5 (dilated: 5) is larger than the padded input 3" in err
    # 12 → 10 → 5 is the first size that lets the 5×5 kernel fit
    assert "the smallest model input that gets through this layer is 1×12×12" in err


def test_in_channels_disagreeing_with_previous_layer(model) -> None:
    code, _, err = model("input: [3, 32, 32]\nlayers:\n  - Conv2d: {out: 16, k: 3}\n  - Conv2d: {in_channels: 8, out: 4, k: 3}\n")
    one_line_error(code, err)
    assert "spec.yaml:4" in err
    assert "in_channels" in err and "16" in err and "8" in err


def test_json_error_keeps_partial_rows(model) -> None:
    code, out, _ = model(MNIST_BAD_LINEAR, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["error"]["line"] == 9
    assert "in_features" in data["error"]["message"]
    assert [row["type"] for row in data["layers"]][-1] == "Flatten"


@pytest.mark.parametrize(
    "text, needles",
    [
        ("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, kernal_size: 3}\n", ["spec.yaml:3", "did you mean kernel_size?"]),
        ("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - Lineer: {out: 3}\n", ["spec.yaml:4", "did you mean Linear?"]),
        ("input: [1, 28, 28]\nlayrs:\n  - ReLU\n", ["spec.yaml:2", "did you mean layers?"]),
        ("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3\n  - ReLU\n", ["YAML syntax error", "spec.yaml:5:1"]),
        ("", ["is empty"]),
        ("- Conv2d\n- ReLU\n", ["spec.yaml:1", "must be a mapping", "holds a list"]),
        ("layers: [ReLU]\n", ["missing input:"]),
        ("input: [1, 28, 28]\n", ["missing layers:"]),
        ("input: [1, -28, 28]\nlayers: [ReLU]\n", ["at least 1, got -28"]),
        ("input: [1, 2.5, 28]\nlayers: [ReLU]\n", ["whole number, got 2.5"]),
        ("input: {c: 1}\nlayers: [ReLU]\n", ["input: must be a list"]),
        ("input: [1, 28, 28]\nlayers: []\n", ["non-empty list"]),
        ("input: [1,28,28]\nlayers:\n  - !!python/object/apply:os.system [\"echo hacked\"]\n", ["is not allowed"]),
        ("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n    ReLU: {}\n", ["one entry holds one layer"]),
        ("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3, s: 0}\n", ["spec.yaml:3", "stride must be at least 1"]),
        ("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: [3, 3, 3]}\n", ["kernel_size needs 2 values"]),
    ],
)
def test_bad_specs_give_one_line_errors(model, text: str, needles: list[str]) -> None:
    code, _, err = model(text)
    one_line_error(code, err)
    for needle in needles:
        assert needle in err


def test_missing_file_and_directory(model, cli, tmp_path: Path) -> None:
    # a file that cannot be read is a usage error (exit 2), like any bad command-line value
    code, _, err = model(None, name="nope.yaml")
    assert "no such file" in one_line_error(code, err, 2)
    code, _, err = cli("model", tmp_path)
    assert "is a directory" in one_line_error(code, err, 2)


def test_alias_bomb_is_refused_quickly(model) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    text = "\n".join(["input: [1, 28, 28]", "layers:", "  - ReLU", *lines]) + "\n"
    code, _, err = model(text)
    assert "alias bomb" in one_line_error(code, err)


def test_a_million_layers_is_refused_in_bounded_time(model) -> None:
    code, _, err = model("input: [1, 28, 28]\nlayers:\n" + "  - ReLU\n" * 1_000_000)
    assert "at most 100,000" in one_line_error(code, err)


def test_input_override_must_match_rank(cli) -> None:
    code, _, _ = cli("model", "examples/models/lecture_cnn.yaml", "--input", "28x28")
    assert code == 2


def test_layer_warnings_name_file_and_line_as_errors_do(cli, tmp_path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - name: head\n    Linear: {out: 10}\n  - Linear: {out: 3}\n")
    code, _, err = cli("model", str(path))
    lines = err.splitlines()
    assert code == 0 and lines[0].startswith(f"warning: {path}:5 (head): Linear: the input [1, 4, 26, 26] is 4-D")
    assert lines[1].startswith(f"warning: {path}:6: Linear: the input [1, 4, 26, 10] is 4-D")


BLOCK_USES = """\
input: [3, 32, 32]
blocks:
  basic:
    params: [planes]
    layers:
      - Conv2d: {out: $planes, k: 3, p: 1}
      - ReLU
  stage:
    params: [width]
    layers:
      - basic: {planes: $width}
layers:
  - basic: {planes: 8}
  - basic: {planes: -3}
  - stage: {width: 0}
  - basic: {planes: 4, stride: 2}
"""


def test_a_bad_value_inside_a_block_names_the_use_it_came_from(model) -> None:
    """The error is at the layer's line inside the block, where ``$planes`` is; the value itself is
    written at the use: both lines are named, and an outer use only where the inner one passed a ``$param``."""
    lines = BLOCK_USES.splitlines()
    second = "\n".join(lines[:14]) + "\n"
    err = one_line_error(*model(second)[::2])
    assert ":6: Conv2d: out_channels must be at least 1, got -3 (in block 'basic' used at line 14 with planes: -3)" in err, err
    nested = "\n".join([*lines[:13], lines[14]]) + "\n"
    err = one_line_error(*model(nested)[::2])
    assert (":6: Conv2d: out_channels must be at least 1, got 0 (in block 'basic' used at line 11 with planes: 0)"
            " (in block 'stage' used at line 14 with width: 0)") in err, err  # planes: $width is written at line 11
    first = "\n".join(lines[:13]) + "\n  - basic: {planes: 0}\n  - stage: {width: 4}\n"
    err = one_line_error(*model(first)[::2])
    assert err.count("used at line") == 1 and "used at line 14 with planes: 0" in err, err
    literal = BLOCK_USES.replace("{planes: $width}", "{planes: -1}").replace("params: [width]", "params: []")
    err = one_line_error(*model("\n".join(literal.splitlines()[:13] + ["  - stage: {}"]) + "\n")[::2])  # stage's use adds nothing
    assert err.count("used at line") == 1 and "used at line 11 with planes: -1" in err, err
    at_use = "\n".join([*lines[:13], lines[15]]) + "\n"
    err = one_line_error(*model(at_use)[::2])
    assert ":14:" in err and "has no param 'stride'" in err and "used at line" not in err, err
