"""``verify --emit-spec`` on Vision-Transformer-like models (no torchvision or timm needed): the class token
(``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)``, torchvision's; timm's ``cls_token`` and
``reg_token`` in one cat; DeiT's class and distillation tokens) becomes one ClassToken row, the learned
position embedding (``x + self.pos_embedding``, ``torch.add(p, x)``, ``x.add(p)``) a Bias row, each named
after its parameter and holding its values in the proof; what a spec cannot express is refused naming the
fx node and the reason.

As in ``test_verify_emit_channels_last.py``, every emission is checked independently of the emitter:
loaded as ``convcalc model`` loads it, the spec has verify's params, MACs and output shape on the real
model, and built as torch modules with the model's tensors (given here in the order the forward uses
them) it gives the model's output.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from convcalc import load_model

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyViT(nn.Module):
        """torchvision's VisionTransformer without its encoder blocks: _process_input, the class token, the
        position embedding, dropout, the final LayerNorm and the head on the class token."""

        def __init__(self, dim=16, patch=4, size=16, classes=5):
            super().__init__()
            self.patch, self.dim = patch, dim
            self.conv_proj = nn.Conv2d(3, dim, patch, patch)
            length = (size // patch) ** 2 + 1
            self.class_token = nn.Parameter(torch.randn(1, 1, dim))
            self.pos_embedding = nn.Parameter(torch.randn(1, length, dim) * 0.02)
            self.dropout = nn.Dropout(0.1)
            self.ln = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            n, c, h, w = x.shape
            x = self.conv_proj(x)
            x = x.reshape(n, self.dim, (h // self.patch) * (w // self.patch))
            x = x.permute(0, 2, 1)
            n = x.shape[0]
            batch_class_token = self.class_token.expand(n, -1, -1)
            x = torch.cat([batch_class_token, x], dim=1)
            torch._assert(x.dim() == 3, "Expected (batch_size, seq_length, hidden_dim)")
            x = self.ln(self.dropout(x + self.pos_embedding))
            return self.head(x[:, 0])

        def used(self):
            return [self.conv_proj.state_dict(), {"weight": self.class_token.detach()}, {"weight": self.pos_embedding.detach()},
                    self.ln.state_dict(), self.head.state_dict()]


    class PatchEmbed(nn.Module):
        """timm's PatchEmbed: conv, flatten(2), transpose(1, 2)."""

        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Conv2d(3, dim, 4, 4)

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)


    class TimmLike(nn.Module):
        """timm's VisionTransformer._pos_embed with a class token and 2 register tokens (one cat, 3 tokens),
        the embedding added after the cat; the head on the class token."""

        def __init__(self, dim=8):
            super().__init__()
            self.patch_embed = PatchEmbed(dim)
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
            self.reg_token = nn.Parameter(torch.randn(1, 2, dim))
            self.pos_embed = nn.Parameter(torch.randn(1, 16 + 3, dim) * 0.02)
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, 3)

        def forward(self, x):
            x = self.patch_embed(x)
            to_cat = [self.cls_token.expand(x.shape[0], -1, -1), self.reg_token.expand(x.shape[0], -1, -1)]
            x = torch.cat(to_cat + [x], dim=1)
            x = x + self.pos_embed
            return self.head(self.norm(x)[:, 0])

        def used(self):
            tokens = torch.cat([self.cls_token.detach(), self.reg_token.detach()], dim=1)
            return [self.patch_embed.proj.state_dict(), {"weight": tokens}, {"weight": self.pos_embed.detach()},
                    self.norm.state_dict(), self.head.state_dict()]


    class DeiTLike(nn.Module):
        """DeiT-3's order (timm's no_embed_class): the embedding added first, as torch.add(p, x) and x.add(q); then
        the class and distillation tokens by a tuple cat; two heads on the two tokens, summed."""

        def __init__(self, dim=8):
            super().__init__()
            self.patch_embed = PatchEmbed(dim)
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
            self.dist_token = nn.Parameter(torch.randn(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.randn(1, 16, dim))
            self.extra = nn.Parameter(torch.randn(16, 1))
            self.head = nn.Linear(dim, 3)
            self.head_dist = nn.Linear(dim, 3)

        def forward(self, x):
            x = torch.add(self.pos_embed, self.patch_embed(x))
            x = x.add(self.extra)
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), self.dist_token.expand(x.shape[0], -1, -1), x), 1)
            return self.head(x[:, 0]) + self.head_dist(x[:, 1])

        def used(self):
            tokens = torch.cat([self.cls_token.detach(), self.dist_token.detach()], dim=1)
            return [self.patch_embed.proj.state_dict(), {"weight": self.pos_embed.detach()}, {"weight": self.extra.detach()},
                    {"weight": tokens}, self.head.state_dict(), self.head_dist.state_dict()]


    class PosTwice(nn.Module):
        """One embedding added twice (+=, then again): the second Bias is a tie, its parameters counted once."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 4, 1)
            self.pos = nn.Parameter(torch.randn(4, 6))

        def forward(self, x):
            x = self.conv(x)
            x += self.pos
            return torch.relu(x) + self.pos

        def used(self):
            return [self.conv.state_dict(), {"weight": self.pos.detach()}]


    class Base(nn.Module):
        def __init__(self, token_shape=(1, 1, 4), pos_buffer=False):
            super().__init__()
            self.conv = nn.Conv1d(3, 4, 1)
            self.cls = nn.Parameter(torch.randn(*token_shape))
            if pos_buffer:
                self.register_buffer("pos", torch.zeros(1, 6, 4))
            else:
                self.pos = nn.Parameter(torch.randn(1, 7, 4))

        def tokens(self, x):
            return self.conv(x).permute(0, 2, 1)  # N, 6, 4


    class TokenLast(Base):
        def forward(self, x):
            x = self.tokens(x)
            return torch.cat([x, self.cls.expand(x.shape[0], -1, -1)], dim=1) + self.pos


    class TokenOnChannels(Base):
        def __init__(self):
            super().__init__(token_shape=(1, 6, 1))

        def forward(self, x):
            x = self.tokens(x)
            return torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=2)


    class TokenTwice(Base):
        def forward(self, x):
            x = self.tokens(x)
            token = self.cls.expand(x.shape[0], -1, -1)
            return torch.cat([token, token, x], dim=1)


    class TokenBeforeTwo(Base):
        def forward(self, x):
            x = self.tokens(x)
            return torch.cat([self.cls.expand(x.shape[0], -1, -1), x, x], dim=1)


    class TokenAdded(Base):
        def __init__(self):
            super().__init__(token_shape=(1, 6, 4))

        def forward(self, x):
            x = self.tokens(x)
            return x + self.cls.expand(x.shape[0], -1, -1)


    class TokenRepeated(Base):
        def __init__(self):
            super().__init__(token_shape=(1, 1, 4))

        def forward(self, x):
            x = self.tokens(x)
            return torch.cat([self.cls.expand(x.shape[0], 6, -1), x], dim=1)


    class BufferPos(Base):
        def __init__(self):
            super().__init__(pos_buffer=True)

        def forward(self, x):
            return self.tokens(x) + self.pos


    class AlphaPos(Base):
        def forward(self, x):
            x = self.tokens(x)
            return torch.add(torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1), self.pos, alpha=0.5)


    class TwoParams(Base):
        def forward(self, x):
            return self.tokens(x) + (self.cls + self.cls)


    class ScaledAndAdded(Base):
        """One parameter as a Scale and again as a Bias: a tie needs one layer of one type."""

        def forward(self, x):
            x = self.tokens(x)
            return x * self.cls + self.cls


    class TokenAndBias(Base):
        def forward(self, x):
            x = self.tokens(x)
            return torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.cls


    class ScaledInTwoShapes(Base):
        def __init__(self):
            super().__init__(token_shape=(4,))

        def forward(self, x):
            x = self.conv(x) * self.cls.view(4, 1)
            return x.permute(0, 2, 1) * self.cls
''')


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "token_models.py"
    path.write_text(MODELS)
    return path


def model_of(models: Path, name: str) -> Any:
    from convcalc.verify import load_python_model

    return load_python_model(f"{models}:{name}")


def emit(cli: Any, models: Path, name: str, out: Path, shape: str) -> tuple[int, str, str]:
    return cli("verify", f"{models}:{name}", "--input", shape, "--emit-spec", str(out))


def spec_output(path: Path, states: list[dict[str, Any]], x: Any) -> Any:
    """The spec as torch modules, the rows with parameters (ties aside) given ``states`` in order."""
    from convcalc.verify import build_module
    from convcalc.verify.specs import materialize

    summary = load_model(str(path)).summary(batch=x.shape[0])
    net = build_module(summary, torch)
    materialize(torch, net, torch.device("cpu"), torch.float32)
    rows = [m for row, m in zip(summary.rows, net.layers) if row.tie is None and [*m.parameters(), *m.buffers()]]
    assert len(rows) == len(states)
    for mine, state in zip(rows, states):
        mine.load_state_dict(state)
    with torch.no_grad():
        return net.eval()(x)


def round_trip(cli: Any, models: Path, tmp_path: Path, name: str, shape: str) -> tuple[dict[str, Any], Any]:
    """Emit; the spec loads with verify's totals and output shape and, with the model's tensors, gives its output
    (at batch 1, which was traced, and at batch 3: the class token follows the batch)."""
    out = tmp_path / f"{name}.yaml"
    code, _, err = emit(cli, models, name, out, shape)
    assert code == 0, err
    assert "wrote" in err and "same output as the model" in err
    code, report_json, err = cli("verify", f"{models}:{name}", "--input", shape, "--json")
    assert code == 0, err
    report = json.loads(report_json)
    summary = load_model(str(out)).summary()
    model = model_of(models, name).eval()
    assert summary.totals.params == report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert summary.totals.macs == report["totals"]["macs"]
    for batch in (1, 3):
        x = torch.randn((batch, *map(int, shape.split("x"))), generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(x)
        assert tuple(load_model(str(out)).summary(batch=batch).output_shape) == tuple(expected.shape)
        got = spec_output(out, model.used(), x)
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    return yaml.safe_load(out.read_text()), summary


def kinds(entries: list[Any]) -> list[str]:
    return [next(k for k in e if k not in ("name", "from", "repeat", "tie", "trainable")) if isinstance(e, dict) else e for e in entries]


def test_torchvision_s_class_token_and_position_embedding_round_trip(models: Path, tmp_path: Path, cli) -> None:
    spec, summary = round_trip(cli, models, tmp_path, "TinyViT", "3x16x16")
    layers = spec["layers"]
    assert kinds(layers) == ["Conv2d", "Flatten", "Permute", "ClassToken", "Bias", "Dropout", "LayerNorm", "Narrow", "Flatten", "Linear"]
    token = next(e for e in layers if "ClassToken" in e)
    assert token == {"ClassToken": {"tokens": 1}, "name": "class_token"}
    assert next(e for e in layers if "Bias" in e) == {"Bias": {"shape": [1, 17, 16]}, "name": "pos_embedding"}
    rows = {r.type: r for r in summary.rows}
    assert tuple(rows["ClassToken"].output_shape) == (1, 17, 16) and rows["ClassToken"].params == 16 and rows["ClassToken"].macs == 0
    assert rows["Bias"].params == 17 * 16 and rows["Bias"].macs == 0


def test_timm_s_class_and_register_tokens_are_one_class_token(models: Path, tmp_path: Path, cli) -> None:
    spec, summary = round_trip(cli, models, tmp_path, "TimmLike", "3x16x16")
    assert kinds(spec["layers"])[:5] == ["Conv2d", "Flatten", "Permute", "ClassToken", "Bias"]
    assert spec["layers"][3] == {"ClassToken": {"tokens": 3}, "name": "cls_token"}
    assert summary.rows[3].params == 3 * 8


def test_deit_s_distillation_token_and_an_embedding_added_first(models: Path, tmp_path: Path, cli) -> None:
    """torch.add(p, x) (the parameter first) and x.add(q) (a 16×1 one, broadcast over the features) are Bias rows."""
    spec, summary = round_trip(cli, models, tmp_path, "DeiTLike", "3x16x16")
    layers = spec["layers"]
    assert kinds(layers)[:6] == ["Conv2d", "Flatten", "Permute", "Bias", "Bias", "ClassToken"]
    assert [layers[3]["Bias"], layers[4]["Bias"]] == [{"shape": [1, 16, 8]}, {"shape": [16, 1]}]
    assert layers[5]["ClassToken"] == {"tokens": 2} and tuple(summary.rows[5].output_shape) == (1, 18, 8)


def test_an_embedding_added_twice_is_a_tie(models: Path, tmp_path: Path, cli) -> None:
    spec, summary = round_trip(cli, models, tmp_path, "PosTwice", "3x6")
    assert kinds(spec["layers"]) == ["Conv1d", "Bias", "ReLU", "Bias"]
    assert spec["layers"][3]["tie"] == spec["layers"][1]["name"] == "pos"
    assert [r.params for r in summary.rows] == [16, 24, 0, 0]


@pytest.mark.parametrize(
    "name, words",
    [
        ("TokenLast", ["fx node 'cat'", "concatenates the expanded parameter 'cls' after the tokens"]),
        ("TokenOnChannels", ["fx node 'cat'", "along dimension 2", "first along dimension 1"]),
        ("TokenTwice", ["fx node 'cat'", "puts the parameter 'cls' in more than once"]),
        ("TokenBeforeTwo", ["fx node 'cat'", "with 2 tensors", "before one tensor"]),
        ("TokenRepeated", ["fx node 'expand'", "expands the parameter 'cls' of 1×1×4 to 1×6×4"]),
        ("BufferPos", ["fx node 'add'", "adds the tensor 'pos', which is no parameter"]),
        ("AlphaPos", ["fx node 'add'", "alpha=0.5"]),
        ("TwoParams", ["fx node 'add'", "adds two parameters"]),
        ("ScaledAndAdded", ["fx node 'add'", "uses the parameters of 'cls' (a Scale {shape: [1, 1, 4]}) again as a Bias"]),
        ("TokenAndBias", ["fx node 'add'", "of 'cls' (a ClassToken {tokens: 1}) again as a Bias {shape: [1, 1, 4]}"]),
        ("ScaledInTwoShapes", ["fx node 'mul_1'", "(a Scale {shape: [4, 1]}) again as a Scale {shape: [4]}", "same type and arguments"]),
    ],
)
def test_what_a_spec_cannot_express_is_refused_naming_the_node(models: Path, tmp_path: Path, cli, name: str, words: list[str]) -> None:
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, name, out, "3x6")
    assert code == 1 and not out.exists()
    line = err.strip().splitlines()[-1]
    assert all(w in line for w in words) and "nothing written" in line, line


def test_the_proof_catches_a_class_token_without_the_model_s_weight(models: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcalc.verify import fx_emission

    original = fx_emission._Mapper.class_token

    def forgetful(self: Any, node: Any, tensors: Any, dim: Any) -> None:
        original(self, node, tensors, dim)
        self.entries[-1].state = {"weight": self.torch.zeros_like(self.entries[-1].state["weight"])}

    monkeypatch.setattr(fx_emission._Mapper, "class_token", forgetful)
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, "TinyViT", out, "3x16x16")
    assert code == 1 and not out.exists()
    assert "fx node 'cat'" in err and "another value as the spec's ClassToken" in err.strip().splitlines()[-1], err


def test_the_proof_catches_register_tokens_put_in_the_wrong_order(models: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The weight is the parameters in the cat's order: the class token first, then the register tokens."""
    from convcalc.verify import fx_emission

    original = fx_emission._Mapper.class_token

    def reversed_tokens(self: Any, node: Any, tensors: Any, dim: Any) -> None:
        original(self, node, tensors, dim)
        self.entries[-1].state = {"weight": self.entries[-1].state["weight"].flip(1)}

    monkeypatch.setattr(fx_emission._Mapper, "class_token", reversed_tokens)
    out = tmp_path / "x.yaml"
    code, _, err = emit(cli, models, "TimmLike", out, "3x16x16")
    assert code == 1 and not out.exists()
    assert "another value as the spec's ClassToken" in err.strip().splitlines()[-1], err


