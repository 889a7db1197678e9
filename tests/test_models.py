"""The example models in examples/models/ agree with the torch modules they reproduce.

Each spec has a torch twin built by hand below (torchvision is not a dependency: the builders
mirror ``torchvision/models/alexnet.py`` and ``vgg.py``, the DCGAN tutorial and the course's
MNIST CNN line by line). A builder returns the model's leaf modules in execution order, with
``nn.Flatten()`` standing where the reference calls ``torch.flatten(x, 1)`` in ``forward``;
``nn.Sequential(*layers)`` then lines up module i with summary row i. For every spec:

- total parameters equal ``sum(p.numel())`` of the torch model and the published number;
- every row's input and output shape equal what forward hooks record (batch 2);
- every row's parameters equal its module's, and its MACs equal FlopCounterMode's flops // 2
  for that module run on its recorded input;
- the four memory lines equal torchsummary's on the same layers as modules (Flatten included:
  torchsummary hooks ``nn.Flatten`` and counts its output, so the course's own CNN class prints
  0.28 / 0.50 MB today; the 0.27 / 0.49 of the course's table was made without a Flatten row).

The large models run on the ``meta`` device (no weights, no arithmetic), so the file stays fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import convcalc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"

# -- torch twins, built by hand ---------------------------------------------------------------


def mnist_cnn() -> list[nn.Module]:
    """The course's CNN class: conv1, conv2, classifier (Flatten(1, -1) … Linear(32, 10))."""
    conv1 = [nn.Conv2d(1, 16, kernel_size=3), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2, padding=1)]
    conv2 = [nn.Conv2d(16, 32, kernel_size=3), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2, padding=1)]
    classifier = [nn.Flatten(1, -1), nn.Linear(7 * 7 * 32, 32), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(32, 10)]
    return [*conv1, *conv2, *classifier]


def lecture_cnn() -> list[nn.Module]:
    return [nn.Conv2d(1, 5, kernel_size=5), nn.MaxPool2d(kernel_size=2)]


def lenet5() -> list[nn.Module]:
    """LeNet-5, Tanh and average pooling, fully connected C3, Linear output."""
    return [
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(),
        nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    ]  # fmt: skip


def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> list[nn.Module]:
    """torchvision.models.AlexNet: features, avgpool, flatten, classifier."""
    features = [
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    ]
    avgpool = nn.AdaptiveAvgPool2d((6, 6))
    classifier = [
        nn.Dropout(p=dropout),
        nn.Linear(256 * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    ]
    return [*features, avgpool, nn.Flatten(), *classifier]


VGG_CFGS: dict[str, list[str | int]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def vgg(cfg: str, batch_norm: bool, num_classes: int = 1000, dropout: float = 0.5) -> list[nn.Module]:
    """torchvision.models.vgg: make_layers(cfgs[cfg], batch_norm), avgpool, flatten, classifier."""
    layers: list[nn.Module] = []
    in_channels = 3
    for v in VGG_CFGS[cfg]:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            assert isinstance(v, int)
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = v
    classifier = [
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(True),
        nn.Dropout(p=dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(p=dropout),
        nn.Linear(4096, num_classes),
    ]
    return [*layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), *classifier]


def dcgan_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> list[nn.Module]:
    """The Generator of PyTorch's DCGAN tutorial."""
    return [
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    ]  # fmt: skip


# spec file → (torch twin, published parameter count, final output shape without batch)
CASES: dict[str, tuple[Callable[[], list[nn.Module]], int, tuple[int, ...]]] = {
    "mnist_cnn.yaml": (mnist_cnn, 55_338, (10,)),
    "lecture_cnn.yaml": (lecture_cnn, 130, (5, 12, 12)),
    "lenet5.yaml": (lenet5, 61_706, (10,)),
    "alexnet.yaml": (alexnet, 61_100_840, (1000,)),
    "vgg16.yaml": (lambda: vgg("D", batch_norm=False), 138_357_544, (1000,)),
    "vgg11_bn.yaml": (lambda: vgg("A", batch_norm=True), 132_868_840, (1000,)),
    "dcgan_generator.yaml": (dcgan_generator, 3_576_704, (3, 64, 64)),
}
#: Specs too large to run for real in a unit test: their torch twin runs on the meta device.
ON_META = {"alexnet.yaml", "vgg16.yaml", "vgg11_bn.yaml"}


def build(spec: str, device: str) -> nn.Sequential:
    with torch.device(device):
        return nn.Sequential(*CASES[spec][0]())


def trace(model: nn.Sequential, shape: tuple[int, ...]) -> list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]]:
    """(module, input shape, output shape) of every leaf module, in the order forward calls them."""
    seen: list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]] = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        seen.append((module, tuple(args[0].shape), tuple(output.shape)))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def module_macs(module: nn.Module, shape: tuple[int, ...]) -> int:
    """FlopCounterMode's count for one module on one input, halved."""
    device = next(module.parameters(), torch.empty(0)).device
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(torch.zeros(shape, device=device))
    return counter.get_total_flops() // 2


