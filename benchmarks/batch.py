"""`convcalc batch` throughput: rows per second, against merely reading the same CSV in Python.

    python benchmarks/batch.py [--rows 100000 1000000] [--runs 3] [--clock wall|cpu] [--against CHECKOUT]

Two files per size, written to a temporary folder:
- grading: 300 distinct questions (random conv, tconv, maxpool, avgpool rows with k/s/p/d/op/ceil)
  answered by many students, each with an `expect` that is right 70% of the time and a `student`
  column passed through — what a course's answers look like;
- distinct: every row a different question (random sizes), the engine's miss path on every row.
For each: the median time of reading the file with `csv.reader` and touching every row, of
`convcalc.batch.run` + the CSV writer in one process (output to /dev/null), and of a whole
`convcalc batch FILE > /dev/null` process (start-up included; with ``--clock cpu`` the child's CPU time). Budget (the product contract, README "Development"): ≥ 100,000
rows per second in one process.

`--clock cpu` times the in-process runs by this process's CPU time (on a machine shared with other
work, wall time mostly measures the others). `--against CHECKOUT` also times another checkout's
`convcalc.batch` (e.g. a `git worktree add /tmp/before main`) on the same files, alternating
with this one, run by run: a before/after in one run.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from convcalc import batch
from convcalc.render import batch as render

HEADER = ["student", "layer", "in", "k", "s", "p", "d", "op", "ceil", "expect"]


def question(rng: random.Random, size_high: int) -> list[str]:
    layer = rng.choice(["conv", "conv", "tconv", "maxpool", "avgpool"])
    size = str(rng.randint(8, size_high)) if rng.random() < 0.8 else f"{rng.randint(8, size_high)}x{rng.randint(8, size_high)}"
    k, s, p = rng.randint(1, 7), rng.randint(1, 4), rng.randint(0, 3)
    d = str(rng.randint(1, 2)) if layer in ("conv", "maxpool") and rng.random() < 0.3 else ""
    op = str(rng.randint(0, s - 1)) if layer == "tconv" else ""
    ceil = rng.choice(["", "true", "false"]) if layer.endswith("pool") else ""
    return [layer, size, str(k), str(s), str(min(p, k // 2) if layer.endswith("pool") else p), d, op, ceil]


def write_file(path: str, rows: int, kind: str, seed: int = 0) -> None:
    rng = random.Random(seed)
    questions = [question(rng, 300) for _ in range(300)]
    answers: dict[int, str] = {}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for number in range(rows):
            if kind == "grading":
                index = rng.randrange(len(questions))
                cells = questions[index]
                if index not in answers:
                    answers[index] = batch.solve(cells[0], cells[1], dict(zip(["kernel_size", "stride", "padding", "dilation", "output_padding", "ceil_mode"], cells[2:]))).output or "error"
                expect = answers[index] if rng.random() < 0.7 else str(rng.randint(1, 300))
            else:
                cells = question(rng, 10**6)
                expect = str(rng.randint(1, 10**6))
            writer.writerow([f"s{number}", *cells, expect])


def read_only(path: str) -> int:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        count = 0
        for row in csv.reader(handle):
            count += len(row) > 0
    return count - 1


def in_process(path: str) -> int:
    with open(path, encoding="utf-8-sig", newline="") as handle, open(os.devnull, "w") as sink:
        return render.write(batch.run(handle, path), sink, as_json=False, path=path)


def whole_process(path: str) -> float:
    """Seconds of one ``convcalc batch FILE > /dev/null`` process, start-up included: wall time,
    or with ``--clock cpu`` the child's own CPU time (user + system, from ``os.times``)."""
    script = os.path.join(os.path.dirname(sys.executable), "convcalc")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "convcalc"]
    before, start = os.times(), time.perf_counter()
    subprocess.run([*command, "batch", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after, wall = os.times(), time.perf_counter() - start
    if CLOCK is time.perf_counter:
        return wall
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


CLOCK = time.perf_counter


def median(function, path: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = CLOCK()
        function(path)
        times.append(CLOCK() - start)
    return statistics.median(times)


def median_of_own(function, path: str, runs: int) -> float:
    """The median of what ``function`` reports as its own time, run after run."""
    return statistics.median(function(path) for _ in range(runs))


#: `--against`: the in-process run of another checkout, in a fresh interpreter (its own imports).
OTHER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from convcalc import batch
from convcalc.render import batch as render
clock = time.process_time if sys.argv[3] == "cpu" else time.perf_counter
with open(sys.argv[2], encoding="utf-8-sig", newline="") as handle, open(os.devnull, "w") as sink:
    start = clock()
    render.write(batch.run(handle, sys.argv[2]), sink, as_json=False, path=sys.argv[2])
    print(clock() - start)
"""


def other_checkout(checkout: str, clock: str):
    def run(path: str) -> float:
        done = subprocess.run([sys.executable, "-c", OTHER, checkout, path, clock], capture_output=True, text=True, check=True)
        return float(done.stdout)

    return run


def alternating(mine, theirs, path: str, runs: int) -> tuple[float, float]:
    """Median times of ``mine`` (timed here) and ``theirs`` (timing itself), run after run."""
    own, other = [], []
    for _ in range(runs):
        start = CLOCK()
        mine(path)
        own.append(CLOCK() - start)
        other.append(theirs(path))
    return statistics.median(own), statistics.median(other)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-process", action="store_true", help="skip the whole-process timing")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="time in-process runs by wall clock or by CPU time")
    parser.add_argument("--against", metavar="CHECKOUT", help="also time this other checkout's convcalc.batch, alternating")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    other = f" {'--against':>12} {'ratio':>7}" if args.against else ""
    print(f"{'file':18} {'rows':>9} {'read CSV':>14} {'batch (in process)':>20} {'ratio':>7}{other} {'convcalc batch':>16}   ({args.runs} runs, medians, rows/s, {args.clock} clock)")
    slowest = float("inf")
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            for kind in ("grading", "distinct"):
                path = os.path.join(folder, f"{kind}{rows}.csv")
                write_file(path, rows, kind)
                read = median(read_only, path, args.runs)
                if args.against:
                    engine, theirs = alternating(in_process, other_checkout(args.against, args.clock), path, args.runs)
                    other = f" {rows / theirs:12,.0f} {read / theirs:6.2f}×"
                else:
                    engine, other = median(in_process, path, args.runs), ""
                process = "" if args.no_process else f"{rows / median_of_own(whole_process, path, args.runs):14,.0f}"
                slowest = min(slowest, rows / engine)
                print(f"{kind:18} {rows:9,} {rows / read:14,.0f} {rows / engine:20,.0f} {read / engine:6.2f}×{other} {process:>16}")
                os.remove(path)
    verdict = "within" if slowest >= 100_000 else "BELOW"
    print(f"slowest in-process rate: {slowest:,.0f} rows/s ({verdict} the 100,000 rows/s budget)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
