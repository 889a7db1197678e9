"""`convcalc why` on hostile text: the scan stays linear, as ratios side by side.

    python benchmarks/why.py [--mb 3] [--runs 3]

For each text of about ``--mb`` MB — a benign log (one torch error at its end), and each
pattern's literal prefix repeated (near-matches that a backtracking pattern would chew on) —
times ``convcalc.why.explain`` and, side by side, ``convcalc.why.clean`` alone (one linear pass
over the same text: strip colour codes, collapse whitespace). Prints the medians and the ratio
explain / clean. Linear means the ratio stays a small constant across texts (every pattern is one
more linear pass); catastrophic backtracking would make one text take seconds to hours. Note that
only the last 1 MiB (``MAX_CHARS``) of a text is read, so the time is bounded whatever the size.
"""

from __future__ import annotations

import argparse
import statistics
import time

from convcalc.why import MAX_CHARS, UnrecognisedMessage, clean, explain

PIECES = {
    "benign log": "epoch 3 step 120 loss 0.4312 lr 0.001\n",
    "mat1 prefix": "mat1 and mat2 shapes cannot be multiplied (" + "1" * 30 + "x",
    "weight list": "Given groups=1, weight of size [" + "1, " * 40 + "expected input[",
    "input size list": "Given input size: (" + "1x" * 40 + ". Calculated output size: (",
    "output padding": "output padding must be smaller than either stride or dilation, but got" + " output_padding_height: 1" * 8,
    "shape list": "shape '[" + "-1, " * 30 + "]' is invalid for input of size ",
    "ANSI": "\x1b[" + "1;" * 40,
    "digits": "9" * 1000 + " ",
}


def timed(function, text: str) -> float:
    start = time.perf_counter()
    try:
        function(text)
    except UnrecognisedMessage:
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = int(args.mb * 1_000_000)
    print(f"{'text':<18} {'explain s':>10} {'clean s':>10} {'ratio':>7}   (MAX_CHARS = {MAX_CHARS:,})")
    for name, piece in PIECES.items():
        text = piece * (size // len(piece))
        if name == "benign log":
            text += "RuntimeError: running_mean should contain 32 elements not 16\n"
        full = [timed(explain, text) for _ in range(args.runs)]
        base = [timed(clean, text) for _ in range(args.runs)]
        a, b = statistics.median(full), statistics.median(base)
        print(f"{name:<18} {a:>10.4f} {b:>10.4f} {a / b:>7.1f}")


if __name__ == "__main__":
    main()
