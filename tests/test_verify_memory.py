"""``--max-memory`` is a promise: the estimate bounds the peak resident memory a verify run adds
above ``import torch`` (measured in a subprocess with resource.getrusage), a model too large is
refused before it is built for real (it is built on meta first), and an allocation failure is
reported as out of memory, never as a disagreement. benchmarks/verify_memory.py runs a larger matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
resource = pytest.importorskip("resource")

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import contextlib, io, json, resource, sys
    import torch

    def rss(key):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))

    try:  # reset the peak (VmHWM) to the current size, so that import torch's own peak hides nothing
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        base, peak = rss("VmRSS:"), lambda: rss("VmHWM:")
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    from convcalc.cli import run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(sys.argv[1:])
    added = peak() - base
    text = out.getvalue()
    estimate = json.loads(text)["memory"]["estimated_bytes"] if code == 0 else None
    print(json.dumps({"code": code, "added": added, "estimate": estimate}))
""")


def measured(*args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD, "verify", *args, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ("conv", "--in", "1400", "--k", "3"),  # torch's slow path: im2col columns for the whole batch
        ("tconv", "--in", "160", "--k", "4", "--s", "2", "--cin", "8", "--cout", "8"),
        ("pool", "--in", "2500", "--k", "3"),
    ],
    ids=["conv-im2col", "tconv", "pool"],
)
def test_the_real_peak_stays_within_the_estimate(args: tuple[str, ...]) -> None:
    result = measured(*args)
    assert result["code"] == 0
    assert 0 < result["added"] <= result["estimate"], result


LINEAR = (
    "import torch.nn as nn\n\n"
    "def make(features=8, out=8):\n"
    "    return nn.Sequential(nn.Linear(features, out))\n"
)


@pytest.mark.parametrize(
    ("sizes", "batch"),
    [((8, 8), 1), ((4096, 4096), 1024)],
    ids=["tiny-linear", "linear-4096"],
)
def test_the_real_peak_of_a_linear_model_stays_within_the_estimate(tmp_path: Path, sizes: tuple[int, int], batch: int) -> None:
    """A Python model of matrix products: the estimate on meta imports torch._dynamo (some of meta's
    kernels do) and the run takes sgemm's packing buffers; both are counted."""
    path = tmp_path / "linear.py"
    path.write_text(LINEAR)
    features, out = sizes
    result = measured(f"{path}:make", "--input", str(features), "--batch", str(batch),
                      "--kwargs", json.dumps({"features": features, "out": out}))
    assert result["code"] == 0
    assert 0 < result["added"] <= result["estimate"], result



@pytest.mark.parametrize(
    "layers",
    [
        "  - {Identity: {}, name: q}\n  - ScaledDotProductAttention: {from: [q, q, q], is_causal: true}\n",
        "  - MultiheadAttention: {num_heads: 2, add_bias_kv: true}\n",
        "  - {Unflatten: {dim: 1, unflattened_size: [64, 64]}}\n  - ShiftedWindowAttention: {window_size: 32, shift_size: 16, num_heads: 2}\n",
        "  - {Unflatten: {dim: 1, unflattened_size: [64, 64]}}\n  - ShiftedWindowAttentionV2: {window_size: 32, num_heads: 2}\n",
        "  - {Unflatten: {dim: 1, unflattened_size: [1, 4096]}}\n  - RelativePositionalMultiHeadAttention: {head_dim: 4, max_seq_len: 4096}\n",
    ],
    ids=["sdpa-3d-causal", "mha", "swin", "swin-v2", "maxvit"],
)
def test_the_real_peak_of_attention_stays_within_the_estimate(tmp_path: Path, layers: str) -> None:
    """Attention's scores (every query against every key, per head) are no row's output: a spec's
    estimate counted only the rows, so ScaledDotProductAttention of 1×30000×8 was estimated at 130 MiB
    and allocated 3.6 GB, a Swin window of 128×128 4 GB."""
    path = tmp_path / "attention.yaml"
    path.write_text("input: [4096, 8]\nlayers:\n" + layers)
    result = measured(str(path))
    assert result["code"] == 0
    assert 0 < result["added"] <= result["estimate"], result

def test_the_real_peak_of_attention_biases_stays_within_the_estimate(tmp_path: Path) -> None:
    """AttentionBias builds its (queries × keys) offset index in forward (int64 coordinates, their differences,
    the index) and gathers (heads, queries, keys) biases: no row's output either."""
    path = tmp_path / "biases.yaml"
    path.write_text("input: [1, 4096, 4096]\nlayers:\n  - AttentionBias: {num_heads: 1, resolution: 64}\n")
    result = measured(str(path))
    assert result["code"] == 0
    assert 0 < result["added"] <= result["estimate"], result


def test_the_real_peak_of_a_weight_standardised_conv_stays_within_the_estimate(tmp_path: Path) -> None:
    """StdConv2d runs F.conv2d: torch's im2col columns, as a Conv2d's (the estimate read only Conv… type names)."""
    path = tmp_path / "std_conv.yaml"
    path.write_text("input: [1, 1400, 1400]\nlayers:\n  - StdConv2d: {out_channels: 1, kernel_size: 3}\n")
    result = measured(str(path))
    assert result["code"] == 0
    assert 0 < result["added"] <= result["estimate"], result


