"""Hostile inputs at scale: refused early, or answered in time that grows linearly.

    python benchmarks/hostile.py [--runs 3]

Whole processes (`convcalc model`, output piped), medians, side by side with `python -c pass`:

- a spec whose flow list holds 3,000,000 values (6 MB): refused by the count before parsing;
- chains of Add layers (each joins the two entries above) of 10,000 / 30,000 / 90,000 layers:
  the ms per 1,000 layers should stay flat (linear growth);
- one Add of N inputs followed by N ReLU rows: the output bytes per row should stay flat (a
  merge's input column once padded every row to the width of N joined shapes: quadratic);
- an alias bomb (9^9 values from 90 YAML nodes): refused by counting each node once, near the
  start-up time (it used to build 2,000,000 values first);
- `chain 28` with 2,000 / 8,000 steps and `examples` with 1,000 / 4,000 exercises: ms per step
  should stay flat (explanations are computed only when shown);
- `draw` of 5,000 / 20,000 activations after one conv (all folded into one box): ms per layer
  should stay flat (folding was quadratic).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ADD_SIZES = (10_000, 30_000, 90_000)
WIDE_SIZES = (1_000, 5_000, 20_000)


def convcalc() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "convcalc")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "convcalc"]


def timed(command: list[str], runs: int) -> tuple[float, int, int]:
    """(median seconds, exit code, stdout bytes) of ``command``."""
    times, code, size = [], 0, 0
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        code, size = done.returncode, len(done.stdout)
    return statistics.median(times), code, size


def add_chain(layers: int) -> str:
    lines = ["input: [1, 4, 4]", "layers:", "  - ReLU: {}", "    name: a0"]
    for i in range(1, layers):
        lines += [f"  - Add: [a{i - 1}, a{max(0, i - 2)}]", f"    name: a{i}"]
    return "\n".join(lines) + "\n"


def wide_merge(inputs: int) -> str:
    head = ["input: [1, 4, 4]", "layers:", "  - ReLU: {}", "    name: a", "  - Add: [" + ", ".join(["a"] * inputs) + "]"]
    return "\n".join(head) + "\n" + "  - ReLU\n" * inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base, _, _ = timed([sys.executable, "-c", "pass"], args.runs)
    print(f"{'case':34} {'median':>9} {'exit':>4}  notes   ({args.runs} runs each, start-up included)")
    print(f"{'python -c pass':34} {base * 1000:7.0f}ms")
    with tempfile.TemporaryDirectory() as folder:
        def write(name: str, text: str) -> str:
            path = os.path.join(folder, name)
            with open(path, "w") as handle:
                handle.write(text)
            return path

        flow = write("flow.yaml", "input: [1, 28, 28]\nlayers:\n  - ReLU\ndescription: [" + ",".join(["1"] * 3_000_000) + "]\n")
        seconds, code, _ = timed([*convcalc(), "model", flow], args.runs)
        print(f"{'flow list of 3,000,000 values':34} {seconds * 1000:7.0f}ms {code:>4}  refused: {seconds / base:.1f}× bare python")
        for layers in ADD_SIZES:
            path = write(f"add{layers}.yaml", add_chain(layers))
            seconds, code, _ = timed([*convcalc(), "model", path], args.runs)
            per = (seconds - base) / layers * 1000 * 1000
            print(f"{f'{layers:,} Add layers':34} {seconds * 1000:7.0f}ms {code:>4}  {per:.0f} ms per 1,000 layers")
        for inputs in WIDE_SIZES:
            path = write(f"wide{inputs}.yaml", wide_merge(inputs))
            seconds, code, size = timed([*convcalc(), "model", path], args.runs)
            print(f"{f'one Add of {inputs:,} inputs + rows':34} {seconds * 1000:7.0f}ms {code:>4}  {size / inputs:.0f} output bytes per row")
        lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
        for previous, name in zip("abcdefgh", "bcdefghi"):
            lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        bomb = write("bomb.yaml", "input: [1, 28, 28]\nlayers:\n  - ReLU\n" + "\n".join(lines) + "\n")
        seconds, code, _ = timed([*convcalc(), "model", bomb], args.runs)
        print(f"{'alias bomb (9^9 values)':34} {seconds * 1000:7.0f}ms {code:>4}  refused: {seconds / base:.1f}× bare python")
        for steps in (2_000, 8_000):
            seconds, code, _ = timed([*convcalc(), "chain", "28", *["conv:k=1"] * steps], args.runs)
            print(f"{f'chain of {steps:,} steps':34} {seconds * 1000:7.0f}ms {code:>4}  {(seconds - base) / steps * 1000:.2f} ms per step")
        exercise = '  - question: q\n    input: 28\n    layers: ["conv:k=3"]\n    expect: 26\n'
        for count in (1_000, 4_000):
            path = write(f"ex{count}.yaml", "examples:\n" + exercise * count)
            seconds, code, _ = timed([*convcalc(), "examples", path], args.runs)
            print(f"{f'examples: {count:,} exercises':34} {seconds * 1000:7.0f}ms {code:>4}  {(seconds - base) / count * 1000:.2f} ms per exercise")
        for count in (5_000, 20_000):
            path = write(f"relu{count}.yaml", "input: [1, 28, 28]\nlayers:\n  - Conv2d: {out: 4, k: 3}\n" + "  - ReLU\n" * count)
            seconds, code, _ = timed([*convcalc(), "draw", path, "-o", "-"], args.runs)
            print(f"{f'draw: {count:,} activations folded':34} {seconds * 1000:7.0f}ms {code:>4}  {(seconds - base) / count * 1000:.2f} ms per layer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
