"""verify judges modules of no torch.nn class by what they are shown to compute (verify/equivalents.py).

torchvision is not needed: the classes below are torchvision's ``Permute``, ``StochasticDepth`` and
``LayerNorm2d`` and timm's ``DropPath`` as their sources write them (same names, attributes and
forward). Their look-alikes with another forward must never get a ✓: each stays not judged with
the reason, and where the engine's own numbers are wrong the row is ✗.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

from convcalc.verify import verify_python  # noqa: E402

# -- the real classes, as torchvision and timm write them -------------------------------------------


class Permute(nn.Module):  # torchvision.ops.misc.Permute
    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Any) -> Any:
        return torch.permute(x, self.dims)


class StochasticDepth(nn.Module):  # torchvision.ops.StochasticDepth
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: Any) -> Any:
        if not self.training or self.p == 0.0:
            return input
        size = [input.shape[0]] + [1] * (input.ndim - 1) if self.mode == "row" else [1] * input.ndim
        noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(1.0 - self.p)
        return input * noise.div_(1.0 - self.p)


class DropPath(nn.Module):  # timm.layers.DropPath
    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Any) -> Any:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        return x * x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep) / keep


class LayerNorm2d(nn.LayerNorm):  # torchvision.models.convnext.LayerNorm2d
    def forward(self, x: Any) -> Any:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class TimmLayerNorm(nn.LayerNorm):  # timm.layers.LayerNorm: torch's layer norm, another forward
    def forward(self, x: Any) -> Any:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


def randomized(module: nn.Module) -> nn.Module:
    """Weights away from LayerNorm's 1 and 0: a forward that drops them cannot pass."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return module


class Block(nn.Module):  # torchvision's CNBlock, smaller
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)
        self.stochastic_depth = StochasticDepth(0.1, "row")

    def forward(self, x: Any) -> Any:
        return x + self.stochastic_depth(self.layer_scale * self.block(x))


class TinyConvNeXt(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), randomized(LayerNorm2d(8, eps=1e-6)))
        self.stage = Block(8)
        self.down = nn.Sequential(randomized(LayerNorm2d(8, eps=1e-6)), nn.Conv2d(8, 16, 2, stride=2))
        self.drop = DropPath(0.2)
        self.norm = randomized(TimmLayerNorm(16))
        self.head = nn.Linear(16, 5)

    def forward(self, x: Any) -> Any:
        x = self.drop(self.down(self.stage(self.stem(x))))
        return self.head(self.norm(x.mean((2, 3))))


def checks_of(report: Any) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


# -- the real classes are judged, as the layers they compute ----------------------------------------


def test_torchvision_and_timm_modules_are_judged_as_what_they_compute() -> None:
    report = verify_python(TinyConvNeXt(), (3, 32, 12))
    checks = checks_of(report)
    assert report.ok and all(c.confirmed is True for c in report.checks if not c.own), [(c.name, c.confirmed, c.not_judged) for c in report.checks]
    assert checks["stage.block.1"].judged_as == "Permute" and checks["stage.block.1"].output_shape == (1, 8, 3, 8)
    assert checks["stage.block.6"].judged_as == "Permute" and checks["stage.block.6"].output_shape == (1, 8, 8, 3)
    assert checks["stage.stochastic_depth"].judged_as == "Identity"
    assert checks["drop"].judged_as == "Identity"
    assert checks["stem.1"].judged_as == "LayerNorm over the channels (Permute, LayerNorm, Permute)"
    assert checks["stem.1"].params == checks["stem.1"].torch_params == 16
    assert checks["norm"].judged_as == "LayerNorm (torch's)" and checks["norm"].params == 32
    assert checks["stage.block.2"].judged_as == ""  # nn.LayerNorm itself: judged as ever


def test_the_verdict_and_json_say_how_they_were_judged(cli, tmp_path: Path) -> None:
    path = tmp_path / "nets.py"
    path.write_text(Path(__file__).read_text())
    code, out, err = cli("verify", f"{path}:TinyConvNeXt", "--input", "3x32x12")
    assert code == 0, err
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("✓ all ") and "not judged" not in verdict
    assert "judged as the layers they were shown to compute: " in verdict
    assert "nets.LayerNorm2d as LayerNorm over the channels (Permute, LayerNorm, Permute) (2)" in verdict
    assert "nets.Permute as Permute (2)" in verdict and "nets.StochasticDepth as Identity (1)" in verdict
    code, out, _ = cli("verify", f"{path}:TinyConvNeXt", "--input", "3x32x12", "--json")
    rows = {row["name"]: row for row in json.loads(out)["layers"]}
    assert rows["stage.block.1"]["judged_as"] == "Permute" and rows["stage.block.1"]["class"].endswith("nets.Permute")
    assert rows["stage.block.1"]["confirmed"] is True


