"""The files shipped inside the package: the course exercises and the example models.

``convcalc model vgg16`` and ``convcalc verify mnist_cnn`` name a packaged model by its stem;
a file of that name in the current folder wins. Nothing here imports the engine.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .graph import Model

#: The folder of the packaged data (``convcalc/data``): ``examples.yaml`` and ``models/*.yaml``.
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
MODELS = os.path.join(DATA, "models")


def exercises_path() -> str:
    """The packaged course exercises (``convcalc examples`` with no argument)."""
    return os.path.join(DATA, "examples.yaml")


def model_names() -> list[str]:
    """The stems of the packaged example models, sorted: ``["alexnet", …, "vgg16"]``."""
    return sorted(name[:-5] for name in os.listdir(MODELS) if name.endswith(".yaml"))


def packaged_model(target: str) -> str | None:
    """The packaged file ``target`` names (``vgg16`` or ``vgg16.yaml``), or None."""
    if os.sep in target or "/" in target:
        return None
    stem = target.removesuffix(".yaml")
    path = os.path.join(MODELS, f"{stem}.yaml")
    return path if stem and os.path.isfile(path) else None


def resolve_spec(target: str) -> tuple[str, str]:
    """``(path to read, name to show in messages)`` for a spec argument.

    A file that exists wins; else a packaged example by its stem (shown as ``vgg16.yaml``);
    else ``target`` itself, so that the loader reports the missing file.
    """
    if os.path.lexists(target):  # a dangling link or a loop is reported by the reader, not as a missing file
        return target, target
    path = packaged_model(target)
    if path is not None:
        return path, os.path.basename(path)
    return target, target


def load_named_model(target: str) -> Model:
    """``convcalc.graph.Model`` for a spec path or a packaged example's stem (used by model and verify)."""
    from .errors import InputError
    from .graph import load_model, model_from_text
    from .yamlio import read_text

    path, shown = resolve_spec(target)
    if path == target:
        if target != "-" and not os.path.lexists(target) and os.sep not in target and "/" not in target:
            from .layers.base import suggest

            raise InputError(
                f"{target}: no such file, and no packaged example of that name{suggest(target, model_names())}"
                f" (packaged: {', '.join(model_names())}; see convcalc model --list)",
                file=target,
            )
        return load_model(path)
    return model_from_text(read_text(path), shown)


def model_list() -> list[tuple[str, str]]:
    """``(stem, "MNIST CNN, input 1×28×28")`` for every packaged model (``convcalc model --list``)."""
    from .sizes import format_shape
    from .spec import load_spec

    lines = []
    for stem in model_names():
        spec = load_spec(os.path.join(MODELS, f"{stem}.yaml"))
        lines.append((stem, f"{spec.name}, input {format_shape(spec.input_shape)}"))
    return lines
