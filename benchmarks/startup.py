"""Start-up budget of `convcalc conv`: whole processes, side by side, medians, as ratios.

    python benchmarks/startup.py [--runs 20]

Times `convcalc conv --in 227 --k 11 --s 4`, `python -c pass` and `python -c "import torch"`
(interleaved, so machine noise hits all three alike) and prints medians and ratios.
Budget (the product contract, README "Development"): convcalc ≤ 4× bare python.

Measure what users get: run it with the python of a non-editable install
(`python3 -m venv /tmp/v && /tmp/v/bin/pip install . && /tmp/v/bin/python benchmarks/startup.py`).
In an editable install (`pip install -e .`) every start of that python, `python -c pass` too, pays
for the editable finder's imports (pathlib …, ~12 ms here), which hides convcalc's own start-up
cost in the ratio (measured: 3.15× editable, 4.45× non-editable, same commit); the script says so
when it runs under one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

BUDGET = 4.0


def convcalc_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "convcalc")
    if os.path.exists(script):
        return [script]
    found = shutil.which("convcalc")
    return [found] if found else [sys.executable, "-m", "convcalc"]


def editable_hook() -> str | None:
    """The editable-install hook of convcalc in this interpreter's site-packages, or None."""
    import glob
    import site

    for folder in site.getsitepackages():
        found = glob.glob(os.path.join(folder, "__editable__*convcalc*"))
        if found:
            return found[0]
    return None


def time_once(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode().strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-torch", action="store_true", help="skip the `import torch` reference")
    args = parser.parse_args()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "convcalc conv --in 227 --k 11 --s 4": [*convcalc_command(), "conv", "--in", "227", "--k", "11", "--s", "4"],
    }
    if not args.no_torch:
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is not None:
                commands['python -c "import torch"'] = [sys.executable, "-c", "import torch"]
        except Exception:
            pass
    out = subprocess.run(commands["convcalc conv --in 227 --k 11 --s 4"], capture_output=True, text=True).stdout.strip()
    if out != "55":
        raise SystemExit(f"convcalc printed {out!r}, expected 55")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm the file cache
        time_once(command)
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(time_once(command))
    hook = editable_hook()
    if hook:
        print(f"note: an editable install ({os.path.basename(hook)}) slows every start of this python, so the ratio"
              " below is too kind; run this with a non-editable install's python (see the docstring)")
    base = statistics.median(times["python -c pass"])
    print(f"{'command':40} {'median':>10} {'× python':>10}   ({args.runs} runs each)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:40} {median * 1000:8.1f}ms {median / base:9.2f}×")
    ratio = statistics.median(times["convcalc conv --in 227 --k 11 --s 4"]) / base
    verdict = "within" if ratio <= BUDGET else "OVER"
    print(f"convcalc conv start-up: {ratio:.2f}× bare python ({verdict} the {BUDGET:.0f}× budget)")
    return 0 if ratio <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
