"""``convcalc batch``: every row answered as the calculator answers it (the same engine), torch
agrees on random rows, and the CSV corners (quoting, BOM, CRLF, empty lines, missing columns)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import SETTINGS

from convcalc import batch
from convcalc.render import batch as render


def run_text(text: str, *, as_json: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = render.write(batch.run(io.StringIO(text, newline=""), "t.csv"), out, as_json=as_json, path="t.csv")
    return code, out.getvalue()


def calculator(args: list[str]) -> tuple[int, str, str]:
    """The calculator command line, in process: (exit code, stdout, stderr)."""
    import contextlib

    from convcalc.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(args)
    return code, out.getvalue(), err.getvalue()


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- one source of truth: the calculator's answer ---------------------------------------------

ROWS = st.fixed_dictionaries(
    {
        "layer": st.sampled_from(["conv", "tconv", "maxpool", "avgpool"]),
        "in": st.one_of(st.integers(1, 40).map(str), st.tuples(st.integers(1, 40), st.integers(1, 40)).map(lambda t: f"{t[0]}x{t[1]}")),
        "k": st.integers(1, 6).map(str),
        "s": st.sampled_from(["", "1", "2", "3"]),
        "p": st.sampled_from(["", "0", "1", "2", "3"]),
        "d": st.sampled_from(["", "1", "2"]),
        "op": st.sampled_from(["", "0", "1", "2"]),
        "ceil": st.sampled_from(["", "true", "false", "1", "0"]),
    }
)


def cli_args(row: dict[str, str]) -> list[str]:
    """The calculator command line that asks the row's question."""
    layer = row["layer"]
    args = ["pool", "--kind", layer[:3]] if layer.endswith("pool") else [layer]
    args += ["--in", row["in"], "--k", row["k"]]
    for key in ("s", "p", "d"):
        if row[key] and not (key == "d" and layer == "avgpool"):
            args += [f"--{key}", row[key]]
    if layer == "tconv" and row["op"]:
        args += ["--op", row["op"]]
    if layer.endswith("pool") and row["ceil"] in ("true", "1"):
        args.append("--ceil")
    return args


def csv_row(row: dict[str, str]) -> dict[str, str]:
    """The same question as a CSV row (cells that layer does not take left empty)."""
    layer = row["layer"]
    return {
        **row,
        "d": "" if layer == "avgpool" else row["d"],
        "op": row["op"] if layer == "tconv" else "",
        "ceil": row["ceil"] if layer.endswith("pool") else "",
    }


@settings(max_examples=150, **SETTINGS)
@given(rows=st.lists(ROWS, min_size=1, max_size=8))
def test_every_row_is_the_calculators_answer(rows: list[dict[str, str]]) -> None:
    written = [csv_row(r) for r in rows]
    text = "layer,in,k,s,p,d,op,ceil\n" + "".join(",".join(r[c] for c in ("layer", "in", "k", "s", "p", "d", "op", "ceil")) + "\n" for r in written)
    code, out = run_text(text)
    answers = table(out)
    assert len(answers) == len(rows)
    for row, answer in zip(rows, answers):
        calc_code, calc_out, calc_err = calculator(cli_args(row))
        if calc_code == 0:
            assert (answer["output"], answer["error"]) == (calc_out.strip(), ""), (row, calc_err)
        else:  # the error line, after the reading's warning where the size is ambiguous (1x4: H×W or C×L)
            *notes, last = calc_err.splitlines()
            assert answer["output"] == "" and f"error: {answer['error']}" == last, row
            assert all(note.startswith("warning: ") and " is read as " in note for note in notes) and len(notes) <= 1, row
    assert code == (0 if all(a["error"] == "" for a in answers) else 1)


