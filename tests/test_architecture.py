"""The layers of the code (docs/ARCHITECTURE.md), checked on every import statement, including the
ones inside functions: the core imports neither the output nor the command line nor torch, rich
or click; the renderers import no command and no torch; only convcalc/verify imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "convcalc"
CORE = ["errors", "formulas", "sizes", "jsonable", "layers", "spec", "yamlio", "torchcall", "graph",
        "diagnosis", "calc", "values", "packaged", "exercises", "builder", "blocks", "budget", "solve", "batch", "why"]  # fmt: skip
#: part of convcalc → what it may not import (convcalc subpackages/modules, or outside packages)
FORBIDDEN = {
    **{part: {"render", "commands", "cli", "options", "verify", "draw", "torch", "rich", "click"} for part in CORE},
    "render": {"commands", "cli", "verify", "torch", "click"},
    "draw": {"commands", "cli", "render", "torch", "click"},
    "verify": {"commands", "cli", "render"},
}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports: outside packages by name, convcalc's by their first part."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package_parts = path.relative_to(PACKAGE).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("convcalc."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = node.module or ""
                found.add(module.split(".")[1] if module.startswith("convcalc.") else module.split(".")[0])
                continue
            base = list(package_parts[: len(package_parts) - (node.level - 1)])
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target:
                found.add(target[0])
            else:  # ``from . import formulas`` at the top level
                found.update(alias.name for alias in node.names)
    return found


def part_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_keeps_to_its_layer(path: Path) -> None:
    part = part_of(path)
    bad = imports(path) & FORBIDDEN.get(part, set())
    assert not bad, f"convcalc/{path.relative_to(PACKAGE)} ({part}) imports {sorted(bad)}; see docs/ARCHITECTURE.md"


def test_only_verify_imports_torch() -> None:
    importers = {part_of(p) for p in PACKAGE.rglob("*.py") if "torch" in imports(p)}
    assert importers <= {"verify"}, importers


def test_the_rule_can_fail() -> None:
    sample = PACKAGE / "layers" / "conv.py"
    assert "errors" in imports(sample) and "formulas" in imports(sample)
    assert "click" in imports(PACKAGE / "cli.py") and "render" in imports(PACKAGE / "cli.py")
