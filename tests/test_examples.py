"""examples.yaml: every course exercise is answered correctly, and the file format is checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from convcalc.cli import run
from convcalc.exercises import check_file

ROOT = Path(__file__).resolve().parent.parent


def test_every_course_exercise_agrees() -> None:
    outcomes = check_file(str(ROOT / "examples.yaml"))
    assert [o.question for o in outcomes if not o.ok] == []
    assert len(outcomes) >= 12


def test_examples_yaml_holds_the_course_exercises() -> None:
    items = yaml.safe_load((ROOT / "examples.yaml").read_text())["examples"]
    answers = {(str(i["input"]), tuple(i["layers"])): i["expect"] for i in items}
    assert answers[("227", ("conv:k=11,s=4,p=0",))] == 55
    assert answers[("64", ("conv:k=7,s=2,p=0",))] == 29
    assert answers[("32", ("conv:k=5,s=1,p=2",))] == 32
    assert answers[("32x64", ("conv:k=5,s=1,p=0",))] == "28x60"
    assert answers[("64x32", ("conv:k=3,s=1,p=1",))] == "64x32"
    assert answers[("36", ("conv:k=9",))] == 28
    assert answers[("14", ("conv:k=5",))] == 10
    assert answers[("2", ("tconv:k=3",))] == 4
    assert answers[("3", ("tconv:k=3,s=1,p=2",))] == 1
    assert answers[("3", ("tconv:k=3,s=3,p=0,op=1",))] == 10
    mnist = next(i for i in items if i["expect"] == [26, 14, 12, 7])
    assert mnist["expect_features"] == 7 * 7 * 32


def test_examples_command_prints_marks_and_exits_0(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert run(["examples"]) == 0
    out = capsys.readouterr().out
    assert out.count("✓") >= 12 and "✗" not in out


def test_a_wrong_expectation_is_flagged_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "homework.yaml"
    path.write_text(
        "examples:\n"
        "  - {question: right, input: 28, layers: ['conv:k=5'], expect: 24}\n"
        "  - {question: wrong, input: 28, layers: ['conv:k=5', 'maxpool:k=2'], expect: [24, 13]}\n"
        "  - {question: invalid, input: 4, layers: ['conv:k=5'], expect: 1}\n"
    )
    assert run(["examples", str(path)]) == 1
    out = capsys.readouterr().out
    assert "✓ 1. right" in out and "✗ 2. wrong" in out and "✗ 3. invalid" in out
    assert "expected: 28 → 24 → 13" in out
    assert run(["examples", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [e["ok"] for e in data["examples"]] == [True, False, False] and data["ok"] is False


@pytest.mark.parametrize(
    "text, needle",
    [
        ("examples: []\n", "non-empty 'examples:' list"),
        ("- 1\n", "non-empty 'examples:' list"),
        ("examples:\n  - {question: q, input: 28}\n", "lacks layers, expect"),
        ("examples:\n  - {question: q, input: 0, layers: [conv:k=3], expect: 1}\n", "at least 1"),
    ],
)
def test_malformed_example_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert run(["examples", str(path)]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
