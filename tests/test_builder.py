"""convcalc.SpecBuilder: a spec built from Python gives the rows the same spec written in YAML
gives, with the same checks (names, wiring, arguments resolved by the families' own rules)."""

from __future__ import annotations

import pytest

import convcalc
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
