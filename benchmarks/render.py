"""The rich table on a terminal against the plain text of a pipe, side by side, as ratios.

    python benchmarks/render.py [--runs 3] [--layers 1000 10000]

For each generated sequential spec (Conv2d and ReLU alternating), runs `convcalc model SPEC`
as a whole process twice per round, interleaved: stdout a pseudo-terminal (the rich table,
100 columns) and stdout a pipe (plain text); prints the medians and their ratio. A third
column times the terminal with `--wide` (every column). Budget (the product contract, README "Development"): the terminal
within 2x of the pipe.
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time

BUDGET = 2.0


def generated_spec(layers: int) -> str:
    body = "  - Conv2d: {out_channels: 8, kernel_size: 3, padding: 1}\n  - ReLU\n" * (layers // 2)
    return f"name: generated {layers}\ninput: [3, 32, 32]\nlayers:\n{body}"


def convcalc() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "convcalc")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "convcalc"]


def on_terminal(command: list[str]) -> float:
    """Wall time of ``command`` with stdout a pseudo-terminal (drained as it writes)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm-256color"}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    received = 0
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        received += len(chunk)
    process.wait()
    elapsed = time.perf_counter() - start
    os.close(master)
    if process.returncode != 0 or received == 0:
        raise SystemExit(f"{' '.join(command)} failed on a terminal")
    return elapsed


def on_pipe(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layers", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
    worst = 0.0
    print(f"{'layers':>7} {'pipe':>9} {'terminal':>9} {'ratio':>6}   {'--wide':>9} {'ratio':>6}   ({args.runs} runs, medians)")
    with tempfile.TemporaryDirectory() as folder:
        for layers in args.layers:
            path = os.path.join(folder, f"generated_{layers}.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(generated_spec(layers))
            command = [*convcalc(), "model", path]
            pipe, tty, every = [], [], []
            for _ in range(args.runs):
                pipe.append(on_pipe(command))
                tty.append(on_terminal(command))
                every.append(on_terminal([*command, "--wide"]))
            p, t, a = (statistics.median(x) for x in (pipe, tty, every))
            worst = max(worst, t / p)
            print(f"{layers:>7} {p * 1000:7.0f}ms {t * 1000:7.0f}ms {t / p:5.2f}x   {a * 1000:7.0f}ms {a / p:5.2f}x")
    verdict = "within" if worst <= BUDGET else "OVER"
    print(f"terminal / pipe, worst: {worst:.2f}x ({verdict} the {BUDGET:.0f}x budget)")
    return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
