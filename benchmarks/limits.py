"""Hostile and large inputs are refused (or answered) in bounded time.

    python benchmarks/limits.py

The tests check *what* convcalc answers for each of these inputs; this script checks *how long*
it takes, against the budgets below (seconds, in-process, one run each: a shared CI machine
makes wall-clock limits inside tests flaky, so they live here). Exit 1 if any is over budget.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from convcalc.errors import ConvcalcError  # noqa: E402
from convcalc.graph import load_model  # noqa: E402

UNET = os.path.join(HERE, "..", "examples", "models", "unet.yaml")


def alias_bomb() -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(["input: [1, 28, 28]", "layers:", "  - ReLU", *lines]) + "\n"


def nested_blocks() -> str:
    lines = ["input: [3, 8, 8]", "blocks:"]
    for level in range(1000):
        lines += [f"  b{level}:", "    layers:", f"      - b{level + 1}"]
    return "\n".join([*lines, "  b1000:", "    layers: [ReLU]", "layers:", "  - b0"]) + "\n"


SPECS: dict[str, tuple[str, float]] = {
    "alias bomb": (alias_bomb(), 10.0),
    "a million layers": ("input: [1, 28, 28]\nlayers:\n" + "  - ReLU\n" * 1_000_000, 10.0),
    "blocks nested 1,000 deep": (nested_blocks(), 5.0),
    "10,000 × 10,000 layers": (
        "input: [3, 8, 8]\nblocks:\n  r:\n    layers:\n      - ReLU: {}\n        repeat: 10000\n"
        "layers:\n  - r: {}\n    repeat: 10000\n",
        2.0,
    ),
    "2**30 layers by doubling": (
        "input: [3, 8, 8]\nblocks:\n"
        + "".join(f"  b{i}:\n    layers: [b{i + 1}, b{i + 1}]\n" for i in range(30))
        + "  b30:\n    layers: [ReLU]\nlayers:\n  - b0\n",
        2.0,
    ),
    "repeat from a param": (
        "input: [3, 8, 8]\nblocks:\n  many:\n    params: [n]\n    layers:\n      - ReLU: {}\n        repeat: $n\n"
        "layers:\n  - many: {n: 10000}\n    repeat: 10000\n",
        2.0,
    ),
}


def refused(text: str) -> Callable[[], object]:
    def run() -> object:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write(text)
        try:
            load_model(handle.name).summary()
        except ConvcalcError as error:
            return error
        finally:
            os.unlink(handle.name)
        raise SystemExit("expected a refusal")

    return run


def main() -> int:
    cases: list[tuple[str, Callable[[], object], float]] = [(name, refused(text), budget) for name, (text, budget) in SPECS.items()]
    cases.append(("U-Net --find-sizes 64..1024", lambda: load_model(UNET).find_sizes(64, 1024), 0.5))
    over = 0
    for name, case, budget in cases:
        start = time.perf_counter()
        case()
        seconds = time.perf_counter() - start
        over += seconds > budget
        print(f"{name:32} {seconds:7.3f} s  (budget {budget:g} s){'  OVER' if seconds > budget else ''}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
