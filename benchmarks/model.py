"""`convcalc model` at scale: VGG16 and generated sequential specs of 1,000–20,000 layers.

    python benchmarks/model.py [--runs 5]

Whole processes (start-up included), output piped (plain text), medians. Budget (issue #3):
10,000 layers in under 1 s, and a cost that grows linearly (the ms per 1,000 layers should stay
flat from 1,000 to 20,000 layers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VGG16 = os.path.join(HERE, "..", "examples", "models", "vgg16.yaml")
SIZES = (1_000, 10_000, 20_000)


def generated_spec(layers: int) -> str:
    """Conv2d(3×3, padding 1) and ReLU alternating: every layer is checked, none shrinks the input."""
    body = "  - Conv2d: {out_channels: 8, kernel_size: 3, padding: 1}\n  - ReLU\n" * (layers // 2)
    return f"name: generated {layers}\ninput: [3, 32, 32]\nlayers:\n{body}"


def convcalc() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "convcalc")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "convcalc"]


def median_time(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode().strip()}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = median_time([sys.executable, "-c", "pass"], args.runs)
    print(f"{'spec':28} {'median':>9} {'ms per 1k layers':>18}   ({args.runs} runs each, start-up included)")
    print(f"{'python -c pass':28} {base * 1000:7.0f}ms")
    if os.path.exists(VGG16):
        print(f"{'vgg16.yaml':28} {median_time([*convcalc(), 'model', VGG16], args.runs) * 1000:7.0f}ms")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for layers in SIZES:
            path = os.path.join(folder, f"seq{layers}.yaml")
            with open(path, "w") as handle:
                handle.write(generated_spec(layers))
            seconds = median_time([*convcalc(), "model", path], args.runs)
            results[layers] = seconds
            per_k = (seconds - base) / layers * 1000 * 1000
            print(f"{f'{layers:,} layers':28} {seconds * 1000:7.0f}ms {per_k:16.1f}ms")
    ok = results[10_000] < 1.0
    first = (results[10_000] - results[1_000]) / 9_000
    second = (results[20_000] - results[10_000]) / 10_000
    print(f"10,000 layers: {results[10_000]:.2f} s ({'within' if ok else 'OVER'} the 1 s budget)")
    print(
        f"marginal cost per layer: {first * 1e6:.0f} µs (1k→10k), {second * 1e6:.0f} µs (10k→20k);"
        f" ratio {second / first:.2f} (1.0 = linear)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
