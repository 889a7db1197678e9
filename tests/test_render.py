"""The output layer: rich tables at fixed widths (80, 100 columns), user text as data, NO_COLOR.

Rich output is rendered the way a terminal gets it, into a colourless fixed-width console
(rich's own test habit: ``Console(width=80, color_system=None, force_terminal=True)``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import convcalc
from convcalc.render import model as render_model
from convcalc.render.output import JSON, PLAIN, RICH, Output, Settings
from convcalc.render.text import ascii_spelling, shorten, shorten_words, visible

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"\d[\d,.]*")


def model_path(stem: str) -> str:
    for folder in ("examples/models", "convcalc/data/models"):
        path = ROOT / folder / f"{stem}.yaml"
        if path.exists():
            return str(path)
    raise FileNotFoundError(stem)


def rich_text(summary: convcalc.graph.Summary, width: int, **settings: object) -> str:  # type: ignore[name-defined]
    stream = io.StringIO()
    out = Output(format=RICH, stream=stream, width=width, color=False, settings=Settings(**settings))  # type: ignore[arg-type]
    render_model.summary(summary, out)
    return stream.getvalue()


def plain_text(summary: object) -> str:
    stream = io.StringIO()
    render_model.summary(summary, Output(format=PLAIN, stream=stream))  # type: ignore[arg-type]
    return stream.getvalue()


STEMS = ["mnist_cnn", "vgg16", "resnet50", "unet", "mobilenet_v2", "dcgan_generator"]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("stem", STEMS)
def test_no_number_is_ever_cut(stem: str, width: int) -> None:
    """Every cell the table shows is whole: it appears, as written, in the piped (full) output."""
    summary = convcalc.load_model(model_path(stem)).summary()
    text = rich_text(summary, width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    body = lines[: next((i for i, line in enumerate(lines) if line.startswith("Not shown at")), len(lines))]
    assert not any("…" in line for line in body), [line for line in body if "…" in line][:3]
    full = plain_text(summary)
    for line in body:
        for number in NUMBER.findall(line):
            assert number in full, f"{number!r} (from {line!r}) is not in the full output"


@pytest.mark.parametrize("width", [80, 100])
def test_the_columns_left_out_are_named_with_the_way_to_get_them(width: int) -> None:
    summary = convcalc.load_model(model_path("resnet50")).summary()
    text = rich_text(summary, width)
    note = " ".join(text[text.index("Not shown at"):].split("\n\n")[0].split())
    assert "--wide shows every column" in note and "--columns" in note
    header = next(line for line in text.splitlines() if line.split()[:1] in (["name"], ["#"]))
    left_out = note.split(": ", 1)[1].split(". ")[0].split(", ")
    for title in left_out:
        assert title not in header.split()
    for title in ("name", "output", "params", "MACs"):  # the priorities: shapes, params, MACs first
        assert title in header.split()
    assert "RF" in left_out and "start" in left_out


def test_wide_shows_every_column_and_columns_picks_them() -> None:
    summary = convcalc.load_model(model_path("resnet50")).summary()
    wide = rich_text(summary, 80, wide=True)
    header = next(line for line in wide.splitlines() if line.lstrip().startswith("#"))
    assert header.split() == [c.title for c in render_model.COLUMNS]
    assert "Not shown" not in wide and "…" not in wide
    picked = rich_text(summary, 80, columns=("params", "RF"))
    header = next(line for line in picked.splitlines() if "params" in line)
    assert header.split() == ["name", "output", "params", "RF"]


def test_piped_output_has_every_column_at_any_width() -> None:
    summary = convcalc.load_model(model_path("resnet50")).summary()
    header = plain_text(summary).splitlines()[1]
    assert header.split() == [c.title for c in render_model.COLUMNS]


def test_a_long_table_is_drawn_whole_on_a_terminal() -> None:
    layers = "\n".join("  - ReLU" for _ in range(2000))
    summary = _summary_of(f"name: long\ninput: [1, 8, 8]\nlayers:\n{layers}\n")
    rows = [line for line in rich_text(summary, 120).splitlines() if "ReLU" in line]
    assert len(rows) == 2000 and rows[-1].split()[0] == "1999"


def _summary_of(text: str, tmp: Path | None = None) -> object:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(text, encoding="utf-8")
        return convcalc.load_model(str(path)).summary()


HOSTILE_NAMES = ["[/bold]", "[bold red]x[/]", "[link=http://evil.example]click[/link]", "a[/b].yaml", "[v2]"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_user_text_is_never_markup(name: str) -> None:
    summary = _summary_of(f'name: "{name}"\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {{out: 2, k: 3}}\n')
    stream = io.StringIO()
    out = Output(format=RICH, stream=stream, width=120, color=True)
    render_model.summary(summary, out)  # type: ignore[arg-type]  # a MarkupError would raise here
    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    assert f"{name}: input" in text  # the brackets are shown as written
    assert "\x1b]8;" not in stream.getvalue()  # no live hyperlink


def test_control_characters_in_names_are_shown_escaped() -> None:
    summary = _summary_of('name: "evil\\x1b[2J\\x07"\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n')
    for text in (plain_text(summary), rich_text(summary, 120)):
        assert "\x1b" not in text and "\x07" not in text
        assert "evil\\x1b[2J\\x07: input" in text


def test_no_color_means_no_escape_codes_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR and TERM=dumb: not even bold or italic (the header and title are styled otherwise)."""
    summary = _summary_of("name: m\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n  - Add: [0, 0]\n")
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        with monkeypatch.context() as patch:
            patch.delenv("NO_COLOR", raising=False)
            patch.setenv("TERM", "xterm-256color")
            for key, value in env.items():
                patch.setenv(key, value)

            class Tty(io.StringIO):
                def isatty(self) -> bool:
                    return True

            stream = Tty()
            patch.setattr("sys.stdout", stream)
            out = Output.for_stdout()
            assert out.format == RICH
            render_model.summary(summary, out)  # type: ignore[arg-type]
            assert "\x1b" not in stream.getvalue() and "params" in stream.getvalue()
    with monkeypatch.context() as patch:  # and the contrast: a colour terminal does get styles
        patch.delenv("NO_COLOR", raising=False)
        patch.setenv("TERM", "xterm-256color")
        stream = io.StringIO()
        render_model.summary(summary, Output(format=RICH, stream=stream, width=120, color=True))  # type: ignore[arg-type]
        assert "\x1b[1m" in stream.getvalue()


