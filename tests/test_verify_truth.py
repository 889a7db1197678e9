"""verify tells the truth on real models (issue 13): the MACs total is FlopCounterMode's over the
whole forward pass, work outside leaves is a row of its own, nothing is a vacuous ✓, and the
user's code cannot break the report (sys.exit, prints, keyword calls, Lazy and TorchScript modules)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcalc.verify import VerifyError, load_python_model, verify_python  # noqa: E402

MODELS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        """timm's attention: F.linear on a child's weight, two matmuls, a projection."""

        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.heads = heads

        def forward(self, x):
            b, n, d = x.shape
            qkv = F.linear(x, self.qkv.weight, self.qkv.bias).reshape(b, n, 3, self.heads, d // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            attention = (q @ k.transpose(-2, -1)).softmax(-1)
            return self.proj((attention @ v).transpose(1, 2).reshape(b, n, d))


    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(16)
            self.attn = Attention()

        def forward(self, x):
            return x + self.attn(self.norm(x))


    class Transformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(Block(), Block())
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.blocks(x).mean(1))


    class ConvCat(nn.Module):
        """F.conv2d with its own weight, and torch.cat, in the model's own forward."""

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.cat([F.conv2d(x, self.weight), self.conv(x)], 1)


    class Mha(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            return self.fc(self.attn(x, x, x, need_weights=False)[0])


    class Sdpa(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(32, 96)

        def forward(self, x):
            q, k, v = self.qkv(x).reshape(x.shape[0], x.shape[1], 3, 4, 8).permute(2, 0, 3, 1, 4)
            return F.scaled_dot_product_attention(q, k, v)


    def encoder():
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, dim_feedforward=24, batch_first=True), 2,
                                     enable_nested_tensor=False)


    class Keywords(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(input=self.conv(input=x).mean((2, 3)))


    class Talkative(nn.Module):
        def __init__(self):
            super().__init__()
            print("building Talkative")
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            print("forward of Talkative")
            return self.conv(x)


    class Gain(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(3))

        def forward(self, x):  # x * gain alone is a Scale, which verify judges: tanh first makes it no layer it knows
            return torch.tanh(x) * self.gain[:, None, None]


    class OnlyUnknown(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = Gain()

        def forward(self, x):
            return self.gain(x)


    class Renamed(nn.Linear):
        """Same computation as nn.Linear (timm's Linear)."""


    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2


    class Subclasses(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Renamed(8, 8)
            self.b = Doubled(8, 4)

        def forward(self, x):
            return self.b(self.a(x))


    class Embed(nn.Module):
        def forward(self, x, token):
            return torch.cat([token, x], 1)


    class ParameterInput(nn.Module):
        """PiT passes a parameter into a submodule (FlopCounterMode's tracker trips on it under no_grad)."""

        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(torch.zeros(1, 1, 8))
            self.embed = Embed()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.embed(x, self.token.expand(x.shape[0], -1, -1)))  # a view of a parameter


    class Lazy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.LazyConv2d(4, 3)
            self.norm = nn.LazyBatchNorm2d()
            self.flat = nn.Flatten()
            self.fc = nn.LazyLinear(5)

        def forward(self, x):
            return self.fc(self.flat(self.norm(self.conv(x))))


    class SegNet(nn.Module):
        """Max pooling with indices and MaxUnpool after it (SegNet's decoder)."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)
            self.squeeze = nn.AdaptiveMaxPool2d(2, return_indices=True)

        def forward(self, x):
            values, indices = self.pool(self.conv(x))
            return self.squeeze(self.unpool(values, indices))[0]


    def scripted():
        return torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
''')


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("truth") / "truth_models.py"
    path.write_text(MODELS)
    return path


def counted(model: nn.Module, x: torch.Tensor) -> int:
    """The oracle: FlopCounterMode over the whole forward pass, ÷ 2."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops() // 2


def on_meta(model: nn.Module, shape: tuple[int, ...]) -> int:
    """FlopCounterMode on meta, where the fused CPU kernels run as the matmuls it counts."""
    return counted(model.to("meta"), torch.empty(shape, device="meta"))


@pytest.mark.parametrize("name, shape", [("Transformer", (5, 16)), ("ConvCat", (3, 9, 9)), ("Keywords", (3, 6, 6))])
def test_the_total_is_flop_counter_mode_over_the_whole_forward(models: Path, name: str, shape: tuple[int, ...]) -> None:
    model = load_python_model(f"{models}:{name}")
    report = verify_python(model, shape, batch=2)
    assert report.ok, report.mismatches
    assert report.totals.macs == counted(model, torch.zeros((2, *shape))) > 0
    assert sum(c.macs for c in report.checks) == report.totals.macs  # the rows add up to the total
    assert sum(c.params for c in report.checks if not c.own) + sum(c.params for c in report.checks if c.own) == report.totals.params


def test_own_forward_work_is_its_own_row(models: Path) -> None:
    model = load_python_model(f"{models}:Transformer")
    report = verify_python(model, (5, 16))
    own = {c.name: c for c in report.checks if c.own}
    assert set(own) == {"blocks.0.attn (own forward)", "blocks.1.attn (own forward)"}
    n, d, heads = 5, 16, 2
    per_block = n * d * 3 * d + 2 * heads * n * n * (d // heads)  # F.linear on qkv's weight, q@kᵀ, a@v
    assert all(c.macs == per_block and c.params == 3 * d * d + 3 * d and c.confirmed is None for c in own.values())
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert sum(c.params for c in report.checks) == report.totals.params


def test_conv_and_cat_in_the_models_forward(models: Path) -> None:
    report = verify_python(load_python_model(f"{models}:ConvCat"), (3, 9, 9))
    own = [c for c in report.checks if c.own]
    assert [c.name for c in own] == ["ConvCat (own forward)"]
    assert own[0].macs == 4 * 7 * 7 * 3 * 9 and own[0].params == 4 * 3 * 9


@pytest.mark.parametrize("target, shape", [("Mha", (6, 16)), ("Sdpa", (40, 32)), ("encoder", (6, 16))])
def test_fused_cpu_attention_counts_as_on_meta(models: Path, target: str, shape: tuple[int, ...]) -> None:
    """On CPU, FlopCounterMode does not see the fused attention kernels; verify counts them."""
    cpu = verify_python(load_python_model(f"{models}:{target}"), shape)
    meta = verify_python(load_python_model(f"{models}:{target}"), shape, device="meta")
    oracle = on_meta(load_python_model(f"{models}:{target}"), (1, *shape))
    assert cpu.totals.macs == meta.totals.macs == oracle > 0
    assert cpu.ok and meta.ok


def test_the_fused_kernels_really_run_on_cpu(models: Path) -> None:
    """Guard of the test above: plain FlopCounterMode on CPU misses the work (else it proves nothing)."""
    model = load_python_model(f"{models}:Mha")
    assert counted(model, torch.zeros(1, 6, 16)) < on_meta(load_python_model(f"{models}:Mha"), (1, 6, 16))


def test_keyword_calls_are_judged(models: Path) -> None:
    report = verify_python(load_python_model(f"{models}:Keywords"), (3, 6, 6))
    assert [(c.name, c.confirmed) for c in report.checks if not c.own] == [("conv", True), ("fc", True)]


def test_a_leaf_root_is_judged(cli) -> None:
    code, out, err = cli("verify", "torch.nn:Conv2d", "--kwargs", '{"in_channels": 3, "out_channels": 4, "kernel_size": 3}',
                         "--input", "3x8x8", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"], err
    assert [(layer["name"], layer["confirmed"], layer["macs"]) for layer in data["layers"]] == [("Conv2d", True, 4 * 36 * 27)]
    code, out, _ = cli("verify", "torch.nn:Conv2d", "--kwargs", '{"in_channels": 3, "out_channels": 4, "kernel_size": 3}', "--input", "3x8x8")
    assert "✓ the layer agrees" in out


def test_nothing_compared_is_no_check_mark(models: Path, cli) -> None:
    code, out, err = cli("verify", f"{models}:OnlyUnknown", "--input", "3x4x4")
    assert code == 0, err
    verdict = out.strip().splitlines()[-1]
    assert "✓" not in verdict and "agree" not in out and verdict.startswith("· nothing compared")
    assert "nothing compared" in out and "truth_models.Gain at gain" in out and "3 params" in out


def test_subclasses_judged_as_their_torch_layer_unless_forward_changes(models: Path) -> None:
    report = verify_python(load_python_model(f"{models}:Subclasses"), (8,))
    by_name = {c.name: c for c in report.checks}
    assert by_name["a"].confirmed is True and by_name["a"].type == "Renamed"
    assert by_name["b"].confirmed is None and by_name["b"].class_path.endswith("truth_models.Doubled")


def test_a_parameter_passed_to_a_submodule(models: Path) -> None:
    """timm's PiT: FlopCounterMode's module tracker raises under no_grad; verify must not blame the model."""
    model = load_python_model(f"{models}:ParameterInput")
    with pytest.raises(AssertionError, match="gradient function"):  # the torch quirk, as of torch 2.13
        counted(model, torch.zeros(1, 3, 8))
    report = verify_python(model, (3, 8))
    assert report.ok and report.totals.macs == 4 * 8 * 2


def test_lazy_modules_are_materialised_then_judged(models: Path) -> None:
    model = load_python_model(f"{models}:Lazy")
    report = verify_python(model, (3, 8, 8), batch=2)
    assert report.ok and [c.confirmed for c in report.checks] == [True, True, True, True]
    assert [c.type for c in report.checks] == ["Conv2d", "BatchNorm2d", "Flatten", "Linear"]
    assert report.totals.params == sum(p.numel() for p in model.parameters()) == 4 * 27 + 4 + 8 + 4 * 36 * 5 + 5


def test_return_indices_and_unpool_are_judged(models: Path) -> None:
    report = verify_python(load_python_model(f"{models}:SegNet"), (3, 8, 6), batch=2)
    assert report.ok, report.mismatches
    by_name = {c.name: c for c in report.checks}
    assert by_name["pool"].output_shape == ((2, 4, 4, 3), (2, 4, 4, 3)) and by_name["pool"].confirmed
    assert by_name["unpool"].output_shape == (2, 4, 8, 6) and by_name["unpool"].confirmed
    assert by_name["squeeze"].output_shape == ((2, 4, 2, 2), (2, 4, 2, 2)) and by_name["squeeze"].confirmed


def test_a_spec_pool_with_indices_is_verified(tmp_path: Path, cli) -> None:
    spec = tmp_path / "indices.yaml"
    spec.write_text("name: indices\ninput: [2, 8, 8]\nlayers:\n  - MaxPool2d: {kernel_size: 2, return_indices: true}\n  - Conv2d: {out_channels: 3, kernel_size: 3}\n")
    code, out, err = cli("verify", str(spec))
    assert code == 0, out + err
    assert "✓ all 2 layers agree" in out


def test_torchscript_is_refused_with_the_reason(models: Path, cli) -> None:
    code, out, err = cli("verify", f"{models}:scripted", "--input", "3x8x8")
    assert code == 1 and out == ""
    assert "TorchScript" in err and "hooks" in err and "register_forward_pre_hook" not in err
    assert len(err.strip().splitlines()) == 1


def test_prints_of_the_model_go_to_stderr(models: Path, cli) -> None:
    code, out, err = cli("verify", f"{models}:Talkative", "--input", "3x8x8", "--json")
    assert code == 0 and json.loads(out)["ok"]
    assert "forward of Talkative" in err and "building Talkative" in err and "Talkative" not in out.split('"name"')[0]


STAGES = {
    "import": "{raise_}\nimport torch\n",
    "construct": "import torch\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        {raise_}\n",
    "forward": "import torch\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        {raise_}\n",
}
RAISES = {
    "sys.exit()": ("import sys; sys.exit()", "SystemExit"),
    "sys.exit(3)": ("import sys; sys.exit(3)", "SystemExit: 3"),
    "KeyboardInterrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "BaseException": ("raise BaseException('odd')", "BaseException: odd"),
}


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("how", list(RAISES))
def test_base_exceptions_of_the_users_code_are_one_line(tmp_path: Path, cli, stage: str, how: str) -> None:
    statement, words = RAISES[how]
    source = STAGES[stage].format(raise_=statement)
    if stage == "import":
        source += "\nclass Net(torch.nn.Module):\n    pass\n"
    path = tmp_path / "exits.py"
    path.write_text(source)
    line = next(i for i, text in enumerate(source.splitlines(), 1) if statement in text)
    code, out, err = cli("verify", f"{path}:Net", "--input", "3x4x4")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert words in err and f"exits.py:{line})" in err


def test_a_file_that_imports_its_own_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    package = tmp_path / "ownpkg_truth" / "fixtures"
    package.mkdir(parents=True)
    (tmp_path / "ownpkg_truth" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "parts.py").write_text("import torch.nn as nn\n\ndef stem():\n    return nn.Conv2d(3, 4, 3)\n")
    (package / "genotype.py").write_text(
        "import torch.nn as nn\nfrom ownpkg_truth.fixtures.parts import stem\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.stem = stem()\n\n"
        "    def forward(self, x):\n        return self.stem(x)\n"
    )
    monkeypatch.chdir(tmp_path.parent)  # neither the package's folder nor its parent
    code, out, err = cli("verify", f"{package / 'genotype.py'}:Net", "--input", "3x8x8")
    assert code == 0, err
    assert "✓ the layer agrees" in out


@pytest.mark.parametrize(
    "args, option",
    [
        (["pool", "--in", "8", "--k", "2", "--out-channels", "5"], "--out-channels"),
        (["conv", "--in", "8", "--k", "3", "--kind", "avg"], "--kind"),
        (["conv", "--in", "8", "--k", "3", "--op", "1"], "--output-padding"),
        (["tconv", "--in", "8", "--k", "3", "--ceil"], "--ceil-mode"),
        (["pool", "--in", "8", "--k", "2", "--no-bias"], "--no-bias"),
    ],
)
def test_options_that_do_not_apply_are_usage_errors(cli, args: list[str], option: str) -> None:
    code, out, err = cli("verify", *args)
    assert code == 2 and out == ""
    assert option in err and "does not apply" in err


def test_verify_python_refuses_script_modules() -> None:
    with pytest.raises(VerifyError, match="TorchScript"):
        verify_python(torch.jit.script(nn.Sequential(nn.Linear(2, 2))), (2,))


def test_a_weight_norm_layer_is_shown_not_judged_wrong() -> None:
    """nn.utils.weight_norm replaces ``weight`` by ``weight_g`` and ``weight_v`` (one more number per
    output): its parameters are not Linear's, so the row is shown, not a false disagreement."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates nn.utils.weight_norm
        model = nn.Sequential(nn.utils.weight_norm(nn.Linear(8, 6)), nn.ReLU())
    report = verify_python(model, (8,), batch=2)
    assert report.ok
    assert report.totals.params == sum(p.numel() for p in model.parameters()) == 60
    assert report.totals.macs == counted(model, torch.zeros(2, 8)) == 96
    linear = next(c for c in report.checks if c.name == "0")
    assert not linear.known and not linear.mismatches
    spectral = nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)))  # weight_orig: Conv2d's count, judged
    report = verify_python(spectral, (3, 8, 8))
    assert report.ok and all(c.known for c in report.checks)
    assert report.totals.params == sum(p.numel() for p in spectral.parameters())


def test_a_quantized_model_is_refused_plainly(tmp_path: Path, cli) -> None:
    """Dynamic quantization packs the weights (no parameters) and FlopCounterMode counts no
    quantized kernel: both totals would read 0 under a ✓."""
    path = tmp_path / "quantized.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\n"
        "def make():\n    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU())\n"
        "    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)\n"
    )
    code, out, err = cli("verify", f"{path}:make", "--input", "8")
    assert code == 1 and out == ""
    assert "quantized" in err and "'0'" in err and "float model" in err
    assert len(err.strip().splitlines()) == 1
