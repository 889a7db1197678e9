"""``verify --emit-spec`` on real models: every torchvision classifier (and a few timm models).

For each model (weights=None, nothing downloaded): verify runs it on cpu, the spec is emitted
(torch.fx, or the chain of leaves when fx cannot trace), and the written spec is loaded again as
``convcalc model`` does: its params, MACs and output shape must equal verify's on the real model.
Emission itself proves the numbers (spec built as torch modules with the model's weights, both run
on the same random input, outputs agree). Each model runs in its own subprocess (memory, timeout).
Needs torchvision (see ``torchvision_cpu.py``) and optionally timm in the running interpreter.
Not part of the test suite.

    python benchmarks/emit_models.py                         # every torchvision classifier
    python benchmarks/emit_models.py --only resnet18,densenet121
    python benchmarks/emit_models.py --timm resnet18,efficientnet_b0 --size 160
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

#: Inputs other than --size: inception needs at least 75×75 and is made for 299.
SIZES = {"inception_v3": 299}
#: The auxiliary heads of these run only in training; without them every parameter is used.
KWARGS: dict[str, dict[str, Any]] = {"inception_v3": {"aux_logits": False, "init_weights": False},
                                     "googlenet": {"aux_logits": False, "init_weights": False}}
#: Vision transformers check the input size against the one they were built for.
FIXED = ("vit_", "swin", "maxvit")


def one(source: str, name: str, size: int) -> dict[str, Any]:
    """Verify, emit and reload one model; the row of the table."""
    import torch

    from convcalc import load_model
    from convcalc.verify import VerifyError, verify_python
    from convcalc.verify.emission import emit_spec
    from convcalc.verify.fx_emission import trace

    torch.manual_seed(0)
    torch.set_num_threads(1)  # one model per process, several processes on a shared machine
    if source == "tv":
        from torchvision_cpu import import_torchvision

        tv = import_torchvision()
        model = tv.models.get_model(name, weights=None, **KWARGS.get(name, {}))
    else:
        from torchvision_cpu import import_torchvision

        import_torchvision()  # timm imports torchvision, which needs the same fake-kernel skip
        import timm

        model = timm.create_model(name, pretrained=False)
    size = SIZES.get(name, 224 if name.startswith(FIXED) or source == "timm" and "vit" in name else size)
    if source == "timm" and _fixed_size(model, size):  # a transformer's patch embedding checks the size it was made for
        size = model.pretrained_cfg["input_size"][-1]
    row: dict[str, Any] = {"model": f"{source}.{name}", "input": size}
    graph = trace(torch, model)
    row["traced"] = not isinstance(graph, str)
    if isinstance(graph, str):
        row["trace_error"] = graph[:160]
    with contextlib.redirect_stdout(io.StringIO()):
        report = verify_python(model, (3, size, size), max_memory="16GiB")
    row.update(params=report.totals.params, macs=report.totals.macs, verify_ok=report.ok)
    folder = tempfile.mkdtemp(prefix="emit-")
    path = os.path.join(folder, f"{name}.yaml")
    try:
        rows = emit_spec(report, path)
    except VerifyError as error:
        row.update(emitted=False, reason=error.message.removeprefix("--emit-spec: ")[:300])
        return row
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    summary = load_model(path).summary()
    out = tuple(model.eval()(torch.zeros(1, 3, size, size)).shape)
    row.update(
        emitted=True, rows=rows, blocks="\nblocks:" in text,
        round_trip=(summary.totals.params, summary.totals.macs, tuple(summary.output_shape)) == (report.totals.params, report.totals.macs, out),
        spec_params=summary.totals.params, spec_macs=summary.totals.macs,
    )
    os.remove(path)
    os.rmdir(folder)
    return row


def _fixed_size(model: Any, size: int) -> bool:
    """Whether a timm model refuses a size×size input (it was made for its pretrained_cfg's input size)."""
    import torch

    cfg = getattr(model, "pretrained_cfg", None) or {}
    if "input_size" not in cfg or cfg["input_size"][-1] == size:
        return False
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    except Exception:  # noqa: BLE001  any refusal of the size: use the model's own
        return True
    return False


def names(args: argparse.Namespace) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not args.timm_only:
        from torchvision_cpu import import_torchvision

        tv = import_torchvision()
        out += [("tv", n) for n in sorted(tv.models.list_models(module=tv.models))]
    if args.timm:
        out += [("timm", n) for n in args.timm.split(",")]
    if args.only:  # in the order given
        known = dict((n, s) for s, n in out)
        out = [(known[n], n) for n in args.only.split(",") if n in known]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--timm", default="", help="comma-separated timm model names to add")
    parser.add_argument("--timm-only", action="store_true")
    parser.add_argument("--size", type=int, default=224, help="input H = W (transformers keep 224)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per model")
    parser.add_argument("--one", nargs=2, metavar=("SOURCE", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.size)))
        return
    print("| model | verify | traced | emitted | blocks | rows | round-trip | params | MACs | reason if refused | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    counts = {"models": 0, "emitted": 0, "round_trip": 0, "traced": 0, "verify_ok": 0}
    for source, name in names(args):
        start = time.perf_counter()
        command = [sys.executable, os.path.abspath(__file__), "--one", source, name, "--size", str(args.size)]
        try:
            done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=args.timeout)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if lines else {"model": f"{source}.{name}", "reason": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
        except subprocess.TimeoutExpired:
            row = {"model": f"{source}.{name}", "reason": f"timed out after {args.timeout} s"}
        seconds = time.perf_counter() - start
        counts["models"] += 1
        counts["traced"] += bool(row.get("traced"))
        counts["emitted"] += bool(row.get("emitted"))
        counts["round_trip"] += bool(row.get("round_trip"))
        counts["verify_ok"] += bool(row.get("verify_ok"))
        mark = {True: "✓", False: "✗", None: "-"}
        reason = row.get("reason", "") or ("" if row.get("traced", True) else f"fx: {row.get('trace_error', '')}")
        print(f"| {row['model']} | {mark[row.get('verify_ok')]} | {mark[row.get('traced')]} | {mark[row.get('emitted')]} | {mark[row.get('blocks') if row.get('emitted') else None]} |"
              f" {row.get('rows', '')} | {mark[row.get('round_trip')]} | {row.get('params', 0):,} | {row.get('macs', 0):,} |"
              f" {reason.replace('|', '/')} | {seconds:.0f} |", flush=True)
    print(f"\n{counts['models']} models: verify agrees on {counts['verify_ok']} (no ✗), {counts['traced']} traced by fx, {counts['emitted']} emitted, {counts['round_trip']} round-trip")


if __name__ == "__main__":
    main()