def test_json_format_is_the_one_dumper() -> None:
    summary = _summary_of("name: m\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n")
    stream = io.StringIO()
    render_model.summary(summary, Output(format=JSON, stream=stream))  # type: ignore[arg-type]
    import json

    assert json.loads(stream.getvalue()) == summary.as_dict()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "shown"),
    [("plain", "plain"), ("a\x1b[2Jb", "a\\x1b[2Jb"), ("bell\x07", "bell\\x07"), ("rtl\u202eabc", "rtl\\u202eabc"),
     ("tab\tnew\nline", "tab\tnew\nline")],
)
def test_visible(text: str, shown: str) -> None:
    assert visible(text) == shown


def test_long_values_are_shortened_and_say_how_long() -> None:
    digits = "9" * 5000
    line = shorten_words(f"--k: {digits!r} is not a whole number")
    assert len(line) < 200 and "5,002 characters" in line and line.endswith("is not a whole number")
    assert shorten("x" * 50) == "x" * 50
    path = "/a/rather/long/but/ordinary/path/to/a/spec/file/that/someone/wrote/model.yaml:12:3:"
    assert shorten_words(path) == path


def test_ascii_spellings() -> None:
    assert ascii_spelling("28 → 24 × 3 − 1 ✓ █ é") == "28 -> 24 x 3 - 1 ok # \\xe9"


@pytest.mark.parametrize("name", ["[v2]", "[/bold]", "[link=http://evil.example]x[/link]"])
def test_verify_shows_user_text_as_written(terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:  # type: ignore[no-untyped-def]
    """A spec file named ``[v2].yaml`` (its name is the title) on a terminal: shown, not parsed."""
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"{name.replace('/', '_')}.yaml").write_text("input: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n", encoding="utf-8")
    spec = f"{name.replace('/', '_')}.yaml"
    code, out, err = terminal(["verify", spec], rich=True)
    assert code == 0 and "Traceback" not in err and "internal error" not in err, err
    assert out.startswith(f"{spec.removesuffix('.yaml') if hasattr(str, 'removesuffix') else spec[:-5]}")


def test_verify_table_fits_60_columns_with_a_note(terminal, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    monkeypatch.setenv("COLUMNS", "60")
    code, out, _ = terminal(["verify", model_path("mnist_cnn")], rich=True)
    lines = out.splitlines()
    body = lines[: next(i for i, line in enumerate(lines) if line.startswith("Not shown at 60 columns"))]
    assert code == 0 and all(len(line) <= 60 for line in body), max(body, key=len)  # title and table
    assert not any("…" in line for line in body)
    assert "✓" in out and "55,338" in out
