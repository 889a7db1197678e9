"""``convcalc batch``: every row answered as the calculator answers it (the same engine), torch
agrees on random rows, and the CSV corners (quoting, BOM, CRLF, empty lines, missing columns)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
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
        else:
            assert answer["output"] == "" and f"error: {answer['error']}\n" == calc_err, row
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
