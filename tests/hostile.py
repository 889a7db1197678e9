"""Helpers of the hostile-input tests: run the real console script in a subprocess, in a folder
of prepared files, and check the README's contract for any input a user can give.

The contract (README, "Exit codes"): the exit code of the table, no traceback and no internal
error, the error as one line of stderr under MAX_LINE characters (verify may add a ``note:``), a bounded time, and no file
of the folder created, changed or removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 300
#: Generous: a case that takes this long is unbounded, not slow (the machine may be busy).
SECONDS = 60.0


def console() -> list[str]:
    """The installed ``convcalc`` script next to this Python (else ``python -m convcalc``)."""
    script = Path(sys.executable).with_name("convcalc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "convcalc"]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    seconds: float


def run(
    args: Sequence[str], folder: Path, *, stdin: bytes | None = None, shell: str | None = None, timeout: float = SECONDS,
    path: Sequence[Path] = (),
) -> Outcome:
    """``convcalc *args`` in ``folder`` with this checkout first on the path (after ``path``, for
    stand-in packages); ``shell`` runs a shell line instead (``{convcalc}`` stands for the script),
    for pipes and redirections."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), str(ROOT)]), "COLUMNS": "120"}
    start = time.perf_counter()
    if shell is not None:
        command = " ".join(console())
        done = subprocess.run(
            ["bash", "-c", shell.replace("{convcalc}", command)], cwd=folder, env=env, capture_output=True, timeout=timeout, check=False
        )
    else:
        done = subprocess.run(
            [*console(), *args], cwd=folder, env=env, input=stdin if stdin is not None else b"",
            capture_output=True, timeout=timeout, check=False,
        )
    seconds = time.perf_counter() - start
    return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"), seconds)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """name → (size, mtime_ns) of every regular file under ``folder``."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


def check_refusal(outcome: Outcome, expected: int, needle: str | None = None) -> str:
    """The contract of a refusal: exit ``expected``, one short line on stderr, no traceback."""
    both = outcome.out + outcome.err
    assert "Traceback" not in both, both[-2000:]
    assert "internal error" not in both, both[-2000:]
    assert outcome.code == expected, f"exit {outcome.code}, wanted {expected}: {outcome.err[-500:]!r}"
    lines = outcome.err.splitlines()
    errors = [line for line in lines if not line.startswith("note: ")]  # verify adds a note on why torch did not run
    assert len(errors) == 1, f"{len(lines)} lines on stderr: {outcome.err[:600]!r}"
    for line in lines:
        assert len(line) <= MAX_LINE, f"a line of {len(line):,} characters: {line[:200]!r}…"
    assert errors[0].startswith("error: "), errors[0]
    if needle is not None:
        assert needle in errors[0], errors[0]
    assert outcome.seconds < SECONDS
    return errors[0]
