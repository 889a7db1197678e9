"""verify judges "input times a learned weight" modules as the engine's Scale (verify/equivalents.py).

timm is not needed: the classes below are timm's ``LayerScale`` and ``LayerScale2d`` and metaformer's
``Scale`` as timm writes them (same attributes and forward), and a user's own ``x * self.weight``.
Any module with exactly one parameter, no buffers and no children *proposes* a Scale, whatever its
name; the probe decides, on the module's own weight and again on a copy with random weights (a layer
scale starts as equal values, which cannot show the axis it scales). Look-alikes never get a ✓.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from convcalc.verify import verify_python  # noqa: E402


class LayerScale(nn.Module):  # timm.layers.LayerScale
    def __init__(self, dim: int, init_values: float = 1e-5, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: Any) -> Any:
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


class LayerScale2d(nn.Module):  # timm.layers.LayerScale2d
    def __init__(self, dim: int, init_values: float = 1e-5, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: Any) -> Any:
        gamma = self.gamma.view(1, -1, 1, 1)
        return x.mul_(gamma) if self.inplace else x * gamma


class MetaScale(nn.Module):  # timm.models.metaformer.Scale
    def __init__(self, dim: int, init_value: float = 1.0, use_nchw: bool = True) -> None:
        super().__init__()
        self.shape = (dim, 1, 1) if use_nchw else (dim,)
        self.scale = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: Any) -> Any:
        return x * self.scale.view(self.shape)


class Mine(nn.Module):  # a user's own: x * self.weight, one Parameter of (C, 1, 1)
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, 1, 1))

    def forward(self, x: Any) -> Any:
        return x * self.weight


class Gain(nn.Module):  # one scalar weight
    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: Any) -> Any:
        return self.gain * x


def last(x: Any) -> Any:
    return x.permute(0, 2, 3, 1)


class ToLast(nn.Module):
    def forward(self, x: Any) -> Any:
        return last(x)


def check_of(module: nn.Module, size: tuple[int, ...] = (4, 5, 6), channels_last: bool = False) -> Any:
    layers = [nn.Conv2d(3, size[0], 1), *([ToLast()] if channels_last else []), module]
    report = verify_python(nn.Sequential(*layers), (3, *size[1:]))
    return report, next(c for c in report.checks if c.name == str(len(layers) - 1))


# -- the real classes: judged, and compared ------------------------------------------------------------


@pytest.mark.parametrize(
    "make, channels_last, judged_as",
    [
        (lambda: LayerScale(4), True, "Scale 4"),  # channels last: x * gamma over the last axis
        (lambda: LayerScale(4, inplace=True), True, "Scale 4 (in place)"),
        (lambda: LayerScale2d(4), False, "Scale 4×1×1"),
        (lambda: LayerScale2d(4, inplace=True), False, "Scale 4×1×1 (in place)"),
        (lambda: MetaScale(4), False, "Scale 4×1×1"),
        (lambda: MetaScale(4, use_nchw=False), True, "Scale 4"),
        (lambda: Mine(4), False, "Scale 4×1×1"),
    ],
    ids=["LayerScale", "LayerScale inplace", "LayerScale2d", "LayerScale2d inplace", "metaformer Scale", "metaformer Scale nhwc", "x * self.weight"],
)
def test_a_layer_scale_is_judged_as_scale(make: Any, channels_last: bool, judged_as: str) -> None:
    """On 4×5×6 (5×6×4 channels last) the weight's axis is told apart by its size."""
    module = make()
    report, check = check_of(module, channels_last=channels_last)
    assert report.ok and check.confirmed is True, (check.not_judged, check.mismatches)
    assert check.judged_as == judged_as
    assert check.params == check.torch_params == 4
    assert check.macs == 0


def test_a_scalar_weight_is_judged_as_a_scalar_scale() -> None:
    report, check = check_of(Gain())
    assert report.ok and check.confirmed is True and check.judged_as == "Scale scalar"
    assert check.params == check.torch_params == 1


def test_a_layer_scale_in_a_residual_block_is_judged(cli, tmp_path: Path) -> None:
    path = tmp_path / "nets.py"
    path.write_text(
        Path(__file__).read_text()
        + "\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3, padding=1)\n        self.ls = LayerScale2d(4)\n        self.mine = Mine(4)\n\n"
        "    def forward(self, x):\n        x = self.conv(x)\n        return self.mine(x + self.ls(x))\n"
    )
    code, out, err = cli("verify", f"{path}:Net", "--input", "3x8x8")
    assert code == 0, err
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("✓ all ") and "not judged" not in verdict, verdict
    assert "nets.LayerScale2d as Scale 4×1×1 (1)" in verdict and "nets.Mine as Scale 4×1×1 (1)" in verdict, verdict


# -- look-alikes: never a ✓ ---------------------------------------------------------------------------


class OverW(LayerScale2d):  # gamma along W, not the channels: that is a Scale too, of another shape
    def forward(self, x: Any) -> Any:
        return x * self.gamma.view(1, 1, 1, -1)


class OverH(LayerScale2d):  # gamma along H: no Scale proposed is that; on a 4×4×4 map the shapes coincide
    def forward(self, x: Any) -> Any:
        return x * self.gamma.view(1, 1, -1, 1)


class Adds(LayerScale2d):
    def forward(self, x: Any) -> Any:
        return x + self.gamma.view(1, -1, 1, 1)


class Doubles(LayerScale2d):
    def forward(self, x: Any) -> Any:
        return 2 * x * self.gamma.view(1, -1, 1, 1)


class Squares(LayerScale2d):  # right at gamma = 1 … and at no other value
    def forward(self, x: Any) -> Any:
        return x * self.gamma.view(1, -1, 1, 1) ** 2


