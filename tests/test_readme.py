"""Every ``$ convcalc …`` transcript in README.md runs and prints what the README shows.

The rule, for the ```` ```console ```` blocks of README.md:
- a line ``$ convcalc ARGS`` starts a transcript; the lines after it, up to the next ``$`` line or
  the end of the block, are its output: stdout, then stderr, as a pipe shows them (plain text);
- a line that is only ``...`` (indented or not) stands for zero or more lines left out;
- every other line must match exactly (trailing spaces aside), in order, with nothing between;
- the exit code is 1 when the transcript shows an ``error:`` line, else 0, unless the command
  line states it as a shell comment: ``$ convcalc conv --in 28 --k 3 --s 0   # exit 2``;
- the command runs in a folder that holds the repository's ``examples/`` and ``examples.yaml``
  plus the files of ``tests/data/``;
- ``torch X.Y.Z…`` is compared without the version; transcripts of ``verify`` need torch.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ELIDED = "..."
TORCH_VERSION = re.compile(r"torch \d+\.\d+\S*")


@dataclass(frozen=True)
class Transcript:
    line: int  # README line of the `$ convcalc` command
    args: tuple[str, ...]
    expected: tuple[str, ...]
    exit_code: int | None = None  # as stated by a ``# exit N`` comment on the command line

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def transcripts(text: str) -> list[Transcript]:
    found: list[Transcript] = []
    in_console = False
    current: tuple[int, list[str], list[str], int | None] | None = None

    def close() -> None:
        nonlocal current
        if current is not None:
            found.append(Transcript(current[0], tuple(current[1]), tuple(current[2]), current[3]))
        current = None

    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            close()
            in_console = line.strip() == "```console"
            continue
        if not in_console:
            continue
        if line.startswith("$ "):
            close()
            stated = re.search(r"#\s*exit (\d+)\s*$", line)
            words = shlex.split(line[2:], comments=True)
            if words and words[0] == "convcalc":
                current = (number, words[1:], [], int(stated.group(1)) if stated else None)
        elif current is not None:
            current[2].append(line.rstrip())
    close()
    return found


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """``expected`` (with ``...`` lines) against ``actual``, as the module docstring says."""
    parts: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == ELIDED:
            parts.append([])
        else:
            parts[-1].append(line)
    first, *middle, last = parts if len(parts) > 1 else (parts[0], parts[0])
    if len(parts) == 1:
        return list(expected) == actual
    if actual[: len(first)] != first or len(actual) < len(first) + len(last):
        return False
    if last and actual[len(actual) - len(last) :] != last:
        return False
    at, end = len(first), len(actual) - len(last)
    for part in middle:
        for start in range(at, end - len(part) + 1):
            if actual[start : start + len(part)] == part:
                at = start + len(part)
                break
        else:
            return False
    return True


README = transcripts((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_transcripts() -> None:
    commands = {t.args[0] for t in README}
    assert {"conv", "pool", "tconv", "chain", "model", "examples", "verify"} <= commands
    assert len(README) >= 15


def test_the_elision_rule() -> None:
    assert matches(("a", "...", "d"), ["a", "b", "c", "d"])
    assert matches(("a", "...", "b"), ["a", "b"])
    assert matches(("...", "c", "...", "e"), ["a", "c", "d", "e"])
    assert not matches(("a", "d"), ["a", "b", "d"])
    assert not matches(("a", "...", "c"), ["a", "b", "c", "x"])
    assert not matches(("a", "...", "x", "...", "c"), ["a", "b", "c"])
    assert not matches(("a", "...", "a"), ["a"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", where / "examples")
    shutil.copy(ROOT / "examples.yaml", where / "examples.yaml")
    for data in (ROOT / "tests" / "data").iterdir():
        shutil.copy(data, where / data.name)
    return where


@pytest.mark.parametrize("transcript", README, ids=[t.id for t in README])
def test_readme_transcript(transcript: Transcript, terminal, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if transcript.args[0] == "verify":
        pytest.importorskip("torch")
    monkeypatch.chdir(folder)
    code, out, err = terminal(transcript.args, rich=False)
    actual = [TORCH_VERSION.sub("torch <version>", line.rstrip()) for line in (out + err).splitlines()]
    expected = tuple(TORCH_VERSION.sub("torch <version>", line) for line in transcript.expected)
    while expected and not expected[-1]:
        expected = expected[:-1]
    shown = "\n".join(actual)
    assert matches(expected, actual), f"{transcript.id}: `convcalc {shlex.join(transcript.args)}` prints\n{shown}"
    wanted = 1 if any(line.startswith("error:") for line in expected) else 0
    if transcript.exit_code is not None:
        wanted = transcript.exit_code
    assert code == wanted, f"{transcript.id}: exit {code}, the README implies {wanted}"