def torchsummary_lines(layers: list[nn.Module], input_size: tuple[int, ...], batch_size: int = -1) -> dict[str, str]:
    """torchsummary.summary's printed lines (key → value) for ``nn.Sequential(*layers)``.

    Flatten is a module there, as it is a layer in the spec, and torchsummary counts its output.
    """
    from torchsummary import summary

    out = io.StringIO()
    with contextlib.redirect_stdout(out), torch.no_grad():
        summary(nn.Sequential(*layers), input_size, batch_size=batch_size, device="cpu")
    return dict(re.findall(r"^([A-Z][^:\n]*): ([\d.,]+)$", out.getvalue(), flags=re.M))


def memory_lines(totals: convcalc.graph.Totals) -> dict[str, str]:
    return {
        "Input size (MB)": f"{totals.input_mb:.2f}",
        "Forward/backward pass size (MB)": f"{totals.forward_backward_mb:.2f}",
        "Params size (MB)": f"{totals.params_mb:.2f}",
        "Estimated Total Size (MB)": f"{totals.total_mb:.2f}",
    }


def summary_of(spec: str, **options: object) -> convcalc.graph.Summary:
    return convcalc.load_model(str(MODELS / spec)).summary(**options)  # type: ignore[arg-type]


# -- every spec against its torch twin --------------------------------------------------------


def test_the_example_models_exist() -> None:
    assert set(CASES) <= {p.name for p in MODELS.glob("*.yaml")}


@pytest.mark.parametrize("spec", list(CASES))
def test_spec_reads_well(spec: str) -> None:
    text = (MODELS / spec).read_text(encoding="utf-8")
    assert text.startswith("#"), f"{spec} should open with a comment citing what it reproduces"
    assert re.search(r"^name: \S", text, flags=re.M), f"{spec} needs a name:"


@pytest.mark.parametrize("spec", list(CASES))
def test_params_match_torch_and_the_published_count(spec: str) -> None:
    summary = summary_of(spec)
    model = build(spec, "meta")
    expected = CASES[spec][1]
    assert sum(p.numel() for p in model.parameters()) == expected  # the twin is right
    assert summary.totals.params == expected
    assert summary.totals.trainable_params == expected
    assert summary.totals.non_trainable_params == 0
    assert summary.output_shape[1:] == CASES[spec][2]


@pytest.mark.parametrize("spec", list(CASES))
def test_every_layer_matches_torch(spec: str) -> None:
    """Shapes (batch 2), parameters and MACs of every row against the module it stands for."""
    summary = summary_of(spec, batch=2)
    model = build(spec, "meta" if spec in ON_META else "cpu")
    seen = trace(model, summary.input_shape)
    assert [type(m).__name__ for m, _, _ in seen] == [row.type for row in summary.rows]
    for row, (module, in_shape, out_shape) in zip(summary.rows, seen):
        where = f"{spec} row {row.index} ({row.type} {row.name}, line {row.line})"
        assert row.input_shape == in_shape, where
        assert row.output_shape == out_shape, where
        assert row.params == sum(p.numel() for p in module.parameters()), where
        assert row.macs == module_macs(module, in_shape), where
    assert summary.totals.macs == sum(row.macs for row in summary.rows)


def test_vgg16_input_override_matches_torch() -> None:
    """--input 3x64x64: five pools leave 2×2, the adaptive pool brings back 7×7, params unchanged."""
    summary = summary_of("vgg16.yaml", input_shape=(3, 64, 64))
    seen = trace(build("vgg16.yaml", "meta"), summary.input_shape)
    assert [(row.input_shape, row.output_shape) for row in summary.rows] == [(i, o) for _, i, o in seen]
    assert [r.output_shape for r in summary.rows if r.type == "MaxPool2d"][-1] == (1, 512, 2, 2)
    assert summary.totals.params == 138_357_544


