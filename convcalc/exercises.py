"""Solve and check a file of exercises (``examples.yaml``): question, chain, expected answer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .calc import chain
from .errors import ConvcalcError, SpecError
from .numbers import shorten
from .sizes import parse_size, show_size


@dataclass(frozen=True)
class Outcome:
    """One exercise: what was asked, what convcalc answers, what the file expects."""

    question: str
    source: str | None
    answer: str
    expected: str
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "source": self.source,
            "answer": self.answer,
            "expected": self.expected,
            "ok": self.ok,
        }


def load_exercises(path: str) -> list[dict[str, Any]]:
    """The ``examples:`` list of an exercises file (YAML, safe loader)."""
    from .yamlio import load_yaml

    data = load_yaml(path)
    items = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise SpecError(f"{path}: expected a mapping with a non-empty 'examples:' list", file=path)
    return items


def solve(item: Any, number: int) -> Outcome:
    """Solve one exercise: an invalid chain becomes a failed outcome (its error as the answer);
    a malformed entry (not a mapping, a missing key, a bad input size) raises SpecError."""
    if not isinstance(item, dict):
        raise SpecError(f"example {number} must be a mapping with question, input, layers and expect")
    question = str(item.get("question", f"example {number}"))
    missing = [key for key in ("input", "layers", "expect") if key not in item]
    if missing:
        raise SpecError(f"example {number} ({shorten(question, 60)}) lacks {', '.join(missing)}")
    given = item["input"]
    size = parse_size(given if isinstance(given, int) else str(given), what=f"example {number} input")
    spatial = size * 2 if len(size) == 1 else size
    steps = item["layers"] if isinstance(item["layers"], list) else [item["layers"]]
    if not steps:
        raise SpecError(f"example {number} ({shorten(question, 60)}) has no layers; write them as chain steps, like layers: [conv:k=3, maxpool:k=2]")
    expect = item["expect"]
    try:
        results = chain(spatial, [str(step) for step in steps], explain=False)  # the outcome shows sizes only
    except ConvcalcError as error:
        return Outcome(question, item.get("source"), f"error: {error.message}", _expected_text(item), False)
    sizes = [show_size(step.output, len(size) == 1) for step in results]
    if isinstance(expect, list):
        answer = " → ".join([show_size(spatial, len(size) == 1), *sizes])
        ok = [str(e) for e in expect] == sizes
    else:
        answer = sizes[-1]
        ok = str(expect) == sizes[-1]
    if "expect_features" in item:
        features = results[-1].channels * math.prod(results[-1].output)
        answer += f"; features {features}"
        ok = ok and features == item["expect_features"]
    return Outcome(question, item.get("source"), answer, _expected_text(item), ok)


def _expected_text(item: dict[str, Any]) -> str:
    expect = item["expect"]
    text = " → ".join([str(item["input"]), *map(str, expect)]) if isinstance(expect, list) else str(expect)
    if "expect_features" in item:
        text += f"; features {item['expect_features']}"
    return text


def default_path() -> str:
    """The packaged course exercises (``convcalc/data/examples.yaml``), from any folder."""
    from .packaged import exercises_path

    return exercises_path()


def check_file(path: str) -> list[Outcome]:
    """Every exercise of ``path``, solved and compared."""
    return [solve(item, number) for number, item in enumerate(load_exercises(path), start=1)]
