"""Benchmark: ``convcalc verify`` against ``torchinfo.summary`` on the same model and input.

Both sides are whole processes (interpreter start, imports, building the model, one forward pass,
printing), timed with a wall clock, interleaved, at least 5 runs each; the medians are compared.
Budget (the product contract, README "Development"): ``convcalc verify`` no slower than torchinfo, i.e. a ratio ≤ 1.0.

    python benchmarks/verify.py              # MNIST CNN at 1×28×28 and VGG16 at 3×224×224
    python benchmarks/verify.py --runs 9 --device cpu

Both sides run exactly the same network: the MNIST CNN is examples/models/mnist_cnn.yaml for convcalc
and the same layers as ``nn.Sequential``, written out here, for torchinfo; VGG16 is written out here
for both (a spec for convcalc, ``nn.Sequential`` for torchinfo).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MNIST_YAML = Path(__file__).resolve().parent.parent / "examples" / "models" / "mnist_cnn.yaml"

MNIST_TORCH = """\
model = nn.Sequential(
    nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2, 1),
    nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2, 1),
    nn.Flatten(), nn.Linear(1568, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10),
)
"""

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_spec() -> str:
    lines = ["name: VGG16", "input: [3, 224, 224]", "layers:"]
    for v in VGG16_CFG:
        if v == "M":
            lines.append("  - MaxPool2d: {kernel_size: 2, stride: 2}")
        else:
            lines += [f"  - Conv2d: {{out_channels: {v}, kernel_size: 3, padding: 1}}", "  - ReLU"]
    lines += [
        "  - AdaptiveAvgPool2d: {output_size: [7, 7]}",
        "  - Flatten",
        "  - Linear: {out_features: 4096}",
        "  - ReLU",
        "  - Dropout: {p: 0.5}",
        "  - Linear: {out_features: 4096}",
        "  - ReLU",
        "  - Dropout: {p: 0.5}",
        "  - Linear: {out_features: 1000}",
    ]
    return "\n".join(lines) + "\n"


VGG16_TORCH = f"""\
layers, c = [], 3
for v in {VGG16_CFG!r}:
    if v == "M":
        layers.append(nn.MaxPool2d(2, 2))
    else:
        layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
        c = v
layers += [nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
           nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000)]
model = nn.Sequential(*layers)
"""

TORCHINFO_SCRIPT = """\
import torch
from torch import nn
import torchinfo
{model}
torchinfo.summary(model, input_size={input_size!r}, device={device!r})
"""


#: Like an installed package, both sides may keep their bytecode cache (torch and torchinfo have theirs
#: from pip; a PYTHONDONTWRITEBYTECODE environment would make convcalc recompile itself on every run).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def bench(name: str, spec: str, torch_model: str, input_size: tuple[int, ...], runs: int, device: str, folder: str) -> float:
    spec_path = os.path.join(folder, f"{name}.yaml")
    script_path = os.path.join(folder, f"{name}_torchinfo.py")
    with open(spec_path, "w") as f:
        f.write(spec)
    with open(script_path, "w") as f:
        f.write(TORCHINFO_SCRIPT.format(model=torch_model, input_size=(1, *input_size), device=device))
    ours = [sys.executable, "-m", "convcalc", "verify", spec_path, "--device", device]
    theirs = [sys.executable, script_path]
    timed(ours), timed(theirs)  # warm the file cache
    mine, other = [], []
    for _ in range(runs):
        mine.append(timed(ours))
        other.append(timed(theirs))
    a, b = statistics.median(mine), statistics.median(other)
    print(f"{name:10s} convcalc verify {a:6.2f} s   torchinfo.summary {b:6.2f} s   ratio {a / b:4.2f}"
          f"   (medians of {runs}; convcalc {min(mine):.2f}–{max(mine):.2f}, torchinfo {min(other):.2f}–{max(other):.2f})")
    return a / b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per side (at least 5)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", choices=["mnist", "vgg16"], default=None)
    args = parser.parse_args()
    runs = max(5, args.runs)
    print(textwrap.dedent(f"""\
        python {sys.version.split()[0]}, {os.cpu_count()} CPUs, device {args.device}; whole processes, stdout to /dev/null
    """).rstrip())
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        if args.only in (None, "mnist"):
            ratios.append(bench("mnist_cnn", MNIST_YAML.read_text(), MNIST_TORCH, (1, 28, 28), runs, args.device, folder))
        if args.only in (None, "vgg16"):
            ratios.append(bench("vgg16", vgg16_spec(), VGG16_TORCH, (3, 224, 224), runs, args.device, folder))
    worst = max(ratios)
    print(f"budget: ratio ≤ 1.00 — {'met' if worst <= 1.0 else 'NOT met'} (worst {worst:.2f})")
    sys.exit(0 if worst <= 1.0 else 1)


if __name__ == "__main__":
    main()