# -- the real classes, where torchvision and timm are installed (benchmarks' venv): their code, no encoder blocks ---------


def _vit(kind: str) -> Any:
    import importlib.util
    import sys

    if kind == "torchvision":
        if importlib.util.find_spec("torchvision") is None:
            pytest.skip("torchvision is not installed")
        sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
        try:
            from torchvision_cpu import import_torchvision
        finally:
            sys.path.pop(0)
        vision_transformer = import_torchvision().models.vision_transformer
        return vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=0, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10)
    timm = pytest.importorskip("timm")
    if kind == "timm":
        return timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=0, num_heads=2, num_classes=10)
    return timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=0, num_heads=2, num_classes=10,
                                                            reg_tokens=2, no_embed_class=True)


@pytest.mark.parametrize(
    "kind, rows",
    [
        ("torchvision", ["ClassToken {'tokens': 1}", "Bias {'shape': [1, 17, 16]}"]),
        ("timm", ["ClassToken {'tokens': 1}", "Bias {'shape': [1, 17, 16]}"]),
        ("timm reg_tokens=2 no_embed_class", ["Bias {'shape': [1, 16, 16]}", "ClassToken {'tokens': 3}"]),
    ],
)
def test_the_real_vision_transformers_without_blocks_round_trip(tmp_path: Path, kind: str, rows: list[str]) -> None:
    """torchvision's VisionTransformer and timm's (num_layers / depth 0: the attention is helper mha's family):
    the stem, class token, position embedding, final norm and head are written and proven; the spec has the
    model's parameters and its output at another batch too."""
    from convcalc.verify import verify_python
    from convcalc.verify.emission import emit_spec
    from convcalc.verify.specs import build_module, materialize

    torch.manual_seed(0)
    model = _vit(kind).eval()
    report = verify_python(model, (3, 32, 32))
    out = tmp_path / "vit.yaml"
    emit_spec(report, str(out))
    spec = yaml.safe_load(out.read_text())
    written = [f"{kinds([e])[0]} {e[kinds([e])[0]]}" for e in spec["layers"] if kinds([e])[0] in ("ClassToken", "Bias")]
    assert written == rows
    summary = load_model(str(out)).summary(batch=2)
    assert summary.totals.params == sum(p.numel() for p in model.parameters()) == report.totals.params
    net = build_module(summary, torch)
    materialize(torch, net, torch.device("cpu"), torch.float32)
    own = {"ClassToken": torch.cat([p.detach() for n, p in model.named_parameters() if n in ("class_token", "cls_token", "reg_token")], 1),
           "Bias": next(p.detach() for n, p in model.named_parameters() if n.endswith(("pos_embedding", "pos_embed")))}
    leaves = [m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))]
    for row, mine in zip(summary.rows, net.layers):
        if row.type in own:
            mine.load_state_dict({"weight": own[row.type]})
        elif list(mine.parameters()):
            mine.load_state_dict(leaves.pop(0).state_dict())
    assert not leaves
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), model(x), rtol=1e-4, atol=1e-5)


