"""``convcalc verify`` on specs and calculator layers: every example agrees with torch, a disagreement
is caught, the classic style is torchsummary's output line for line, devices, memory and torch's
absence are one-line errors, and importing the CLI leaves torch alone."""

from __future__ import annotations

import glob
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from convcalc import load_model  # noqa: E402
from convcalc.graph import ModelError, model_from_text  # noqa: E402
from convcalc.verify import (  # noqa: E402
    VerifyError,
    build_module,
    import_torch,
    parse_memory,
    summary_estimate,
    verify_model,
)
from convcalc.commands.verify import classic_lines, show  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(glob.glob(str(ROOT / "examples" / "models" / "*.yaml")))

#: The course's MNIST CNN (its torch twin: ``mnist_torch``).
MNIST = str(ROOT / "examples" / "models" / "mnist_cnn.yaml")

GRAPH_SPEC = """\
name: branches
input: [3, 16, 16]
blocks:
  basic:
    params: [planes]
    layers:
      - Conv2d: {out: $planes, k: 3, p: 1, bias: false}
      - BatchNorm2d: {}
      - ReLU
      - Conv2d: {out: $planes, k: 3, p: 1, bias: false}
      - BatchNorm2d: {}
        name: bn2
      - Add: [bn2, input]
      - ReLU
layers:
  - Conv2d: {out: 8, k: 3, p: 1}
    name: stem
    trainable: false
  - basic: {planes: 8}
    repeat: 2
  - Conv2d: {out: 4, k: 1}
    name: side
    from: stem
  - Concat: [1, side]
    name: cat
  - Multiply: [cat, cat]
  - AdaptiveAvgPool2d: {output_size: 1}
  - Flatten
  - Linear: {out: 10}
"""

#: Specs whose arithmetic is too heavy for a unit test on CPU run on the meta device instead.
HEAVY_MACS = 1_000_000_000


def mnist_torch() -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),
        nn.Flatten(), nn.Linear(1568, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10),
    )  # fmt: skip


def differences(report) -> str:
    return "\n".join(f"{m.layer} {m.type} {m.what}: convcalc {m.engine} torch {m.torch}" for m in report.mismatches)


# -- every example spec -----------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: os.path.basename(p))
def test_every_example_spec_agrees_with_torch(path: str) -> None:
    model = load_model(path)
    try:
        summary = model.summary()
    except ModelError:  # an example of a broken model: verify must say so too, on every device
        with pytest.raises(ModelError):
            verify_model(model, device="meta")
        return
    device = "meta" if summary.totals.macs > HEAVY_MACS or summary_estimate(summary) > 2**28 else "cpu"
    report = verify_model(model, device=device, batch=1)
    assert report.ok, differences(report)
    assert [c.name for c in report.checks] == [r.name for r in summary.rows]
    assert all(c.confirmed for c in report.checks)
    assert report.device == device


def test_graph_spec_with_merges_and_frozen_layers() -> None:
    report = verify_model(model_from_text(GRAPH_SPEC), device="cpu")
    assert report.ok, differences(report)
    types = [c.type for c in report.checks]
    assert {"Add", "Concat", "Multiply"} <= set(types)
    assert report.totals.non_trainable_params == 8 * 3 * 9 + 8  # the frozen stem
    frozen = [row for row in report.classic if row.key.startswith("Conv2d-1")]
    assert frozen and frozen[0].trainable is False


def test_batch_and_dtypes() -> None:
    model = load_model(MNIST)
    report = verify_model(model, batch=3, dtype="bfloat16", device="cpu")
    assert report.ok, differences(report)
    assert report.checks[-1].torch_output_shape == (3, 10)
    assert verify_model(model, dtype="float64", device="meta").ok


def test_the_built_module_mirrors_the_spec() -> None:
    summary = load_model(MNIST).summary()
    net = build_module(summary)
    leaves = list(net.layers)
    assert [type(m).__name__ for m in leaves] == [row.type for row in summary.rows]
    assert leaves[0].in_channels == 1 and leaves[0].out_channels == 16
    assert leaves[7].in_features == 1568  # from the bound layer of the row
    assert all(p.device.type == "meta" for p in net.parameters())