@settings(max_examples=200, **SETTINGS)
@given(row=ROWS)
def test_random_rows_agree_with_torch(row: dict[str, str]) -> None:
    torch = pytest.importorskip("torch")
    layer = row["layer"]
    size = [int(v) for v in row["in"].split("x")] * (2 if "x" not in row["in"] else 1)
    k = int(row["k"])
    kwargs: dict[str, object] = {}
    if row["s"]:
        kwargs["stride"] = int(row["s"])
    if row["p"]:
        kwargs["padding"] = int(row["p"])
    if row["d"] and layer != "avgpool":
        kwargs["dilation"] = int(row["d"])
    if layer == "tconv" and row["op"]:
        kwargs["output_padding"] = int(row["op"])
    if layer.endswith("pool") and row["ceil"]:
        kwargs["ceil_mode"] = row["ceil"] in ("true", "1")
    module_type = {"conv": torch.nn.Conv2d, "tconv": torch.nn.ConvTranspose2d, "maxpool": torch.nn.MaxPool2d, "avgpool": torch.nn.AvgPool2d}[layer]
    expected: str | None
    try:
        module = module_type(1, 1, k, **kwargs) if "conv" in layer else module_type(k, **kwargs)
        with torch.no_grad():
            out = module(torch.zeros(1, *size))
        expected = "x".join(map(str, out.shape[1:])) if out.numel() else None
    except (RuntimeError, ValueError):
        expected = None
    written = csv_row(row)
    code, text = run_text("layer,in,k,s,p,d,op,ceil\n" + ",".join(written[c] for c in ("layer", "in", "k", "s", "p", "d", "op", "ceil")) + "\n")
    answer = table(text)[0]
    if expected is None:
        assert answer["output"] == "" and answer["error"] and code == 1, (row, answer)
    else:
        shown = expected.split("x")[0] if "x" not in row["in"] and len(set(expected.split("x"))) == 1 else expected
        assert (answer["output"], answer["error"], code) == (shown, "", 0), row


# -- expect, ok, exit codes ---------------------------------------------------------------------


def test_expect_ok_and_passed_through_columns() -> None:
    text = (
        "student,layer,in,k,s,expect,comment\n"
        "ann,conv,227,11,4,55,fine\n"
        "bob,conv,227,11,4,54,off by one\n"
        "cid,conv,227,11,4,55x55,square written out\n"
        "dan,conv,4,5,,error,expects the refusal\n"
        "eve,conv,4,5,,1,\n"
        "fay,conv,227,11,4, 55 × 55 ,spaces and ×\n"
    )
    code, out = run_text(text)
    rows = table(out)
    assert [r["ok"] for r in rows] == ["true", "false", "true", "true", "false", "true"]
    assert [r["student"] for r in rows] == ["ann", "bob", "cid", "dan", "eve", "fay"]
    assert rows[1]["comment"] == "off by one" and list(rows[0]) == ["student", "layer", "in", "k", "s", "expect", "comment", "output", "error", "ok"]
    assert rows[3]["error"].startswith("Conv2d: H: kernel 5 (dilated: 5) is larger than the padded input 4")
    assert code == 1
    assert run_text("layer,in,k,expect\nconv,28,5,24\nmaxpool,24,2,12\n")[0] == 0
    assert run_text("layer,in,k\nconv,28,5\nconv,4,5\n")[0] == 1  # an invalid row without expect
    assert run_text("layer,in,k\nconv,28,5\n")[0] == 0


def test_options_by_short_or_long_name_flags_and_defaults() -> None:
    text = (
        "layer,In,--kernel-size,stride,padding,ceil_mode,kind,dims,cin,cout,g\n"
        "pool,5,2,2,1,true,max,,,,\n"
        "pool,5,2,2,1,0,avg,,,,\n"
        "pool,5,2,,,,,,,,\n"
        "conv,3x32x32,3,,1,,,2,,8,\n"
        "conv,32,3,,,,,,4,8,2\n"
        "pool,5,2,,,maybe,,,,,\n"
        "Conv2d,3x32x32,3,,,,,,,,\n"
    )
    _, out = run_text(text)
    rows = table(out)
    assert [r["output"] for r in rows[:5]] == ["3", "3", "2", "8x32x32", "30"]
    assert rows[5]["error"] == "ceil_mode: 'maybe' is not true/false or 1/0"
    assert rows[6]["output"] == "1x30x30"  # a 2-D class reads three numbers as C×H×W


