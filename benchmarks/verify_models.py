"""verify on real models: every torchvision classifier and one model of each timm family.

For each model (weights=None, nothing downloaded): the params verify prints against
``sum(p.numel())``, and the MACs it prints against FlopCounterMode's whole-model count (÷ 2) on
``meta``, where the fused attention kernels of CPU run as the matmuls it counts (with grad
enabled there if FlopCounterMode trips under no_grad, as it does on timm's PiT). verify runs on
cpu for models up to ``--cpu-params`` parameters, on meta above. Not part of the test suite.

    python benchmarks/verify_models.py                 # everything (tens of minutes on 2 cores)
    python benchmarks/verify_models.py --only resnet18,vit_b_16
    python benchmarks/verify_models.py --timm-only / --torchvision-only
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torchvision_cpu import import_torchvision  # noqa: E402

SIZES = {"inception_v3": 299}
TIMM_SIZE = 224


@contextlib.contextmanager
def _block_params_on_cpu(torch: Any) -> Iterator[None]:
    """torchvision's RegNet builders compute their stage widths with torch ops ending in
    ``.tolist()`` (``BlockParams.from_init_params``), which has no data on meta: that arithmetic
    of a few numbers runs on CPU, the model itself is still built on meta."""
    regnet = sys.modules.get("torchvision.models.regnet")
    block = getattr(regnet, "BlockParams", None)
    original = block.__dict__.get("from_init_params") if block is not None else None
    if not isinstance(original, classmethod):
        yield
        return

    def on_cpu(cls: Any, *args: Any, **kwargs: Any) -> Any:
        with torch.device("cpu"):
            return original.__func__(cls, *args, **kwargs)

    block.from_init_params = classmethod(on_cpu)
    try:
        yield
    finally:
        block.from_init_params = original


def build_on_meta(torch: Any, build: Any) -> Any:
    """``build()`` under ``torch.device("meta")`` (parameters without memory)."""
    with _block_params_on_cpu(torch), torch.device("meta"):
        return build()


def oracle(torch: Any, build: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    """(sum of p.numel(), FlopCounterMode's whole-model flops // 2 on meta)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_on_meta(torch, build)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.empty((1, *shape), device="meta")
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    except AssertionError:  # FlopCounterMode's module tracker under no_grad (timm's PiT)
        with FlopCounterMode(display=False) as counter:
            model(x)
    return params, counter.get_total_flops() // 2


def judge(torch: Any, name: str, build: Any, target: str, shape: tuple[int, ...], cpu_params: int) -> dict[str, Any]:
    from convcalc.verify import VerifyError, verify_python

    start = time.perf_counter()
    row: dict[str, Any] = {"model": name}
    try:
        params, macs = oracle(torch, build, shape)
        device = "cpu" if params <= cpu_params else "meta"
        model = build()
        with contextlib.redirect_stdout(io.StringIO()):
            report = verify_python(model, shape, device=device, max_memory="16GiB")
        row.update(
            device=device, params=report.totals.params, oracle_params=params, macs=report.totals.macs, oracle_macs=macs,
            ok=report.ok and report.totals.params == params and report.totals.macs == macs,
            judged=sum(1 for c in report.checks if c.known), unjudged=sum(1 for c in report.checks if not c.known and not c.own),
            own=sum(c.macs for c in report.checks if c.own), verdict_ok=report.ok,
        )
    except (VerifyError, Exception) as error:  # noqa: BLE001  a benchmark records, never stops
        row.update(ok=False, error=f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}")
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def torchvision_models() -> list[tuple[str, Any, tuple[int, ...]]]:
    tv = import_torchvision()
    names = tv.models.list_models(module=tv.models)
    out = []
    for name in sorted(names):
        size = SIZES.get(name, 224)
        kwargs = {"weights": None, **({"aux_logits": False, "init_weights": False} if name == "inception_v3" else {})}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=False)
        out.append((f"tv.{name}", (lambda n=name, k=kwargs: tv.models.get_model(n, **k)), (3, size, size)))
    return out


def timm_models() -> list[tuple[str, Any, tuple[int, ...]]]:
    import timm
    from timm.models import _registry

    chosen = []
    for module, names in sorted(_registry._module_to_models.items()):
        names = sorted(names)
        small = [n for n in names if any(w in n for w in ("tiny", "small", "nano", "pico", "atto", "_t_", "_s_", "xxs", "xs"))]
        name = (small or names)[0]
        chosen.append((f"timm.{name}", (lambda n=name: timm.create_model(n, pretrained=False)), None))
    return chosen


def input_of(build: Any, shape: Any) -> tuple[int, ...]:
    if shape is not None:
        return shape
    import torch

    model = build_on_meta(torch, build)
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return tuple(cfg.get("input_size", (3, TIMM_SIZE, TIMM_SIZE)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--timm-only", action="store_true")
    parser.add_argument("--torchvision-only", action="store_true")
    parser.add_argument("--cpu-params", type=int, default=60_000_000)
    args = parser.parse_args()
    import torch

    import_torchvision()
    models = [] if args.timm_only else torchvision_models()
    models += [] if args.torchvision_only else timm_models()
    if args.only:
        wanted = set(args.only.split(","))
        models = [m for m in models if m[0].split(".", 1)[1] in wanted]
    print(f"| model | device | params | = Σnumel | MACs | = FlopCounterMode (meta) | judged/unjudged leaves | own-forward MACs | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for name, build, shape in models:
        try:
            shape = input_of(build, shape)
        except Exception as error:  # noqa: BLE001
            print(f"| {name} | - | build failed: {type(error).__name__}: {str(error)[:80]} |")
            continue
        row = judge(torch, name, build, name, shape, args.cpu_params)
        if "error" in row:
            bad += 1
            print(f"| {name} | - | ERROR {row['error']} | | | | | | {row['seconds']} |", flush=True)
            continue
        bad += not row["ok"]
        same_p = "✓" if row["params"] == row["oracle_params"] else f"✗ {row['oracle_params']:,}"
        same_m = "✓" if row["macs"] == row["oracle_macs"] else f"✗ {row['oracle_macs']:,} ({row['macs'] - row['oracle_macs']:+,})"
        print(f"| {name} | {row['device']} | {row['params']:,} | {same_p} | {row['macs']:,} | {same_m} |"
              f" {row['judged']}/{row['unjudged']} | {row['own']:,} | {row['seconds']} |", flush=True)
    print(f"\n{len(models)} models, {bad} not ok")


if __name__ == "__main__":
    main()
