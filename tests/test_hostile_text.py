"""Text that comes from the user is data: on a terminal its control characters and escape
sequences are shown (``\\x1b[2J``), never obeyed; a long echoed value is shortened and labelled
for what it is (digits of a number, characters of anything else)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hostile import check_refusal, run

from convcalc import numbers

CSV = 'layer,in,k,name\nconv,28,3,"\x1b[2J[bold]x"\nconv\x1b[31m,28,3,y\n'


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def batch_rows(stream: io.StringIO, tmp_path: Path) -> str:
    from convcalc import batch
    from convcalc.render import batch as render

    path = tmp_path / "esc.csv"
    path.write_text(CSV)
    with open(path, encoding="utf-8", newline="") as handle:
        render.write(batch.run(handle, str(path)), stream, as_json=False, path=str(path))
    return stream.getvalue()


def test_batch_cells_on_a_terminal_are_shown_not_obeyed(tmp_path: Path) -> None:
    shown = batch_rows(Terminal(), tmp_path)
    assert "\x1b" not in shown
    assert "\\x1b[2J[bold]x" in shown and "conv\\x1b[31m" in shown


def test_batch_cells_in_a_pipe_are_the_input_as_it_was(tmp_path: Path) -> None:
    piped = batch_rows(io.StringIO(), tmp_path)
    assert "\x1b[2J[bold]x" in piped  # a CSV for scripts: byte-faithful


def test_batch_json_escapes_control_characters(tmp_path: Path) -> None:
    (tmp_path / "esc.csv").write_text(CSV)
    outcome = run(["batch", "esc.csv", "--json"], tmp_path)
    assert "\x1b" not in outcome.out
    assert json.loads(outcome.out.splitlines()[0])["name"] == "\x1b[2J[bold]x"


@pytest.mark.parametrize(
    "text, label",
    [("9" * 5000, "(5,000 digits)"), ("-" + "9" * 5000, "(5,000 digits)"), ("conv:k=3," * 3000, "(27,000 characters)"), ("x1" * 3000, "(6,000 characters)")],
)
def test_a_shortened_value_says_what_it_counted(text: str, label: str) -> None:
    shown = numbers.shorten(text)
    assert shown.endswith(label) and len(shown) < 80, shown


def test_a_long_chain_step_is_counted_in_characters(tmp_path: Path) -> None:
    line = check_refusal(run(["chain", "28", "Conv2d(1,16,3)" * 1000], tmp_path), 2)
    assert "(14,000 characters)" in line and "digits" not in line


@pytest.mark.parametrize(
    "args",
    [
        ["model", "a\nb.yaml"],
        ["chain", "28", "conv:k=3\nfake"],
        ["chain", "28", "conv:k=3\terror: fake"],
        ["conv", "--in", "2\n8", "--k", "3"],
        ["conv", "--in", "28", "--k", "3", "--padding-mode", "a\nb"],
        ["draw", "spec.yaml", "-o", "no\nsuch/x.svg"],
    ],
)
def test_a_newline_in_the_users_text_keeps_the_error_one_line(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "spec.yaml").write_text("input: [1, 28, 28]\nlayers:\n  - ReLU\n")
    line = check_refusal(run(args, tmp_path), 2)
    assert "\\n" in line or "\\t" in line


def test_drawing_to_a_name_with_a_newline_says_so_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("input: [1, 28, 28]\nlayers:\n  - ReLU\n")
    outcome = run(["draw", "spec.yaml", "-o", "a\nb.svg"], tmp_path)
    assert outcome.code == 0 and outcome.err == "wrote a\\nb.svg\n"