def test_ambiguous_sizes_are_said_once_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    run_text("layer,in,k\nconv,3x32x32,3\nconv,3x32x32,3\nconv,5x32x32,3,\n".replace(",\n", "\n"))
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: t.csv:2: 3x32x32 is read as D×H×W") and err[0].endswith("(and 1 more row)")
    assert "a dims column of 2" in err[0] and err[1].startswith("warning: t.csv:4: 5x32x32")


def test_a_refused_row_keeps_the_note_of_its_ambiguous_size(capsys: pytest.CaptureFixture[str]) -> None:
    """The calculator warns about 3x224 before its error; a refused row says the same note."""
    _, out = run_text("layer,in,k\nconv,3x224,300\n")
    assert table(out)[0]["error"].startswith("Conv2d: H: kernel 300")
    err = capsys.readouterr().err
    assert err.startswith("warning: t.csv:2: 3x224 is read as H×W") and "a dims column of 1" in err


def test_json_lines() -> None:
    code, out = run_text("id,layer,in,k,expect\n7,conv,28,5,24\n8,conv,4,5,3\n", as_json=True)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"id": "7", "layer": "conv", "in": "28", "k": "5", "expect": "24", "output": "24", "error": None, "line": 2, "ok": True}
    assert lines[1]["output"] is None and lines[1]["error"].startswith("Conv2d:") and lines[1]["ok"] is False
    assert code == 1


# -- the CSV corners -----------------------------------------------------------------------------


def test_quoting_bom_crlf_and_empty_lines(cli, tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_bytes(
        "\ufeffstudent,layer,in,k,expect\r\n"
        '"Doe, ""JJ""",conv,227,11,217\r\n'
        "\r\n"
        '"multi\r\nline",conv,"32x64",5,28x60\r\n'
        "\r\n".encode()
    )
    code, out, err = cli("batch", str(path))
    assert (code, err) == (0, "")
    rows = table(out)
    assert [r["student"] for r in rows] == ['Doe, "JJ"', "multi\r\nline"]
    assert [r["output"] for r in rows] == ["217", "28x60"] and next(iter(rows[0])) == "student"
    assert out.startswith("student,layer,in,k,expect,output,error,ok\n")


def test_missing_columns_and_short_rows(cli, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("layer,in,k,s,expect\nconv,28,5\nconv,,5,,1\n")
    code, out, _ = cli("batch", str(path))
    rows = table(out)
    assert rows[0]["output"] == "24" and rows[0]["ok"] == "false"  # a short row: the missing cells are empty
    assert rows[1]["error"].startswith("in is empty") and code == 1
    path.write_text("layer,size,k\nconv,28,5\n")
    code, out, err = cli("batch", str(path))
    assert code == 2 and out == "" and f"{path}:1: the header has no 'in' column" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "t.csv:1: the file is empty"),
        ("\n\n", "t.csv:1: the file is empty"),
        ("layer,in,k\nconv,28,5\nconv,28,5,9\n", "t.csv:3: 4 cells but the header has 3 columns"),
        ('layer,in,k\nconv,28,5\nconv,"28,5\n', "t.csv:3: not CSV (unexpected end of data)"),
        ("layer,in,k,kernel_size\nconv,28,5,5\n", "t.csv:1: columns 'k' and 'kernel_size' both set kernel_size"),
        ("layer,in,k\nconv,28," + "9" * (batch.MAX_CELL + 1) + "\n", "t.csv:2: not CSV (field larger than field limit"),
    ],
)
def test_a_malformed_file_is_a_usage_error_naming_the_line(text: str, needle: str) -> None:
    with pytest.raises(batch.BatchFileError) as refused:
        run_text(text)
    assert refused.value.message.startswith(needle), refused.value.message


def test_stdin_and_exit_codes_through_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "convcalc", "batch", "-"], input=b"layer,in,k,s,expect\nconv,227,11,4,55\n", capture_output=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"layer,in,k,s,expect,output,error,ok\nconv,227,11,4,55,55,,true\n", b"")
    done = subprocess.run([sys.executable, "-m", "convcalc", "batch", "-"], input=b"layer,in\nconv,28,5\n", capture_output=True, check=False)
    assert done.returncode == 2 and done.stderr.startswith(b"error: <stdin>:2: 3 cells but the header has 2 columns")
    done = subprocess.run([sys.executable, "-m", "convcalc", "batch", str(tmp_path / "nope.csv")], capture_output=True, check=False)
    assert done.returncode == 2 and b"no such file" in done.stderr.lower() and b"Traceback" not in done.stderr