def test_alexnet_and_vgg16_macs() -> None:
    """The usual published compute of the two classics (FlopCounterMode agrees row by row above)."""
    assert summary_of("alexnet.yaml").totals.macs == 714_188_480
    assert summary_of("vgg16.yaml").totals.macs == 15_470_264_320


def test_lecture_cnn_shapes() -> None:
    rows = summary_of("lecture_cnn.yaml").rows
    assert [r.output_shape for r in rows] == [(1, 5, 24, 24), (1, 5, 12, 12)]


# -- memory lines, as torchsummary prints them -------------------------------------------------


def test_mnist_cnn_memory_lines_are_torchsummarys() -> None:
    """torchsummary on the course's CNN class (nn.Flatten in its classifier): 0.00 / 0.28 / 0.21 / 0.50 MB.

    The course's printed table says 0.27 / 0.49: it has no Flatten row, so it came from a
    version of the model without the nn.Flatten module; torchsummary counts that module today.
    """
    totals = summary_of("mnist_cnn.yaml").totals
    assert memory_lines(totals) == {
        "Input size (MB)": "0.00",
        "Forward/backward pass size (MB)": "0.28",
        "Params size (MB)": "0.21",
        "Estimated Total Size (MB)": "0.50",
    }
    reference = torchsummary_lines(mnist_cnn(), (1, 28, 28))
    assert reference["Total params"] == "55,338"
    assert {k: reference[k] for k in memory_lines(totals)} == memory_lines(totals)


@pytest.mark.parametrize("spec", list(CASES))
def test_memory_lines_match_torchsummary(spec: str) -> None:
    summary = summary_of(spec)
    with torch.device("meta"):
        layers = CASES[spec][0]()
    layers = [m.to_empty(device="cpu") for m in layers]  # skips weight initialisation
    reference = torchsummary_lines(layers, summary.input_shape[1:])
    assert reference["Total params"] == f"{summary.totals.params:,}"
    assert {k: reference[k] for k in memory_lines(summary.totals)} == memory_lines(summary.totals)


@pytest.mark.parametrize("batch", [1, 2, 16, 256])
def test_batch_scales_memory_like_torchsummary(batch: int) -> None:
    totals = summary_of("mnist_cnn.yaml", batch=batch).totals
    reference = torchsummary_lines(mnist_cnn(), (1, 28, 28), batch_size=batch)
    assert {k: reference[k] for k in memory_lines(totals)} == memory_lines(totals)
    assert totals.params_mb == summary_of("mnist_cnn.yaml").totals.params_mb  # weights don't grow


@pytest.mark.parametrize(("dtype", "size"), [("float16", 2), ("bfloat16", 2), ("float64", 8)])
def test_dtype_scales_bytes(dtype: str, size: int) -> None:
    base = summary_of("mnist_cnn.yaml").totals
    scaled = summary_of("mnist_cnn.yaml", dtype=dtype).totals
    for field in ("input_mb", "forward_backward_mb", "params_mb", "total_mb"):
        assert getattr(scaled, field) == pytest.approx(getattr(base, field) * size / 4), field
    assert (scaled.params, scaled.macs) == (base.params, base.macs)


def test_memory_formula() -> None:
    """torchsummary's formula: MB of 1024², 2 × every layer's output elements."""
    summary = summary_of("mnist_cnn.yaml", batch=3)
    outputs = sum(math.prod(r.output_shape) for r in summary.rows)
    assert summary.totals.forward_backward_mb == pytest.approx(2 * outputs * 4 / 1024**2)
    assert summary.totals.input_mb == pytest.approx(3 * 28 * 28 * 4 / 1024**2)
    assert summary.totals.params_mb == pytest.approx(55_338 * 4 / 1024**2)


# -- the CLI ----------------------------------------------------------------------------------

MNIST = str(MODELS / "mnist_cnn.yaml")


def totals_block(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][^:\n]*):\s+(\S+)", text, flags=re.M))


