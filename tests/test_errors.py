"""Errors are values: a kind, the layer, the axis, the numbers and the fix as fields; one formatter
writes the message; the model diagnosis reads the fields, never the wording."""

from __future__ import annotations

import json

import pytest

import convcalc
from convcalc.calc import chain
from convcalc.errors import ErrorKind, ShapeError
from convcalc.graph import model_from_text
from convcalc.layers.conv import Conv

TOO_SMALL = "input: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - MaxPool2d: {k: 2}\n  - Conv2d: {out: 4, k: 5}\n"
CHANNELS = "input: [3, 8, 8]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - Conv2d: {in_channels: 8, out: 4, k: 3}\n"


def failure(text: str) -> convcalc.ConvcalcError:
    with pytest.raises(convcalc.ConvcalcError) as caught:
        model_from_text(text, "spec.yaml").summary()
    return caught.value


def test_a_geometry_error_carries_its_fields():
    conv = convcalc.layer("Conv2d", in_channels=1, out_channels=1, kernel_size=(3, 11))
    with pytest.raises(ShapeError) as caught:
        conv.output_shape((1, 1, 8, 8))
    error = caught.value
    assert (error.kind, error.layer, error.axis) == (ErrorKind.TOO_SMALL, "Conv2d", "W")
    assert error.numbers["smallest_input"] == 11 and error.numbers["padding_to_fit"] == 2
    assert error.fix == "use an input of at least 11 or padding ≥ 2"
    assert error.message == f"Conv2d: W: kernel 11 (dilated: 11) is larger than the padded input 8 (input 8 + 2×0 padding); {error.fix}"
    assert error.as_dict()["kind"] == "too small" and error.as_dict()["numbers"] == error.numbers


def test_the_numbers_of_a_too_small_error_are_what_torch_accepts(torch_agrees):
    for kernel, padding, dilation in [(5, 0, 1), (3, 1, 3), (7, 2, 1)]:
        kwargs = {"in_channels": 1, "out_channels": 1, "kernel_size": kernel, "padding": padding, "dilation": dilation}
        with pytest.raises(ShapeError) as caught:
            convcalc.layer("Conv1d", **kwargs).output_shape((1, 1, 1))
        smallest = caught.value.numbers["smallest_input"]
        assert torch_agrees("Conv1d", kwargs, (1, 1, smallest)) == "ok"
        if smallest > 1:
            assert torch_agrees("Conv1d", kwargs, (1, 1, smallest - 1)) == "error"


def test_the_diagnosis_follows_the_kind_not_the_wording(monkeypatch):
    """Reword the layer's message: the diagnosis still finds the smallest input, because it reads the kind."""
    reference = failure(TOO_SMALL)
    assert "the smallest model input that gets through this layer is 1×12×12" in reference.message
    monkeypatch.setattr(Conv, "_too_small", lambda self, axis: self.error("does not fit (reworded)", ErrorKind.TOO_SMALL))
    reworded = failure(TOO_SMALL)
    assert "does not fit (reworded)" in reworded.message
    assert "the smallest model input that gets through this layer is 1×12×12" in reworded.message
    assert reworded.kind == ErrorKind.TOO_SMALL and reworded.line == 5
    monkeypatch.setattr(Conv, "_too_small", lambda self, axis: self.error("does not fit (reworded)", ErrorKind.GEOMETRY))
    assert "smallest model input" not in failure(TOO_SMALL).message  # the kind, and only the kind, decides


def test_a_channel_mismatch_names_where_the_input_comes_from():
    error = failure(CHANNELS)
    assert error.kind == ErrorKind.CHANNELS and error.numbers == {"in_channels": 8, "channels": 4}
    assert error.message.startswith("Conv2d at spec.yaml:4 expects in_channels = 8")
    assert "its input 1×4×6×6 comes from Conv2d at line 3" in error.message


def test_a_chain_step_is_context_not_a_rewritten_message():
    with pytest.raises(convcalc.ShapeError) as caught:
        chain((4, 4), ["conv:k=3", "conv:k=3"])
    error = caught.value
    assert error.context == ("step 2 (conv:k=3)",)
    assert error.text.startswith("Conv2d: H: kernel 3")
    assert error.message == f"step 2 (conv:k=3): {error.text}"