def test_a_one_dimensional_answer_is_not_a_square() -> None:
    _, out = run_text("layer,in,k,dims,expect\nconv,30,3,1,28\nconv,30,3,1,28x28\nconv,30,3,,28x28\n")
    assert [r["ok"] for r in table(out)] == ["true", "false", "true"]


# -- the hot path: many distinct rows in one file, each the engine's answer -----------------------

DISTINCT = st.fixed_dictionaries(
    {
        "layer": st.sampled_from(["conv", "tconv", "maxpool", "avgpool", "Conv1d", "Conv3d", "MaxPool1d", "ConvTranspose3d"]),
        "in": st.lists(st.integers(1, 10**6), min_size=1, max_size=3),
        "k": st.integers(1, 9),
        "s": st.integers(1, 5),
        "p": st.integers(0, 4),
        "d": st.integers(1, 3),
        "op": st.integers(0, 4),
        "ceil": st.booleans(),
    }
)
FAMILY = {"conv": "Conv", "tconv": "ConvTranspose", "maxpool": "MaxPool", "avgpool": "AvgPool"}


def engine_answer(row: dict) -> str | None:
    """The row's answer from the public API alone (``convcalc.layer(...).output_shape``), or None
    where the engine refuses: the oracle for batch's cached hot path."""
    import convcalc

    sizes, layer = row["in"], row["layer"]
    if layer in FAMILY:
        if len(sizes) == 3:  # three numbers without dims: D×H×W (with a warning)
            dims = 3
        else:
            dims = 2
        type_name = f"{FAMILY[layer]}{dims}d"
    else:
        type_name, dims = layer, int(layer[-2])
    spatial = sizes * dims if len(sizes) == 1 else sizes
    if len(spatial) != dims and len(spatial) != dims + 1:
        return None
    channels = spatial[0] if len(spatial) == dims + 1 else None
    spatial = spatial[1:] if channels is not None else spatial
    kwargs = kwargs_of(row, type_name)
    if type_name.startswith("Conv"):
        kwargs.update(in_channels=channels or 1, out_channels=1)
    try:
        out = convcalc.layer(type_name, **kwargs).output_shape((channels or 1, *spatial))
    except convcalc.ConvcalcError:
        return None
    if channels is not None:
        return "x".join(map(str, out))
    if len(sizes) == 1 and len(set(out[1:])) == 1:
        return str(out[1])
    return "x".join(map(str, out[1:]))


def kwargs_of(row: dict, type_name: str) -> dict:
    kwargs: dict = {"kernel_size": row["k"], "stride": row["s"], "padding": row["p"]}
    if not type_name.startswith("AvgPool"):
        kwargs["dilation"] = row["d"]
    if type_name.startswith("ConvTranspose"):
        kwargs["output_padding"] = row["op"]
    if "Pool" in type_name:
        kwargs["ceil_mode"] = row["ceil"]
    return kwargs