def test_cli_plain_output(cli) -> None:
    code, out, err = cli("model", MNIST)
    assert code == 0, err
    assert "\x1b" not in out
    assert "55,338" in out
    lines = totals_block(out)
    assert lines["Total params"] == "55,338"
    assert lines["Input size (MB)"] == "0.00"
    assert lines["Forward/backward pass size (MB)"] == "0.28"
    assert lines["Params size (MB)"] == "0.21"
    assert lines["Estimated Total Size (MB)"] == "0.50"
    assert "1×16×26×26" in out and "1×32×7×7" in out and "1×1568" in out


def test_cli_piped_through_the_console_script() -> None:
    """A real pipe: no colour, no box drawing, same numbers."""
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", "model", MNIST], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert not set("┏┃━│─╇") & set(done.stdout)
    assert "55,338" in done.stdout
    assert totals_block(done.stdout)["Estimated Total Size (MB)"] == "0.50"


def test_cli_json(cli) -> None:
    code, out, err = cli("model", MNIST, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["name"] == "MNIST CNN"
    assert data["input_shape"] == [1, 1, 28, 28]
    assert len(data["layers"]) == 11
    for layer in data["layers"]:
        assert {"name", "type", "input_shape", "output_shape", "params", "macs"} <= set(layer)
    first, last = data["layers"][0], data["layers"][-1]
    assert (first["type"], first["input_shape"], first["output_shape"]) == ("Conv2d", [1, 1, 28, 28], [1, 16, 26, 26])
    assert (first["params"], first["macs"]) == (160, 97_344)
    assert (last["type"], last["output_shape"], last["params"]) == ("Linear", [1, 10], 330)
    totals = data["totals"]
    assert totals["params"] == 55_338
    assert totals["trainable_params"] == 55_338
    assert totals["non_trainable_params"] == 0
    assert totals["macs"] == sum(layer["macs"] for layer in data["layers"]) == 811_392


def test_cli_batch_and_dtype(cli) -> None:
    code, out, err = cli("model", MNIST, "--batch", "16", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["input_shape"] == [16, 1, 28, 28]
    assert data["layers"][-1]["output_shape"] == [16, 10]
    assert data["totals"]["macs"] == 16 * 811_392
    reference = torchsummary_lines(mnist_cnn(), (1, 28, 28), batch_size=16)
    code, out, err = cli("model", MNIST, "--batch", "16")
    assert code == 0, err
    lines = totals_block(out)
    for key in ("Input size (MB)", "Forward/backward pass size (MB)", "Params size (MB)", "Estimated Total Size (MB)"):
        assert lines[key] == reference[key], key

    code, out, err = cli("model", MNIST, "--dtype", "float16")
    assert code == 0, err
    half = memory_lines(summary_of("mnist_cnn.yaml", dtype="float16").totals)
    assert {k: totals_block(out)[k] for k in half} == half
    assert half["Params size (MB)"] == "0.11"  # 55,338 × 2 bytes
    assert "float16" in out


def test_cli_input_override_on_vgg16(cli) -> None:
    code, out, err = cli("model", str(MODELS / "vgg16.yaml"), "--input", "3x64x64", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["input_shape"] == [1, 3, 64, 64]
    pools = [layer["output_shape"] for layer in data["layers"] if layer["type"] == "MaxPool2d"]
    assert pools == [[1, 64, 32, 32], [1, 128, 16, 16], [1, 256, 8, 8], [1, 512, 4, 4], [1, 512, 2, 2]]
    adaptive = next(layer for layer in data["layers"] if layer["type"] == "AdaptiveAvgPool2d")
    assert adaptive["output_shape"] == [1, 512, 7, 7]
    assert data["layers"][-1]["output_shape"] == [1, 1000]
    assert data["totals"]["params"] == 138_357_544

    code, out, err = cli("model", str(MODELS / "vgg16.yaml"), "--input", "3x64x64")
    assert code == 0, err
    assert "1×3×64×64" in out and "1×512×2×2" in out


def test_cli_input_override_too_small_fails_cleanly(cli) -> None:
    """AlexNet needs at least 63×63: a smaller input is a model error (exit 1), not a traceback."""
    code, out, err = cli("model", str(MODELS / "alexnet.yaml"), "--input", "3x32x32")
    assert code == 1
    assert "error:" in err and "Traceback" not in err
