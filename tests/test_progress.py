"""The progress helper: drawn on stderr only on a terminal, only for slow work, never on stdout."""

from __future__ import annotations

import io
import itertools

import pytest

from convcalc.render import progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> tuple[Tty, Tty]:
    """stdout and stderr as terminals (patched in the test itself: pytest's capture swaps the
    streams back between a fixture's setup and the test)."""
    out, err = Tty(), Tty()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return out, err


def clock(monkeypatch: pytest.MonkeyPatch, step: float) -> None:
    """Each clock read advances ``step`` seconds: slow (or quick) work without waiting."""
    ticks = itertools.count()
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(ticks) * step)


def test_slow_work_on_a_terminal_shows_progress_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = on_a_terminal(monkeypatch)
    out, err = terminal
    clock(monkeypatch, 0.05)
    assert list(progress.track(range(5000), "trying sizes")) == list(range(5000))
    assert "trying sizes" in err.getvalue()
    assert out.getvalue() == ""


def test_quick_work_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = on_a_terminal(monkeypatch)
    out, err = terminal
    clock(monkeypatch, 1e-6)
    assert sum(progress.track(range(100_000), "quick")) == sum(range(100_000))
    assert err.getvalue() == "" and out.getvalue() == ""


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_progress_without_escape_codes(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    terminal = on_a_terminal(monkeypatch)
    _, err = terminal
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    clock(monkeypatch, 0.05)
    list(progress.track(range(5000), "slow"))
    assert err.getvalue() == ""


def test_no_progress_on_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    clock(monkeypatch, 0.05)
    with progress.progress(5000, "batch") as bar:
        for _ in range(5000):
            bar.advance()
    assert err.getvalue() == "" and bar.done == 5000


def test_find_sizes_through_the_command_shows_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from convcalc.cli import run
    from convcalc.packaged import load_named_model

    terminal = on_a_terminal(monkeypatch)
    out, err = terminal
    clock(monkeypatch, 0.2)
    assert run(["model", "mnist_cnn", "--find-sizes", "1..400", "--json"]) == 0
    assert "trying sizes" in err.getvalue()
    assert json.loads(out.getvalue()) == {"sizes": load_named_model("mnist_cnn").find_sizes(1, 400)}  # stdout: JSON only


def test_a_long_step_gets_a_spinner_and_a_short_one_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    _, err = on_a_terminal(monkeypatch)
    with progress.status("quick step", after=0.5):
        pass
    assert err.getvalue() == ""
    with progress.status("long step", after=0.01):
        time.sleep(0.3)
    assert "long step" in err.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with progress.status("on a pipe", after=0.0):
        time.sleep(0.1)
    assert pipe.getvalue() == ""


def test_batch_shows_progress_on_a_terminal_and_writes_the_same_rows(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from convcalc.cli import run

    path = tmp_path / "answers.csv"
    path.write_text("layer,in,k,s,expect\n" + "".join(f"conv,{20 + i % 200},3,{1 + i % 3},1\n" for i in range(5000)), encoding="utf-8")
    piped_out, piped_err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", piped_out)
    monkeypatch.setattr("sys.stderr", piped_err)
    clock(monkeypatch, 0.3)
    code = run(["batch", str(path)])
    assert piped_err.getvalue() == ""
    out, err = on_a_terminal(monkeypatch)
    assert run(["batch", str(path)]) == code
    assert "answering rows" in err.getvalue()
    assert out.getvalue() == piped_out.getvalue() and out.getvalue().count("\n") == 5001
