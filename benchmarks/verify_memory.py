"""``verify --max-memory`` is a promise: the real peak resident memory a verify run adds above
``import torch`` against convcalc's estimate (which must stay below the limit to run at all).

Each case runs in a fresh subprocess: ``import torch``, note ``ru_maxrss``, run the command
in-process, note ``ru_maxrss`` again. Cases cover calculator layers, specs and Python models
(torchvision's resnet18 through benchmarks/torchvision_cpu.py; matmul-heavy ones from
benchmarks/memory_models.py) over a matrix of sizes. A case
whose estimate is above the limit must be refused (exit 1) and allocate nearly nothing.

    python benchmarks/verify_memory.py            # table + the worst ratio peak / estimate
    python benchmarks/verify_memory.py --quick    # three cases
    python benchmarks/verify_memory.py --only Linear,attention   # the cases whose label has any of these
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import io, json, resource, sys, contextlib
sys.path.insert(0, {here!r})
import torch
if {torchvision}:
    from torchvision_cpu import import_torchvision
    import_torchvision()
def rss(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))
try:  # reset the peak (VmHWM) to the current size, so that import torch's own peak hides nothing
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    base, peak_of = rss("VmRSS:"), lambda: rss("VmHWM:")
except OSError:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak_of = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from convcalc.cli import run
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = run({args!r})
peak = peak_of()
try:
    estimate = json.loads(out.getvalue())["memory"]["estimated_bytes"]
except Exception:
    estimate = None
print(json.dumps({{"code": code, "added": peak - base, "estimate": estimate}}))
"""

MIB = 1024**2
#: (label, verify arguments, uses torchvision)
CASES: list[tuple[str, list[str], bool]] = [
    ("conv 8² (fixed cost)", ["conv", "--in", "8", "--k", "3"], False),
    ("conv 1ch 2800² k3", ["conv", "--in", "2800", "--k", "3"], False),
    ("conv 1ch 2800² k3 ≤64MiB", ["conv", "--in", "2800", "--k", "3", "--max-memory", "64MiB"], False),
    ("conv 16→16 800² k3", ["conv", "--in", "800", "--k", "3", "--cin", "16", "--cout", "16"], False),
    ("conv 3→64 1024² k7 s2", ["conv", "--in", "1024", "--k", "7", "--s", "2", "--cin", "3", "--cout", "64"], False),
    ("conv 64→64 256² k3 g64", ["conv", "--in", "256", "--k", "3", "--cin", "64", "--cout", "64", "--g", "64"], False),
    ("tconv 16→8 256² k4 s2", ["tconv", "--in", "256", "--k", "4", "--s", "2", "--cin", "16", "--cout", "8"], False),
    ("pool 4000² k3", ["pool", "--in", "4000", "--k", "3"], False),
    ("conv 1ch 16000² k3", ["conv", "--in", "16000", "--k", "3"], False),
    ("spec vgg16 224", ["vgg16"], False),
    ("spec resnet50 b4", ["resnet50", "--batch", "4"], False),
    ("spec unet", ["unet"], False),
    ("python resnet18 224", ["torchvision.models:resnet18", "--input", "3x224x224"], True),
    ("python resnet18 b8", ["torchvision.models:resnet18", "--input", "3x224x224", "--batch", "8"], True),
    ("python vit_b_16", ["torchvision.models:vit_b_16", "--input", "3x224x224"], True),
    ("python mobilenet_v3 b4", ["torchvision.models:mobilenet_v3_small", "--input", "3x224x224", "--batch", "4"], True),
    # matrix products (benchmarks/memory_models.py): torch's packing buffers, meta's import of torch._dynamo
    ("spec wide MLP b256", [os.path.join(HERE, "memory_mlp.yaml"), "--batch", "256"], False),
    ("python Linear 8²", ["memory_models:linear", "--input", "8", "--kwargs", '{"features": 8, "out": 8}'], False),
    ("python Linear 4096² b4096", ["memory_models:linear", "--input", "4096", "--batch", "4096"], False),
    ("python Linear 8192² b1", ["memory_models:linear", "--input", "8192", "--kwargs", '{"features": 8192, "out": 8192}'], False),
    ("python Linear 1024→65536 b2048", ["memory_models:linear", "--input", "1024", "--batch", "2048", "--kwargs", '{"features": 1024, "out": 65536}'], False),
    ("python MLP 3×2048 b8192", ["memory_models:linear", "--input", "2048", "--batch", "8192", "--kwargs", '{"features": 2048, "out": 2048, "layers": 3}'], False),
    ("python attention 1024×512", ["memory_models:attention", "--input", "1024x512"], False),
    ("python attention 4096×512 ≤2GiB", ["memory_models:attention", "--input", "4096x512"], False),
    ("python SDPA 4096×512", ["memory_models:attention", "--input", "4096x512", "--kwargs", '{"fused": true}'], False),
    ("python nn.MHA 2048×512", ["memory_models:mha", "--input", "2048x512"], False),
]


def run(args: list[str], torchvision: bool) -> dict:
    code = CHILD.format(here=HERE, torchvision=torchvision, args=["verify", *args, "--json"])
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"code": "crash", "added": 0, "estimate": None, "stderr": done.stderr[-300:]}
    return json.loads(lines[-1])


def limit_of(args: list[str]) -> int:
    from convcalc.verify import parse_memory

    return parse_memory(args[args.index("--max-memory") + 1]) if "--max-memory" in args else parse_memory("2GiB")


def main() -> None:
    cases = CASES[:3] if "--quick" in sys.argv else CASES
    if "--only" in sys.argv:
        words = sys.argv[sys.argv.index("--only") + 1].split(",")
        cases = [case for case in cases if any(word in case[0] for word in words)]
    worst = 0.0
    print(f"{'case':32} {'exit':>4} {'estimate MiB':>12} {'added MiB':>10} {'limit MiB':>9} {'added/est':>9} {'added/limit':>11}")
    for label, args, torchvision in cases:
        result = run(args, torchvision)
        limit = limit_of(args)
        estimate = result["estimate"]
        ratio = result["added"] / estimate if estimate else float("nan")
        if result["code"] == 0 and estimate:
            worst = max(worst, ratio)
        shown = f"{estimate / MIB:12.1f}" if estimate else f"{'refused' if result['code'] == 1 else '-':>12}"
        print(f"{label:32} {result['code']!s:>4} {shown} {result['added'] / MIB:10.1f} {limit / MIB:9.0f} {ratio:9.2f} {result['added'] / limit:11.2f}")
        if "stderr" in result:
            print("   ", result["stderr"])
    print(f"worst peak / estimate over the runs that ran: {worst:.2f} (the promise holds while it is ≤ 1)")


if __name__ == "__main__":
    main()