def test_a_view_or_a_copy_of_the_permutation_both_compute_it() -> None:
    class Copied(Permute):
        def forward(self, x: Any) -> Any:
            return x.permute(self.dims).contiguous()

    Copied.__name__ = "Permute"
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), Copied([0, 3, 1, 2])), (3, 5, 6))
    assert report.ok and report.checks[1].confirmed is True and report.checks[1].judged_as == "Permute"


# -- look-alikes: never a ✓ ---------------------------------------------------------------------------


def lookalike(name: str, base: type, forward: Any) -> type:
    return type(name, (base,), {"forward": forward})


WRONG = {
    "inverse permutation": lookalike("Permute", Permute, lambda self, x: x.permute(*[self.dims.index(i) for i in range(x.dim())])),
    "H and W swapped after": lookalike("Permute", Permute, lambda self, x: x.permute(self.dims).transpose(1, 2)),
    "a copy that scales": lookalike("Permute", Permute, lambda self, x: 2 * x.permute(self.dims)),
}


@pytest.mark.parametrize("name", list(WRONG))
@pytest.mark.parametrize("size", [(4, 4), (4, 6)], ids=["cube: same shapes", "oblong"])
def test_a_permute_that_computes_something_else_is_not_judged(name: str, size: tuple[int, int]) -> None:
    """On a 4×4×4 feature map every wrong permutation has the right shape: only the values tell it apart."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), WRONG[name]([0, 2, 3, 1]))
    report = verify_python(model, (3, *size))
    check = report.checks[1]
    assert check.confirmed is None and check.judged_as == "" and report.ok
    assert check.not_judged.startswith("not Permute: on a random 1×4×"), check.not_judged


@pytest.mark.parametrize(
    "forward, why",
    [
        (lambda self, x: 0.5 * x, "values differ"),
        (lambda self, x: x.add_(1), "values differ"),  # writes into its input and returns it
        (lambda self, x: x[:, :1], "output is 1×1×"),
        (lambda self, x: (x, x), "returns a tuple"),
    ],
    ids=["scales", "in place", "narrows", "tuple"],
)
def test_a_stochastic_depth_that_is_no_identity_in_eval_is_not_judged(forward: Any, why: str) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), lookalike("StochasticDepth", StochasticDepth, forward)(0.1, "row"))
    report = verify_python(model, (3, 5, 5))
    check = report.checks[1]
    assert check.confirmed is None and check.judged_as == ""
    if why != "returns a tuple":  # a tuple output is not a shape: nothing is proposed
        assert check.not_judged.startswith("not Identity:") and why in check.not_judged, check.not_judged


@pytest.mark.parametrize(
    "forward",
    [
        lambda self, x: F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, None, None, self.eps).permute(0, 3, 1, 2),  # weights lost
        lambda self, x: F.layer_norm(x, x.shape[-1:], None, None, self.eps) * self.weight[:, None, None] + self.bias[:, None, None],  # over W
        lambda self, x: F.group_norm(x, 1, self.weight, self.bias, self.eps),  # over C, H and W
    ],
    ids=["no weights", "over W", "group norm"],
)
def test_a_layernorm2d_that_normalizes_otherwise_is_not_judged(forward: Any) -> None:
    wrong = randomized(lookalike("LayerNorm2d", nn.LayerNorm, forward)(4))
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), wrong), (3, 6, 6))
    check = report.checks[1]
    assert check.confirmed is None and check.judged_as == ""
    assert "not LayerNorm (torch's):" in check.not_judged and "not LayerNorm over the channels" in check.not_judged, check.not_judged


def test_a_name_without_the_attributes_proposes_nothing() -> None:
    class Nameless(nn.Module):
        def forward(self, x: Any) -> Any:
            return x.permute(0, 2, 3, 1)

    Nameless.__name__ = "Permute"  # no dims: nothing to compare with

    class Weighted(Permute):  # dims, but a parameter torchvision's Permute does not have
        def __init__(self, dims: list[int]) -> None:
            super().__init__(dims)
            self.w = nn.Parameter(torch.ones(1))

    Weighted.__name__ = "Permute"
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), Nameless()), (3, 5, 6))
    assert report.checks[1].confirmed is None and report.checks[1].not_judged == ""
    # One parameter and nothing else: no Permute, but it may be an ``x * weight`` (a Scale) or ``x + weight`` (a Bias),
    # which the probe refutes.
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), Weighted([0, 2, 3, 1])), (3, 5, 6))
    assert report.checks[1].confirmed is None
    assert report.checks[1].not_judged == (
        "not Scale 1: on a random 1×4×5×6 input its output is 1×5×6×4, not 1×4×5×6;"
        " not Bias 1: on a random 1×4×5×6 input its output is 1×5×6×4, not 1×4×5×6"
    )


def test_a_module_called_with_more_than_its_input_is_not_probed() -> None:
    """A probe calls the module with one input; a call with more cannot be replayed."""

    class Two(StochasticDepth):
        def forward(self, input: Any, other: Any = None) -> Any:  # type: ignore[override]
            return input

    class Caller(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.drop = Two(0.1, "row")

        def forward(self, x: Any) -> Any:
            y = self.conv(x)
            return self.drop(y, y)

    Two.__name__ = "StochasticDepth"
    check = checks_of(verify_python(Caller(), (3, 5, 5)))["drop"]
    assert check.confirmed is None and check.not_judged == "" and check.judged_as == ""


# -- judged means compared: the engine's numbers against what the call did ----------------------------


def test_a_wrong_engine_rule_for_a_judged_module_is_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcalc.layers.linear import Permute as EnginePermute

    real = EnginePermute._output
    monkeypatch.setattr(EnginePermute, "_output", lambda self, shape: tuple(reversed(real(self, shape))))
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), Permute([0, 2, 3, 1])), (3, 5, 6))
    check = report.checks[1]
    assert not report.ok and check.confirmed is False and check.judged_as == "Permute"
    assert [(m.what, m.engine, m.torch) for m in check.mismatches] == [("output shape", (4, 6, 5, 1), (1, 5, 6, 4))]


def test_on_meta_a_module_with_parameters_stays_not_judged_and_one_without_is_probed_on_cpu() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 4, 1), LayerNorm2d(4), Permute([0, 2, 3, 1]), DropPath(0.1))
    report = verify_python(model, (3, 5, 6), device="meta")
    checks = report.checks
    assert report.ok and checks[1].confirmed is None and "on meta it has none" in checks[1].not_judged
    assert checks[2].judged_as == "Permute" and checks[2].confirmed is True
    assert checks[3].judged_as == "Identity" and checks[3].confirmed is True


def test_the_verdict_says_why_a_lookalike_is_not_judged(cli, tmp_path: Path) -> None:
    path = tmp_path / "wrong.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Permute(nn.Module):\n"
        "    def __init__(self, dims):\n        super().__init__()\n        self.dims = dims\n\n"
        "    def forward(self, x):\n        return torch.permute(x, self.dims).transpose(1, 2)\n\n"
        "def net():\n    return nn.Sequential(nn.Conv2d(3, 4, 1), Permute([0, 2, 3, 1]))\n"
    )
    code, out, err = cli("verify", f"{path}:net", "--input", "3x4x4")
    assert code == 0, err
    row = next(line for line in out.splitlines() if " Permute " in line)
    assert not row.rstrip().endswith("✓"), row
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("✓ the layer agrees") and "judged as the layers" not in verdict
    assert "; not judged: " in verdict and "wrong.Permute at 1 (not Permute: on a random 1×4×4×4 input its values differ" in verdict
    code, out, _ = cli("verify", f"{path}:net", "--input", "3x4x4", "--json")
    layer = json.loads(out)["layers"][1]
    assert layer["confirmed"] is None and layer["not_judged"].startswith("not Permute:") and "judged_as" not in layer


def test_a_chain_of_judged_modules_is_a_chain_of_spec_rows_where_each_is_one_row() -> None:
    """--emit-spec's chain of leaves (where fx cannot trace): a Permute and an Identity are one row
    each; a LayerNorm2d is three, which one module's row cannot hold: said so."""
    one = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), Permute([0, 2, 3, 1]), DropPath(0.1)), (3, 5, 6))
    assert one.sequential is None and [c.layer.type_name for c in one.checks] == ["Conv2d", "Permute", "Identity"]
    three = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), LayerNorm2d(4)), (3, 5, 6))
    assert three.ok and three.sequential is not None and "several spec rows for one module" in three.sequential


class SwapAxes(nn.Module):  # torchvision.models.maxvit.SwapAxes
    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.a = a
        self.b = b

    def forward(self, x: Any) -> Any:
        return torch.swapaxes(x, self.a, self.b)


def test_swapaxes_is_judged_as_its_permute_and_a_lookalike_is_not() -> None:
    report = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), SwapAxes(-2, -1), SwapAxes(1, 3)), (3, 5, 6))
    assert report.ok and [c.judged_as for c in report.checks] == ["", "Permute", "Permute"]
    assert [c.layer.dims for c in report.checks[1:]] == [(0, 1, 3, 2), (0, 3, 2, 1)]
    assert report.checks[2].output_shape == (1, 5, 6, 4) and report.checks[2].confirmed is True
    wrong = lookalike("SwapAxes", SwapAxes, lambda self, x: torch.swapaxes(x, self.a, self.b).flip(-1))
    check = verify_python(nn.Sequential(nn.Conv2d(3, 4, 1), wrong(2, 3)), (3, 5, 5)).checks[1]
    assert check.confirmed is None and check.not_judged.startswith("not Permute:")
