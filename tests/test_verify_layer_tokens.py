"""verify judges a user's position-embedding and class-token modules as the engine's Bias and ClassToken
(verify/equivalents.py), as it judges a layer scale as Scale: a module with exactly one parameter, no buffers
and no children proposes Scale, then Bias, then (a parameter of (1, tokens, *input[2:])) ClassToken; the probe
decides, on the module's own weight and on a copy with random weights. Look-alikes never get a ✓; a module
that multiplies is a Scale, never a Bias.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from convcalc.verify import verify_python


class PosEmbed(nn.Module):  # a user's learned position embedding: x + self.pos
    def __init__(self, length: int = 5, dim: int = 4, init: float = 0.02) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.full((1, length, dim), init))

    def forward(self, x: Any) -> Any:
        return x + self.pos


class ClsToken(nn.Module):  # a user's class token, as torchvision's forward writes it
    def __init__(self, dim: int = 4, tokens: int = 1, init: float = 0.0) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.full((1, tokens, dim), init))

    def forward(self, x: Any) -> Any:
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)


class Tokens(nn.Module):
    """A conv over (N, C, L) and a permute to N×L×C: the tokens these modules receive."""

    def forward(self, x: Any) -> Any:
        return x.permute(0, 2, 1)


def check_of(module: nn.Module, length: int = 5) -> Any:
    model = nn.Sequential(nn.Conv1d(3, 4, 1), Tokens(), module)
    report = verify_python(model, (3, length))
    return report, report.checks[-1]


@pytest.mark.parametrize("init", [0.0, 1.0, 0.02], ids=["init 0", "init 1", "init 0.02"])
def test_a_position_embedding_module_is_judged_as_bias(init: float) -> None:
    report, check = check_of(PosEmbed(init=init))
    assert report.ok and check.confirmed is True and check.judged_as == "Bias 1×5×4", (check.not_judged, check.mismatches)
    assert check.params == check.torch_params == 20 and check.macs == 0


@pytest.mark.parametrize("tokens", [1, 2])
def test_a_class_token_module_is_judged_as_class_token(tokens: int) -> None:
    report, check = check_of(ClsToken(tokens=tokens))
    expected = "ClassToken 1 token of 4" if tokens == 1 else "ClassToken 2 tokens of 4"
    assert report.ok and check.confirmed is True and check.judged_as == expected, (check.not_judged, check.mismatches)
    assert check.params == check.torch_params == 4 * tokens and check.macs == 0
    assert tuple(check.output_shape) == (1, 5 + tokens, 4)


class Multiplies(PosEmbed):  # x * pos: a Scale, which it is judged as (never a Bias)
    def forward(self, x: Any) -> Any:
        return x * self.pos


def test_a_module_that_multiplies_is_a_scale_never_a_bias() -> None:
    report, check = check_of(Multiplies(init=1.0))
    assert report.ok and check.confirmed is True and check.judged_as == "Scale 1×5×4"


class Subtracts(PosEmbed):
    def forward(self, x: Any) -> Any:
        return x - self.pos


class AddsTwice(PosEmbed):
    def forward(self, x: Any) -> Any:
        return x + 2 * self.pos


class AddsReversed(PosEmbed):  # the embedding read backwards along the tokens: equal values hide it, random ones show it
    def forward(self, x: Any) -> Any:
        return x + self.pos.flip(1)


class TokenLast(ClsToken):
    def forward(self, x: Any) -> Any:
        return torch.cat([x, self.token.expand(x.shape[0], -1, -1)], dim=1)


class TokenDoubled(ClsToken):
    def forward(self, x: Any) -> Any:
        return torch.cat([2 * self.token.expand(x.shape[0], -1, -1), x], dim=1)


class TokensSwapped(ClsToken):  # two tokens in the other order: equal values hide it, random ones show it
    def forward(self, x: Any) -> Any:
        return torch.cat([self.token.flip(1).expand(x.shape[0], -1, -1), x], dim=1)


@pytest.mark.parametrize("init", [0.0, 1.0], ids=["init 0", "init 1"])
@pytest.mark.parametrize(
    "make, tried",
    [
        (lambda init: Subtracts(init=init), ["Scale 1×5×4", "ClassToken 5 tokens of 4", "Bias 1×5×4"]),
        (lambda init: AddsTwice(init=init), ["Scale 1×5×4", "ClassToken 5 tokens of 4", "Bias 1×5×4"]),
        (lambda init: AddsReversed(init=init), ["Scale 1×5×4", "ClassToken 5 tokens of 4", "Bias 1×5×4"]),
        (lambda init: TokenLast(init=init), ["Scale 1×1×4", "Bias 1×1×4", "Scale 4", "Bias 4", "ClassToken 1 token of 4"]),
        (lambda init: TokenDoubled(init=init), ["Scale 1×1×4", "Bias 1×1×4", "Scale 4", "Bias 4", "ClassToken 1 token of 4"]),
        (lambda init: TokensSwapped(init=init, tokens=2), ["Scale 1×2×4", "Bias 1×2×4", "ClassToken 2 tokens of 4"]),
    ],
    ids=["subtracts", "adds twice", "adds reversed", "token last", "token doubled", "tokens swapped"],
)
def test_a_lookalike_is_never_judged(make: Any, tried: list[str], init: float) -> None:
    report, check = check_of(make(init))
    assert report.ok and check.confirmed is None and check.judged_as == "", check.judged_as
    labels = [part.removeprefix("not ").split(": ", 1)[0] for part in check.not_judged.split("; not ")]
    assert sorted(labels) == sorted(tried), check.not_judged
    close = next(label for label in reversed(tried) if label.startswith(("Bias", "ClassToken")))  # the one it resembles
    why = dict(part.removeprefix("not ").split(": ", 1) for part in check.not_judged.split("; not "))[close]
    assert "its values differ from the layer's" in why, check.not_judged


def test_a_vit_stem_of_user_modules_is_judged_in_the_cli(cli, tmp_path: Path) -> None:
    path = tmp_path / "vitnets.py"
    path.write_text(
        Path(__file__).read_text()
        + "\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 2, 2)\n        self.cls = ClsToken(4)\n        self.pos = PosEmbed(17, 4)\n"
        "        self.head = nn.Linear(4, 3)\n\n"
        "    def forward(self, x):\n        x = self.conv(x).flatten(2).transpose(1, 2)\n"
        "        return self.head(self.pos(self.cls(x))[:, 0])\n"
    )
    code, out, err = cli("verify", f"{path}:Net", "--input", "3x8x8")
    assert code == 0, err
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("✓ all ") and "not judged" not in verdict, verdict
    assert "vitnets.ClsToken as ClassToken 1 token of 4 (1)" in verdict and "vitnets.PosEmbed as Bias 1×17×4 (1)" in verdict, verdict