def test_the_matmul_working_buffer_is_in_the_estimate() -> None:
    """Linear's packing buffers: in a spec row's estimate and in the meta measurement of a model."""
    from convcalc.verify.memory import (
        MATMUL_BYTES_PER_THREAD,
        _allocations_mode,
        matmul_workspace,
    )

    assert matmul_workspace(10**9, 2) == 2 * MATMUL_BYTES_PER_THREAD
    assert matmul_workspace(1000, 16) == 1000
    mode_class = _allocations_mode(torch)
    x, w = torch.empty((1024, 1024), device="meta"), torch.empty((1024, 1024), device="meta")
    with torch.no_grad(), mode_class() as mode:
        torch.nn.functional.linear(x, w)
    assert mode.workspace == matmul_workspace(2 * 1024 * 1024 * 4, torch.get_num_threads()) > 0

    from convcalc.packaged import load_named_model

    summary = load_named_model("vgg16").summary()
    from convcalc.verify.memory import row_workspace

    linear = [row for row in summary.rows if row.type == "Linear"]
    assert linear and all(row_workspace(row, 4) > 0 for row in linear)


def test_a_refusal_allocates_nothing() -> None:
    result = measured("conv", "--in", "1400", "--k", "3", "--max-memory", "64MiB")
    assert result["code"] == 1 and result["added"] < 32 * 1024**2, result


def test_a_python_model_too_large_is_refused_before_it_is_built(tmp_path: Path, cli) -> None:
    """A 40 GB Linear is built on meta first: the refusal comes before any allocation."""
    path = tmp_path / "huge.py"
    path.write_text("import torch.nn as nn\n\ndef make():\n    return nn.Sequential(nn.Linear(100_000, 100_000))\n")
    code, out, err = cli("verify", f"{path}:make", "--input", "100000")
    assert code == 1 and out == ""
    assert "--max-memory" in err and "--device meta" in err and "GiB" in err
    assert len(err.strip().splitlines()) == 1


def test_the_estimate_counts_activations_created_in_forward(tmp_path: Path) -> None:
    """Tensors a forward creates outside any leaf (here 64 MiB of them) are in the estimate."""
    from convcalc.verify import load_python_model, python_estimate

    path = tmp_path / "grows.py"
    path.write_text("import torch\nimport torch.nn as nn\n\nclass Grows(nn.Module):\n"
                    "    def forward(self, x):\n        return torch.cat([x] * 16, 1)\n")
    model = load_python_model(f"{path}:Grows")
    small = python_estimate(torch, model, (1, 1, 1024, 256), torch.float32)
    assert small is not None
    from convcalc.verify.memory import RUNTIME_BYTES

    assert small - RUNTIME_BYTES >= 1024 * 256 * 4 * 17  # the input and the 16-times output


def test_out_of_memory_is_reported_as_such(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "oom.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\nclass Oom(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n\n    def forward(self, x):\n        if x.device.type == 'cpu':\n"
        "            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB')\n        return self.conv(x)\n"
    )
    code, out, err = cli("verify", f"{path}:Oom", "--input", "3x8x8")
    assert code == 1 and out == ""
    assert "out of memory" in err and "--device meta" in err and "disagree" not in err

    real = torch.nn.Conv2d.forward

    def starved(self, x):
        if x.device.type == "cpu":
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes")
        return real(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", starved)
    code, out, err = cli("verify", "conv", "--in", "8", "--k", "3")
    assert code == 1 and "out of memory" in err and "disagree" not in err


def test_measuring_on_meta_leaves_a_model_with_a_shared_submodule_as_it_was() -> None:
    """One submodule reachable by two paths (timm's CoaT shares ``cpe1`` with its blocks): torch's
    functional_call left the meta tensors in the user's model, which could then not be moved or run
    ("Cannot copy out of meta tensor"; verify refused coat_tiny). The model keeps its own tensors."""
    torch = pytest.importorskip("torch")
    from torch import nn

    import convcalc
    from convcalc.verify import verify_python
    from convcalc.verify.memory import python_estimate

    class Block(nn.Module):
        def __init__(self, shared: nn.Module) -> None:
            super().__init__()
            self.cpe = shared
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.cpe(x))

    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cpe1 = nn.Linear(4, 4)
            self.blocks = nn.ModuleList([Block(self.cpe1), Block(self.cpe1)])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    model = Shared()
    before = {name: p for name, p in model.named_parameters(remove_duplicate=False)}
    assert python_estimate(torch, model, (1, 4), torch.float32) is not None
    after = dict(model.named_parameters(remove_duplicate=False))
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before), [k for k in before if after[k] is not before[k]]
    report = verify_python(model, (4,))
    assert report.ok and report.totals.params == 3 * 20  # cpe1 once, two fc
    assert tuple(model(torch.zeros(1, 4)).shape) == (1, 4)  # still the user's model, on the CPU
    assert convcalc.summary(model, (1, 4)).total_params == 60
