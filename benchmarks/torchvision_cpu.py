"""Import torchvision's classification models next to a CPU-only torch (test and benchmark use only).

The registry's torchvision that pairs with the installed torch is a CUDA build: with the CPU
wheel its C++ ops are missing, and ``torchvision/_meta_registrations.py`` fails while it
registers fake kernels for ``torchvision::nms`` and ``torchvision::qnms``. The classification
models need none of those ops, so while torchvision is imported those two registrations are
skipped, and only when ``torchvision.extension._has_ops()`` is false. Nothing is installed.
"""

from __future__ import annotations

import sys
from typing import Any

SKIPPED = ("torchvision::nms", "torchvision::qnms")


def import_torchvision() -> Any:
    """``torchvision``, imported with the two fake-kernel registrations skipped if it has no ops."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"]
    import torch
    import torch.library

    original = torch.library.register_fake

    def register_fake(op: Any, *args: Any, **kwargs: Any) -> Any:
        extension = sys.modules.get("torchvision.extension")  # imported before the registrations run
        if isinstance(op, str) and op in SKIPPED and extension is not None and not extension._has_ops():
            return lambda fn: fn  # the decorator leaves the function as it is and registers nothing
        return original(op, *args, **kwargs)

    torch.library.register_fake = register_fake
    try:
        import torchvision
    finally:
        torch.library.register_fake = original
    return torchvision