class Biased(LayerScale2d):  # two parameters: x * gamma + beta
    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Any) -> Any:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class Buffered(LayerScale2d):  # one parameter, and a buffer the forward reads
    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.register_buffer("mask", torch.ones(dim))

    def forward(self, x: Any) -> Any:
        return x * (self.gamma * self.mask).view(1, -1, 1, 1)


class Wrapped(nn.Module):  # the parameter lives in a child
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.inner = LayerScale2d(dim)

    def forward(self, x: Any) -> Any:
        return self.inner.gamma.view(1, -1, 1, 1) * x


class Subtracts(LayerScale2d):
    def forward(self, x: Any) -> Any:
        return x - self.gamma.view(1, -1, 1, 1)


class AddsSquare(LayerScale2d):  # right at gamma = 1 … and at no other value
    def forward(self, x: Any) -> Any:
        return x + self.gamma.view(1, -1, 1, 1) ** 2


class AddsOverH(LayerScale2d):  # gamma along H: no Bias proposed is that; on a 4×4×4 map the shapes coincide
    def forward(self, x: Any) -> Any:
        return x + self.gamma.view(1, 1, -1, 1)


def reasons(not_judged: str) -> dict[str, str]:
    """``"not Scale 4: why; not Bias 4: why"`` → {"Scale 4": why, …}, in the order tried."""
    return dict(part.removeprefix("not ").split(": ", 1) for part in not_judged.split("; not "))


@pytest.mark.parametrize("init", [1e-5, 1.0], ids=["init 1e-5", "init 1"])
@pytest.mark.parametrize(
    "cls, why",
    [
        (OverH, {"Scale 4×1×1": "with random weights, on a random 1×4×4×4 input its values differ"}),
        (Doubles, {"Scale 4×1×1": "values differ"}),
        (Squares, {"Scale 4×1×1": "values differ"}),
        (AddsOverH, {"Bias 4×1×1": "with random weights, on a random 1×4×4×4 input its values differ"}),
        (Subtracts, {"Bias 4×1×1": "values differ"}),
        (AddsSquare, {"Bias 4×1×1": "values differ"}),
    ],
    ids=["over H", "doubles", "squares", "adds over H", "subtracts", "adds a square"],
)
def test_a_lookalike_is_never_judged(cls: type, why: dict[str, str], init: float) -> None:
    module = cls(4, init_values=init)
    report, check = check_of(module, size=(4, 4, 4))
    assert check.confirmed is None and check.judged_as == "" and report.ok
    tried = reasons(check.not_judged)
    assert list(tried) == ["Scale 4", "Scale 4×1×1", "Bias 4", "Bias 4×1×1"], check.not_judged  # every proposal tried
    assert all(words in tried[label] for label, words in why.items()), check.not_judged


@pytest.mark.parametrize("init", [1e-5, 1.0, 0.0], ids=["init 1e-5", "init 1", "init 0"])
def test_a_module_that_adds_its_one_parameter_is_judged_as_bias_never_as_scale(init: float) -> None:
    """x + gamma (C×1×1): a Bias, after every Scale was tried and refuted (equal weights, even 0 or 1, cannot pass
    for a product: the probe with random weights shows it)."""
    report, check = check_of(Adds(4, init_values=init), size=(4, 4, 4))
    assert report.ok and check.confirmed is True and check.judged_as == "Bias 4×1×1", (check.not_judged, check.mismatches)
    assert check.params == check.torch_params == 4 and check.macs == 0


@pytest.mark.parametrize("init", [1e-5, 1.0], ids=["init 1e-5", "init 1"])
def test_a_scale_over_another_axis_is_judged_as_that_scale(init: float) -> None:
    """Equal weights cannot tell W from the channels; the probe with random weights can."""
    report, check = check_of(OverW(4, init_values=init), size=(4, 4, 4))
    assert report.ok and check.confirmed is True and check.judged_as == "Scale 4"  # over the last axis
    report, check = check_of(LayerScale2d(4, init_values=init), size=(4, 4, 4))
    assert report.ok and check.confirmed is True and check.judged_as == "Scale 4×1×1"
    assert check.not_judged == ""


@pytest.mark.parametrize("cls", [Biased, Buffered], ids=["two parameters", "a buffer"])
def test_more_than_one_weight_proposes_nothing(cls: type) -> None:
    report, check = check_of(cls(4))
    assert check.confirmed is None and check.judged_as == "" and check.not_judged == "" and report.ok


def test_a_parameter_of_a_child_that_never_runs_is_no_scale_row() -> None:
    """Wrapped multiplies by its child's gamma without calling the child: no leaf of it runs, nothing is judged."""
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), Wrapped(4)), (3, 5, 6))
    assert [c.name for c in report.checks if not c.own] == ["0"]
    assert all(c.judged_as == "" for c in report.checks)


def test_a_wrong_engine_rule_for_a_judged_scale_is_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcalc.layers.scale import Scale as EngineScale

    monkeypatch.setattr(EngineScale, "num_params", property(lambda self: 2 * len(self.shape)))
    report, check = check_of(LayerScale2d(4))
    assert not report.ok and check.confirmed is False and check.judged_as == "Scale 4×1×1"
    assert [(m.what, m.engine, m.torch) for m in check.mismatches] == [("params", 6, 4)]


def test_on_meta_a_layer_scale_stays_not_judged() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 4, 1), LayerScale2d(4))
    report = verify_python(model, (3, 5, 6), device="meta")
    check = report.checks[1]
    assert check.confirmed is None and "may be Scale 4 or Scale 4×1×1 or Bias 4 or Bias 4×1×1," in check.not_judged
    assert "on meta it has none" in check.not_judged