# -- disagreements ----------------------------------------------------------------------------


def test_a_wrong_parameter_count_is_caught(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    from convcalc.layers.conv import Conv

    real = Conv.num_params
    monkeypatch.setattr(Conv, "num_params", property(lambda self: real.fget(self) + 1))
    report = verify_model(load_model(MNIST), device="cpu")
    assert not report.ok
    wrong = [(m.layer, m.what, m.engine, m.torch) for m in report.mismatches]
    assert wrong == [("0", "params", 161, 160), ("3", "params", 4641, 4640)]
    assert [c.confirmed for c in report.checks].count(False) == 2

    code, out, err = cli("verify", MNIST)
    assert code == 1
    assert "Differences between convcalc and torch" in out
    assert "161" in out and "160" in out
    assert "✗" in out
    assert "2 disagreements" in err and "Traceback" not in err


def test_a_wrong_output_shape_and_macs_are_caught(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    from convcalc.layers.conv import Conv
    from convcalc.layers.linear import Linear

    real_output, real_macs = Linear._output, Conv.macs
    # only the last layer (10 classes) is wrong, so that nothing downstream depends on it
    monkeypatch.setattr(Linear, "_output", lambda self, shape: (*real_output(self, shape)[:-1], self.out_features + (self.out_features == 10)))
    monkeypatch.setattr(Conv, "macs", lambda self, shape: real_macs(self, shape) * 2)
    report = verify_model(load_model(MNIST), device="cpu")
    whats = {(m.layer, m.what) for m in report.mismatches}
    assert whats == {("10", "output shape"), ("0", "MACs"), ("3", "MACs")}
    code, out, _ = cli("verify", "conv", "--in", "32", "--k", "3", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    assert data["layers"][0]["confirmed"] is False
    assert data["layers"][0]["torch"]["macs"] * 2 == data["layers"][0]["macs"]


def test_torch_refusing_what_convcalc_accepts_is_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcalc.layers.conv import Conv

    real = Conv.torch_kwargs
    monkeypatch.setattr(Conv, "torch_kwargs", lambda self: {**real(self), "in_channels": 5})
    report = verify_model(load_model(MNIST), device="cpu")
    assert not report.ok
    assert report.failure is not None and "RuntimeError" in str(report.failure.torch)
    assert report.checks == []  # the first layer already failed


def test_meta_never_turns_an_engine_error_into_a_check_mark(tmp_path: Path, cli) -> None:
    spec = tmp_path / "wrong_channels.yaml"
    spec.write_text("name: wrong\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {in_channels: 3, out: 4, k: 3}\n")
    for device in ("meta", "cpu"):
        code, out, err = cli("verify", str(spec), "--device", device)
        assert code == 1, device
        assert "✓" not in out
        assert "in_channels" in err and "Traceback" not in err
    code, out, _ = cli("verify", str(spec), "--device", "meta", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["error"]["line"] == 4


# -- output styles ----------------------------------------------------------------------------


def test_classic_style_is_torchsummary_line_by_line(cli, capsys: pytest.CaptureFixture[str]) -> None:
    torchsummary = pytest.importorskip("torchsummary")
    torchsummary.summary(mnist_torch(), (1, 28, 28), device="cpu")
    expected = capsys.readouterr().out.splitlines()
    code, out, _ = cli("verify", MNIST, "--style", "classic")
    assert code == 0
    lines = out.splitlines()
    assert lines[: len(expected)] == expected
    assert "            Conv2d-1           [-1, 16, 26, 26]             160" in lines
    assert lines[len(expected)].startswith("Verified on cpu with torch ")


def test_classic_style_with_a_batch_and_merges(capsys: pytest.CaptureFixture[str]) -> None:
    torchsummary = pytest.importorskip("torchsummary")
    report = verify_model(model_from_text(GRAPH_SPEC), batch=4, device="cpu")
    torchsummary.summary(build_module(report.summary).to_empty(device="cpu"), (3, 16, 16), batch_size=4, device="cpu")
    expected = capsys.readouterr().out.splitlines()
    assert classic_lines(report) == expected


def test_default_table_and_json(cli) -> None:
    code, out, err = cli("verify", MNIST)
    assert code == 0, err
    assert f"on cpu, torch {torch.__version__}" in out
    assert out.count("✓") == 13  # the column title, eleven layers and the verdict
    assert "Total params:" in out and "55,338" in out
    assert "\x1b[" not in out and "━" not in out  # plain text when piped

    code, out, _ = cli("verify", MNIST, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["ok"] is True and data["device"] == "cpu" and data["torch_version"] == torch.__version__
    assert data["name"] == "MNIST CNN" and data["input_shape"] == [1, 1, 28, 28]
    assert data["totals"]["params"] == 55338 and data["totals"]["trainable_params"] == 55338
    first = data["layers"][0]
    assert first["type"] == "Conv2d" and first["output_shape"] == [1, 16, 26, 26]
    assert first["params"] == 160 and first["macs"] == 97344 and first["confirmed"] is True
    assert all(layer["confirmed"] is True for layer in data["layers"])


def test_rich_table_names_the_device() -> None:
    report = verify_model(load_model(MNIST), device="meta")
    out = io.StringIO()
    show(report, out=out, rich=True)
    text = out.getvalue()
    assert "on meta, torch" in text and "✓ all 11 layers agree" in text


# -- calculator layers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, output",
    [
        ("conv --in 227 --k 11 --s 4 --cin 3 --cout 96", [1, 96, 55, 55]),
        ("conv --in 32x64 --k 5 --p same", [1, 1, 32, 64]),
        ("conv --in 16x32x32 --k 3 --s 2 --p 1 --g 2 --cin 4 --cout 6", [1, 6, 8, 16, 16]),
        ("tconv --in 3 --k 3 --s 3 --op 1", [1, 1, 10, 10]),
        ("tconv --in 7 --k 4 --s 2 --p 1 --cin 8 --cout 4 --no-bias", [1, 4, 14, 14]),
        ("pool --in 26 --k 2 --s 2 --p 1", [1, 1, 14, 14]),
        ("pool --in 5 --k 2 --ceil --kind avg", [1, 1, 3, 3]),
        ("pool --in 100 --k 3 --dims 1 --d 2", [1, 1, 32]),
    ],
)
def test_calculator_layers(cli, args: str, output: list[int]) -> None:
    code, out, err = cli("verify", *args.split(), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["layers"][0]["output_shape"] == output


def test_calculator_layer_errors(cli) -> None:
    code, _, err = cli("verify", "conv", "--in", "3", "--k", "5")
    assert code == 1 and "kernel 5" in err and "Traceback" not in err
    code, _, err = cli("verify", "conv", "--k", "3")
    assert code == 2 and "--in" in err
    code, _, err = cli("verify", "mnist.yaml", "--k", "3")
    assert code == 2 and "--k" in err


# -- devices, memory, torch's absence ---------------------------------------------------------


def test_cuda_without_cuda_names_the_build(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = cli("verify", MNIST, "--device", "cuda")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert torch.__version__ in lines[0] and "CUDA is not available" in lines[0]


@pytest.mark.parametrize("text, count", [("512MiB", 512 * 2**20), ("2GiB", 2 * 2**30), ("1.5GB", 1_500_000_000), ("100", 100), ("2G", 2**30 * 2)])
def test_parse_memory(text: str, count: int) -> None:
    assert parse_memory(text) == count


def test_memory_limit_refuses_and_suggests_meta(cli) -> None:
    code, out, err = cli("verify", MNIST, "--batch", "20000")
    assert code == 1 and out == ""
    assert "--max-memory" in err and "--device meta" in err and len(err.strip().splitlines()) == 1
    code, _, _ = cli("verify", MNIST, "--batch", "20000", "--device", "meta")
    assert code == 0
    code, _, err = cli("verify", MNIST, "--max-memory", "1KB")
    assert code == 1 and "1000 B" in err
    code, _, err = cli("verify", MNIST, "--max-memory", "plenty")
    assert code == 2


def test_without_torch_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(VerifyError, match="pip install"):
        import_torch()
    code, out, err = cli("verify", MNIST)
    assert code == 1
    assert err.count("\n") == 1 and "pip install 'convcalc[torch]'" in err


def test_importing_the_cli_leaves_torch_out() -> None:
    code = textwrap.dedent(
        """
        import sys
        import convcalc.cli, convcalc.commands.verify, convcalc.verify
        assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- cuda -------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_reports_the_gpu_and_its_peak_memory(cli) -> None:
    code, out, err = cli("verify", MNIST, "--device", "cuda", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["device"] == f"cuda: {torch.cuda.get_device_name()}"
    assert data["memory"]["cuda_peak_bytes"] > 0  # cuDNN workspaces count too: no upper bound here
    assert data["memory"]["estimated_bytes"] > 0
    code, out, _ = cli("verify", MNIST, "--device", "cuda")
    assert code == 0 and "Peak CUDA memory (measured)" in out and "Memory estimate (convcalc)" in out


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: os.path.basename(p))
def test_every_example_spec_on_cuda(path: str) -> None:
    model = load_model(path)
    try:
        model.summary()
    except ModelError:
        return
    report = verify_model(model, device="cuda", max_memory="16GiB")
    assert report.ok, differences(report)
    assert report.peak_bytes is not None and report.peak_bytes > 0


def test_estimate_counts_input_params_and_outputs() -> None:
    summary = load_model(MNIST).summary(batch=2)
    outputs = sum(math.prod(r.output_shape) for r in summary.rows)
    assert summary_estimate(summary) == (2 * 28 * 28 + 55338 + outputs) * 4


def test_a_cpu_run_skips_torch_dynamo_and_sympy() -> None:
    """The two one-off imports that would cost more than the whole forward pass (see
    ``verify.runtime._flop_counter`` and ``verify.specs.materialize``) stay out; the seeded cache is removed."""
    code = textwrap.dedent(
        f"""
        import sys
        from convcalc.cli import run
        assert run(["verify", {MNIST!r}]) == 0
        heavy = sorted({{"torch._dynamo", "sympy"}} & set(sys.modules))
        assert not heavy, heavy
        from torch.utils import flop_counter
        raw = flop_counter._FlopCounterMode.__dict__["__torch_dispatch__"].__wrapped__
        assert not hasattr(raw, "__dynamo_disable")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


NO_NUMPY = """
import sys
class NoNumpy:  # torch installed on its own, without the [torch] extra's numpy
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ModuleNotFoundError("No module named 'numpy'", name="numpy")
        return None
sys.meta_path.insert(0, NoNumpy())
from convcalc.cli import run
sys.exit(run(["verify", "mnist_cnn"]))
"""


def test_verify_without_numpy_does_not_pass_on_torchs_numpy_warning() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "default", "-c", NO_NUMPY], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "NumPy" not in done.stderr and "UserWarning" not in done.stderr, done.stderr
    assert "all 11 layers agree" in done.stdout


def test_verify_names_file_line_in_layer_warnings_as_model_does(cli, tmp_path) -> None:
    spec = tmp_path / "lin.yaml"
    spec.write_text("name: lin\ninput: [3, 8, 8]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n  - Linear: {out: 10}\n")
    code, _, err = cli("verify", str(spec))
    assert code == 0
    assert err.startswith(f"warning: {spec}:5: Linear: the input [1, 4, 6, 6] is 4-D") and err.count("\n") == 1
    assert cli("model", str(spec))[2] == err