# -- any number of tokens, anywhere in the cat: written exactly where a spec's ClassToken is what torch computes ------------


def _tokens_model(sizes: list[int], place: str, dim: int, pos: bool) -> Any:
    nn = torch.nn
    length, channels = 5, 4

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(3, channels, 1)
            for i, size in enumerate(sizes):  # along the tokens (dim 1), or along the features (dim 2)
                shape = (1, size, channels) if dim % 3 == 1 else (1, length, size)
                setattr(self, f"tok{i}", nn.Parameter(torch.randn(shape)))
            total = (length + sum(sizes), channels) if dim % 3 == 1 else (length, channels + sum(sizes))
            self.pos = nn.Parameter(torch.randn(1, *total)) if pos else None

        def forward(self, x: Any) -> Any:
            x = self.conv(x).permute(0, 2, 1)
            parts = [getattr(self, f"tok{i}").expand(x.shape[0], -1, -1) for i in range(len(sizes))]
            if parts:
                order = {"first": [*parts, x], "last": [x, *parts], "middle": [*parts[:1], x, *parts[1:]]}[place]
                x = torch.cat(order, dim=dim)
            return x + self.pos if pos else x

    return Tokens()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 3), max_size=3), st.sampled_from(["first", "last", "middle"]), st.sampled_from([1, -2, 2]), st.booleans())