def test_spec_errors_write_their_location_once(cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - Conv2d: {out: 4, kernal_size: 3}\n")
    code, out, err = cli("model", spec, "--json")
    data = json.loads(out)["error"]
    assert code == 1 and data["line"] == 3 and data["kind"] == "argument"
    assert err.count(f"{spec}:3") == 1 and data["message"].startswith(f"{spec}:3: ")


SPEC_KINDS = [
    ("input: [3, 8, 8]\nlayers:\n  - Conv3x3: {out: 4}\n", ErrorKind.UNKNOWN_LAYER, 3),
    ("input: [3, 8, 8]\nlayers:\n  - nn.Conv3x3(3, 4, 3)\n", ErrorKind.UNKNOWN_LAYER, 3),
    ("input: [3, 8, 8]\nlayer:\n  - ReLU\n", ErrorKind.UNKNOWN_KEY, 2),
    ("input: [3, 8, 8]\nblocks:\n  b:\n    layers: [ReLU]\n    parms: [x]\nlayers:\n  - b\n", ErrorKind.UNKNOWN_KEY, 5),
    ("input: [3, 8, 8]\nlayers:\n  - Conv2d: {out: 4, kernal_size: 3}\n", ErrorKind.ARGUMENT, 3),
    ("input: [3, 8, 8]\nlayers:\n  - Conv2d: {out: 4, k: 3, s: 0}\n", ErrorKind.ARGUMENT, 3),
    ("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - {Add: [a, b]}\n", ErrorKind.WIRING, 4),
    ("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - {ReLU: {}, name: a}\n", ErrorKind.WIRING, 4),
    ("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, from: later}\n  - {ReLU: {}, name: later}\n", ErrorKind.WIRING, 3),
    ("input: [3, 8, 8]\nblocks:\n  b:\n    params: [c]\n    layers: [ReLU]\nlayers:\n  - b: {c: 1}\n", ErrorKind.BLOCK, 4),
    ("input: [3, 8, 8]\nblocks:\n  b: [b]\nlayers:\n  - b\n", ErrorKind.BLOCK, 3),
    ("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, repeat: 10001}\n", ErrorKind.TOO_LARGE, 3),
    ("input: [3, 8, 8]\nblocks:\n  r: [{ReLU: {}, repeat: 1000}]\nlayers:\n  - {r: {}, repeat: 101}\n", ErrorKind.TOO_LARGE, 5),
    ("input: [3, 0, 8]\nlayers:\n  - ReLU\n", ErrorKind.INPUT_SHAPE, 1),
    ("input: [3, 8, 8]\nlayers: ReLU\n", ErrorKind.SYNTAX, 2),
    ("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}\n", ErrorKind.SYNTAX, None),
    ("input: [3, 8, 8]\nlayers:\n  - {name: a}\n", ErrorKind.SYNTAX, 3),
    ("input: [3, 8, 8]\nlayers:\n  - Conv2d(3, 4, *k)\n", ErrorKind.SYNTAX, 3),
]


@pytest.mark.parametrize("text, kind, line", SPEC_KINDS, ids=[kind.value + f"-{i}" for i, (_, kind, _) in enumerate(SPEC_KINDS)])
def test_a_spec_error_says_what_kind_of_mistake_it_is(text, kind, line):
    with pytest.raises(convcalc.SpecError) as caught:
        model_from_text(text, "spec.yaml").summary()
    assert caught.value.kind is kind, caught.value.message
    if line is not None:
        assert caught.value.line == line
    assert caught.value.as_dict()["kind"] == kind.value


def test_an_unreadable_file_is_a_file_error(cli, tmp_path):
    code, out, _ = cli("model", tmp_path / "missing.yaml", "--json")
    assert code == 2 and json.loads(out)["error"]["kind"] == "file"


def test_the_kind_reaches_the_json_error_object(cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - {ReLU: {}, name: a}\n  - {Add: [a, b]}\n")
    code, out, _ = cli("model", spec, "--json")
    assert code == 1 and json.loads(out)["error"]["kind"] == "wiring"