def file_of(rows: list[dict]) -> str:
    lines = ["layer,in,k,s,p,d,op,ceil"]
    for row in rows:
        type_name = {"conv": "Conv2d", "tconv": "ConvTranspose2d", "maxpool": "MaxPool2d", "avgpool": "AvgPool2d"}.get(row["layer"], row["layer"])
        kwargs = kwargs_of(row, type_name)
        cells = [row["layer"], "x".join(map(str, row["in"])), str(row["k"]), str(row["s"]), str(row["p"]),
                 str(kwargs.get("dilation", "")), str(kwargs.get("output_padding", "")), str(kwargs.get("ceil_mode", "")).lower()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


@settings(max_examples=60, **SETTINGS)
@given(rows=st.lists(DISTINCT, min_size=20, max_size=60))
def test_distinct_rows_are_the_public_apis_answer(rows: list[dict]) -> None:
    """Rows that share a question (layer and options) but not the size, and the other way round,
    in one file: each answer is what ``convcalc.layer(...).output_shape`` gives on its own."""
    rows = rows + [{**row, "in": [size + 1 for size in row["in"]]} for row in rows]  # same options, new sizes
    _, out = run_text(file_of(rows))
    answers = table(out)
    assert len(answers) == len(rows)
    for row, answer in zip(rows, answers):
        expected = engine_answer(row)
        if expected is None:
            assert answer["output"] == "" and answer["error"], (row, answer)
        else:
            assert (answer["output"], answer["error"]) == (expected, ""), row


@settings(max_examples=25, **SETTINGS)
@given(rows=st.lists(DISTINCT.map(lambda r: {**r, "layer": r["layer"] if r["layer"] in FAMILY else "conv", "in": [1 + v % 40 for v in r["in"][:2]]}), min_size=5, max_size=20))
def test_distinct_rows_in_one_file_agree_with_torch(rows: list[dict]) -> None:
    torch = pytest.importorskip("torch")
    _, out = run_text(file_of(rows))
    for row, answer in zip(rows, table(out)):
        type_name = f"{FAMILY[row['layer']]}2d"
        kwargs = kwargs_of(row, type_name)
        size = row["in"] * 2 if len(row["in"]) == 1 else row["in"]
        try:
            module = getattr(torch.nn, type_name)(*((1, 1) if "Conv" in type_name else ()), **kwargs)
            with torch.no_grad():
                shape = tuple(module(torch.zeros(1, *size)).shape[1:])
            expected = None if 0 in shape else (str(shape[0]) if len(row["in"]) == 1 and shape[0] == shape[1] else f"{shape[0]}x{shape[1]}")
        except (RuntimeError, ValueError):
            expected = None
        assert (answer["output"] or None) == expected, (row, answer)


def test_a_refused_question_on_many_rows_is_answered_without_growing() -> None:
    """A refusal is remembered per question and answered as a value: raising the same error
    object again on every row would chain one traceback entry per row onto it."""
    question = batch.Question("conv", {"kernel_size": "0"})
    for size in range(1, 500):
        assert question.solve(str(size)).error == "Conv2d: kernel_size must be at least 1, got 0"
    error = next(iter(question.layers.values()))
    depth, frame = 0, error.__traceback__
    while frame is not None:
        depth, frame = depth + 1, frame.tb_next
    assert depth < 20


@pytest.mark.parametrize(
    "size, expected",
    [("227", (227,)), ("32x64", (32, 64)), ("3x224x224", (3, 224, 224)), (" 5 x 6 ", (5, 6)), ("010", (10,)),
     ("999999999999999", (999999999999999,)), ("+3", (3,))],
)
def test_plain_sizes_read_on_the_fast_path_as_on_the_slow_one(size: str, expected: tuple[int, ...]) -> None:
    from convcalc.sizes import parse_size

    assert parse_size(size) == expected


@pytest.mark.parametrize("size", ["0", "0x5", "5x0", "1000000000000001", "9" * 16, "3x", "x3", "٣", "1_1", "3x٣"])
def test_sizes_out_of_bounds_or_not_numbers_are_refused_on_every_path(size: str) -> None:
    from convcalc.errors import SpecError
    from convcalc.sizes import parse_size

    with pytest.raises(SpecError):
        parse_size(size)


# -- numbers in cells: numbers.py's rule, worded as the command line words it -----------------------

HOSTILE = ["٣", "1_1", "1e400", "9" * 5000, "3.0", "0x", "0"]


def cli_words(stderr: str) -> str:
    """The command line's message without click's option names and help pointer."""
    import re

    text = stderr.strip().removeprefix("error: ")
    text = re.sub(r"^Invalid value for [^:]*: ", "", text)
    return re.sub(r" \(see 'convcalc \w+ --help'\)$", "", text)


@pytest.mark.parametrize("value", HOSTILE, ids=["arabic-indic", "underscore", "1e400", "5000-digits", "decimal", "0x", "zero"])
@pytest.mark.parametrize(
    "column, option, flag",
    [("k", "kernel_size", "--k"), ("s", "stride", "--s"), ("p", "padding", "--p"), ("d", "dilation", "--d"),
     ("g", "groups", "--g"), ("cin", "in_channels", "--cin"), ("cout", "out_channels", "--cout"), ("dims", "dims", "--dims")],
)
def test_a_number_in_a_cell_is_refused_as_the_command_line_refuses_it(column: str, option: str, flag: str, value: str) -> None:
    args = ["conv", "--in", "28", "--k", "3"] if column != "k" else ["conv", "--in", "28"]
    code, out, err = calculator([*args, flag, value])
    _, text = run_text(f"layer,in{',k' if column != 'k' else ''},{column}\nconv,28{',3' if column != 'k' else ''},{value}\n")
    answer = table(text)[0]
    if code == 0:
        assert (answer["output"], answer["error"]) == (out.strip(), ""), value
    else:
        assert answer["output"] == "" and answer["error"].removeprefix(f"{option}: ") == cli_words(err), (answer["error"], err)


@pytest.mark.parametrize("value", HOSTILE + ["٣x3", "3x1_1"], ids=lambda v: v[:12])
def test_a_number_in_the_in_cell_is_refused_as_the_command_line_refuses_it(value: str) -> None:
    code, _, err = calculator(["conv", "--in", value, "--k", "3"])
    _, text = run_text(f"layer,in,k\nconv,{value},3\n")
    answer = table(text)[0]
    assert code != 0 and answer["output"] == ""
    assert answer["error"].removeprefix("in ").removeprefix("in: ") == cli_words(err).removeprefix("size "), (answer["error"], err)


def test_answers_after_remembering_stops_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PROBE distinct rows without repeats, answers are no longer remembered (a file of
    distinct rows stops paying for it); what every row gets does not change."""
    lines = [f"conv,{size},3,2" for size in range(5, 65)] * 2  # 60 distinct, then the same 60 again
    text = "layer,in,k,s\n" + "\n".join(lines) + "\n"
    expected = table(run_text(text)[1])
    monkeypatch.setattr(batch, "PROBE", 10)
    monkeypatch.setattr(batch, "REPEATS", 0)
    assert table(run_text(text)[1]) == expected
    assert [row["output"] for row in expected[:3]] == ["2", "2", "3"] and expected[:60] == expected[60:]


# -- the hot path: one question, many sizes, every family and rank, against torch ------------------

HOT_FAMILIES = ["Conv", "ConvTranspose", "MaxPool", "AvgPool"]


@st.composite
def hot_question(draw: st.DrawFn) -> tuple[str, dict[str, str], list[tuple[int, ...]], int]:
    """A torch class on 1–3 axes with k/s/p/d/op/ceil (one value for every axis, or one per axis)
    and 3–12 input sizes written as one number (every axis that size) or one per axis."""
    family, dims = draw(st.sampled_from(HOT_FAMILIES)), draw(st.integers(1, 3))
    per_axis = draw(st.booleans())

    def values(low: int, high: int) -> list[int]:
        return draw(st.lists(st.integers(low, high), min_size=dims, max_size=dims)) if per_axis else [draw(st.integers(low, high))] * dims

    kernel, stride = values(1, 5), values(1, 3)
    padding = [min(p, k // 2) for p, k in zip(values(0, 2), kernel)] if "Pool" in family else values(0, 3)
    cells = {"k": "x".join(map(str, kernel)), "s": "x".join(map(str, stride)), "p": "x".join(map(str, padding))}
    if family != "AvgPool":
        cells["d"] = "x".join(map(str, values(1, 2)))
    if family == "ConvTranspose":
        cells["op"] = "x".join(str(draw(st.integers(0, max(s, d) - 1))) for s, d in zip(stride, map(int, cells["d"].split("x"))))
    if "Pool" in family:
        cells["ceil"] = draw(st.sampled_from(["true", "false"]))
    size = st.integers(1, 8)  # near the kernels: windows that fit, just fit and do not
    sizes = draw(st.lists(st.one_of(size.map(lambda n: (n,)), st.tuples(*[size] * dims)), min_size=3, max_size=12))
    return f"{family}{dims}d", cells, sizes, dims


def torch_answer(torch, type_name: str, cells: dict[str, str], size: tuple[int, ...], dims: int) -> str | None:
    """What torch gives the question on ``size`` (one number: every axis), written as batch writes it."""
    def axes(text: str) -> tuple[int, ...]:
        return tuple(map(int, text.split("x")))

    kwargs = {"kernel_size": axes(cells["k"]), "stride": axes(cells["s"]), "padding": axes(cells["p"])}
    if "d" in cells:
        kwargs["dilation"] = axes(cells["d"])
    if "op" in cells:
        kwargs["output_padding"] = axes(cells["op"])
    if "ceil" in cells:
        kwargs["ceil_mode"] = cells["ceil"] == "true"
    spatial = size * dims if len(size) == 1 else size
    try:
        module = getattr(torch.nn, type_name)(*((1, 1) if "Conv" in type_name else ()), **kwargs)
        with torch.no_grad():
            out = tuple(module(torch.zeros(1, *spatial)).shape[1:])
    except (RuntimeError, ValueError):
        return None
    if 0 in out:
        return None
    return str(out[0]) if len(size) == 1 and len(set(out)) == 1 else "x".join(map(str, out))


@settings(max_examples=120, **SETTINGS)
@given(question=hot_question())
@example(question=("AvgPool3d", {"k": "3", "s": "1", "p": "1", "ceil": "false"}, [(5,), (2,), (3, 2, 3)], 3))  # 3-D average: no padding counts
@example(question=("MaxPool2d", {"k": "3", "s": "2", "p": "1", "d": "1", "ceil": "true"}, [(5,), (4,), (3, 6)], 2))  # ceil's dropped window
def test_many_sizes_of_one_question_agree_with_torch(question) -> None:
    """Rows after the first of a question take the engine's hot path (``spatial_sizes`` on a
    layer that answered before, one number read once): each answer is still torch's."""
    torch = pytest.importorskip("torch")
    type_name, cells, sizes, dims = question
    header = ["layer", "in", *cells]
    lines = [",".join(header)] + [",".join([type_name, "x".join(map(str, size)), *cells.values()]) for size in sizes * 2]
    _, out = run_text("\n".join(lines) + "\n")
    for size, answer in zip(sizes * 2, table(out)):
        assert (answer["output"] or None) == torch_answer(torch, type_name, cells, size, dims), (type_name, cells, size, answer)


