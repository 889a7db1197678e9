"""Structural promises: the core stays free of torch/rich/click, the layer catalog is complete."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc.layers import catalog

LECTURE = Path(__file__).resolve().parent.parent / "examples" / "models" / "lecture_cnn.yaml"


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_core_imports_none_of_torch_rich_click() -> None:
    modules = imported_after(
        "import convcalc, convcalc.calc, convcalc.graph, convcalc.spec, convcalc.diagnosis;"
        f" m = convcalc.load_model({str(LECTURE)!r}); m.summary()"
    )
    assert not {"torch", "rich", "click"} & modules


def test_calculator_command_imports_neither_torch_nor_rich_nor_yaml() -> None:
    modules = imported_after("from convcalc.cli import run; run(['conv', '--in', '227', '--k', '11', '--s', '4'])")
    assert not {"torch", "rich", "yaml"} & modules


def test_catalog_matches_the_registered_families() -> None:
    registered = {name for module in catalog.family_modules() for name in importlib.import_module(f"convcalc.layers.{module}").LAYERS}
    assert registered == set(catalog.CATALOG)


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_every_catalog_name_is_a_torch_module_or_a_merge(name: str) -> None:
    """…or a family that says it has none (Permute, Scale), which verify builds as its own module."""
    torch = pytest.importorskip("torch")
    from convcalc.layers.base import lookup
    from convcalc.verify.specs import _merge_classes

    family = lookup(name)[1]
    if catalog.CATALOG[name] == "merge" or family.OWN_MODULE:
        assert name in _merge_classes(torch)
        # a torch.nn class of that name: verify's module is that class, called as a spec calls a layer (MultiheadAttention)
        assert not hasattr(torch.nn, name) or issubclass(_merge_classes(torch)[name], getattr(torch.nn, name))
        return
    assert hasattr(torch.nn, name)


def test_every_layer_type_is_named_in_the_readme() -> None:
    """The README's "Layers known" names every type the catalog has (a family without its documentation is a
    layer users cannot find); 1d/2d/3d families may be written once (``MaxPool/AvgPool … 1d/2d/3d``)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")

    def named(name: str) -> bool:
        if re.search(rf"\b{re.escape(name)}\b", readme):
            return True
        stem, dims = name[:-2], name[-2:]
        # "InstanceNorm1d/2d/3d", "Dropout/1d/2d/3d", "CircularPad 1d/2d/3d", "AdaptiveMaxPool 1d/2d/3d" (after a list of stems)
        return dims in ("1d", "2d", "3d") and bool(re.search(rf"\b{re.escape(stem)}(?:[/ ,]|[123]d/)[^.]*?\b{dims[0]}d\b", readme))

    missing = [n for n in catalog.CATALOG if not named(n)]
    assert not missing, missing