def test_tokens_are_written_exactly_where_a_class_token_computes_the_cat(tmp_path: Path, sizes: list[int], place: str, dim: int, pos: bool) -> None:
    from convcalc.verify import VerifyError, verify_python
    from convcalc.verify.emission import emit_spec

    model = _tokens_model(sizes, place, dim, pos).eval()
    expected = model(torch.randn(2, 3, 5))  # torch runs it: a valid program, at another batch too
    report = verify_python(model, (3, 5))
    out = tmp_path / f"t{len(sizes)}{place}{dim}{pos}.yaml"
    out.unlink(missing_ok=True)
    prepends = not sizes or (dim % 3 == 1 and (place == "first" or (place == "middle" and len(sizes) == 1)))
    if not prepends:
        with pytest.raises(VerifyError) as refused:
            emit_spec(report, str(out))
        assert "fx node 'cat'" in refused.value.message and not out.exists(), refused.value.message
        return
    emit_spec(report, str(out))  # proven: the same output on a random input
    summary = load_model(str(out)).summary(batch=2)
    assert tuple(summary.output_shape) == tuple(expected.shape)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())
    tokens = [r for r in summary.rows if r.type == "ClassToken"]
    assert [r.layer.tokens for r in tokens] == ([sum(sizes)] if sizes else [])
    assert [r.type for r in summary.rows].count("Bias") == int(pos)