def test_a_layer_whose_argument_no_column_sets_says_so_and_how_to_answer_it() -> None:
    # a "dims"/"shape" column is batch's own dims (1-3) or a kept column: "Permute needs dims" read as a typo
    code, out = run_text("layer,in,k,shape,cin\nPermute,8x8,,,3\nScale,3x8x8,,3,\nNarrow,8,,,\nconv,8,3,,\nconv,8,,,\n")
    rows = table(out)
    assert code == 1 and [r["output"] for r in rows] == ["", "", "", "6", ""]
    assert rows[4]["error"].startswith("Conv2d needs kernel_size, which the column k sets"), rows[4]["error"]
    for row, needs in zip(rows, ["Permute needs dims", "Scale needs shape", "Narrow needs dim"]):
        assert row["error"].startswith(f"{needs}, which no batch column sets") and "convcalc chain" in row["error"], row["error"]
        assert "\n" not in row["error"]
        step = row["error"].split("--dims 2 '")[1].split("'")[0]
        assert calculator(["chain", "3x8x8", "--dims", "2", step])[0] == 0, step  # the example works


def test_a_merge_row_says_a_row_has_one_input(tmp_path, cli) -> None:
    """A batch row of MatMul or add answered 'needs at least two inputs (from: [a, b])', spec syntax a CSV
    cannot write; it is told what the chain is told."""
    path = tmp_path / "rows.csv"
    path.write_text("layer,in,k\nMatMul,28,\nadd,28,\nconv,28,3\n")
    code, out, err = cli("batch", str(path))
    assert code == 1
    rows = out.splitlines()[1:]
    assert "from: [a, b]" not in out and all("joins two or more tensors" in row for row in rows[:2]), out
    assert rows[2].startswith("conv,28,3,26"), out
