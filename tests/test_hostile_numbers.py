"""Numbers a user writes: 5,000-digit integers, 10**400 floats, other scripts' digits, ``1_1``.

One rule everywhere (convcalc/numbers.py): plain ASCII digits. Anything out of range is an
ordinary bound error naming the argument and its range: exit 2 on the command line, 1 in a spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import check_refusal, run

import convcalc
from convcalc import numbers

BIG = "1" * 5000
E400 = "1" + "0" * 400


def spec(layer: str, input_shape: str = "[1, 28, 28]") -> str:
    return f"input: {input_shape}\nlayers:\n  - {layer}\n"


COMMAND_LINE = [
    # (arguments, words the one-line error must hold)
    (["conv", "--in", BIG, "--k", "3"], "(5,000 digits) is larger than convcalc's limit; use 1 to 1e+15"),
    (["conv", "--in", "28", "--k", BIG], "kernel_size 1111111111…1111111111 (5,000 digits) is beyond"),
    (["conv", "--in", "28", "--k", "3", "--s", BIG], "stride"),
    (["conv", "--in", "28", "--k", "3", "--cin", BIG], "from 1 to 1,000,000,000,000,000"),
    (["conv", "--in", "28", "--k", "3", "--g", BIG], "groups"),
    (["model", "spec.yaml", "--batch", BIG], "from 1 to 1,000,000"),
    (["model", "spec.yaml", "--input", f"1x{BIG}x28"], "larger than convcalc's limit"),
    (["chain", BIG, "conv:k=3"], "larger than convcalc's limit"),
    (["chain", "28", f"conv:k={BIG}"], "kernel_size"),
    (["chain", "28", f"dropout:p={E400}"], "p (the dropout probability) must be a number from 0.0 to 1.0"),
    (["chain", "28", "dropout:p=1e400"], "must be a number from 0.0 to 1.0, got 1e400"),
    (["chain", "28", f"leakyrelu:negative_slope={E400}"], "negative_slope must be a finite number"),
    (["chain", "28", "conv:k=3,type_name=X"], "has no argument 'type_name'"),
    (["chain", "28", "conv:k=3,k=5"], "sets k twice"),
    (["chain", "28", "adaptiveavgpool:output_size=0"], "output_size 0 gives an empty output"),
    (["chain", "28", "Conv2d(1, 16, 1_1)"], "'1_1' is not a number convcalc reads"),
    (["chain", "28", "Conv2d(1, 16, 0x3)"], "'0x3' is not a number convcalc reads"),
    (["chain", "28", f"Conv2d(1, 16, {BIG})"], "convcalc reads calls up to 1,000"),
    (["chain", "28", "conv:k=3", "--in-channels", "٣"], "is not a whole number (digits 0-9)"),
    (["pool", "--in", "28", "--k", "2", "--kind", "avg", "--divisor-override", BIG], "divisor"),
    (["verify", "spec.yaml", "--max-memory", "9" * 400 + "GiB"], "use an amount from 0 to 1 EiB"),
    (["verify", "net.py:Net", "--input", "1x8x8", "--kwargs", '{"n": ' + BIG + "}"], "has more than 400 digits"),
    (["verify", "net.py:Net", "--input", "1x8x8", "--kwargs", '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}"], "nested too deeply"),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "spec.yaml").write_text(spec("Conv2d: {out: 4, k: 3}"))
    (tmp_path / "net.py").write_text("raise SystemExit('never imported')\n")
    return tmp_path


@pytest.mark.parametrize("args, needle", COMMAND_LINE, ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else None)
def test_numbers_on_the_command_line_are_usage_errors(folder: Path, args: list[str], needle: str) -> None:
    check_refusal(run(args, folder), 2, needle)


IN_A_SPEC = [
    (spec(f"Conv2d: {{out: 4, k: {BIG}}}"), "Conv2d: kernel_size 1111111111…1111111111 (5,000 digits) is beyond"),
    (spec("ReLU", f"[1, 28, {BIG}]"), "input size 1111111111…1111111111 (5,000 digits) is larger than"),
    (spec(f"Dropout: {{p: {E400}}}"), "p (the dropout probability) must be a number from 0.0 to 1.0"),
    (spec("Dropout: {p: 1e400}"), "got 1e400"),
    (spec(f"LeakyReLU: {{negative_slope: {E400}}}"), "negative_slope must be a finite number"),
    (spec(f"BatchNorm2d: {{momentum: {E400}}}"), "momentum must be a finite number"),
    (spec(f"ConstantPad2d: {{padding: 1, value: {E400}}}"), "value must be a finite number"),
    (spec(f"Threshold: {{threshold: {E400}, value: 1}}"), "threshold must be a finite number"),
    (spec(f"Upsample: {{scale_factor: {E400}}}"), "scale_factor must be a finite number"),
    (spec("Upsample: {scale_factor: 1.0e308}"), "use a scale_factor of at most"),
    (spec("AdaptiveAvgPool2d: {output_size: 0}"), "output_size 0 gives an empty output"),
    (spec("Conv2d: {out: 4, k: 1_1}"), "'1_1' is not a number convcalc reads"),
    (spec("Conv2d: {out: 4, k: 0x3}"), "'0x3' is not a number convcalc reads"),
    (spec("Conv2d: {out: 4, k: 1:30}"), "'1:30' is not a number convcalc reads"),
    (spec("Conv2d: {out: 4, k: ٣}"), "kernel_size must be a whole number, got '٣'"),
    (spec("Dropout: {p: .nan}"), "'.nan' is not a number convcalc reads"),
    (spec("ReLU", "[1, 28, ٣٣]"), "input size must be a whole number"),
    (spec("ReLU", "1x28x1_1"), "is not a list of whole numbers"),
    (spec("Conv2d: {out: 4, k: 3}\n    repeat: " + BIG), "repeat: must be a whole number from 1 to 10,000"),
    (spec("ReLU: {}\n    repeat: 1e400"), "repeat: must be a whole number from 1 to 10,000, got 1e400"),
    (spec("Flatten", "[1" + ", 1000000000000000" * 25 + "]"), "convcalc computes with at most 10^100 elements"),
    (spec("Linear: {out: 3}", "[1" + ", 1000000000000000" * 25 + "]"), "convcalc computes with at most 10^100 elements"),
    (spec("ReLU\x00"), "control characters are not allowed"),
    (spec("ReLU", "[" * 50_000 + "]" * 50_000), "exceeded maximum nesting depth"),
    (spec("Conv" * 250_000), "unknown layer"),
    (spec("Conv2d(1, 4, 1_1)"), "'1_1' is not a number convcalc reads"),
]


@pytest.mark.parametrize("text, needle", IN_A_SPEC, ids=lambda v: v[30:80] if isinstance(v, str) and v.startswith("input") else None)
@pytest.mark.parametrize("command", ["model", "verify"])
def test_numbers_in_a_spec_are_spec_errors(tmp_path: Path, text: str, needle: str, command: str) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    check_refusal(run([command, "bad.yaml"], tmp_path), 1, needle)


@pytest.mark.parametrize(
    "body, needle",
    [
        (f"input: {BIG}\n    layers: [conv:k=3]\n    expect: 1", "(5,000 digits) is larger than convcalc's limit"),
        (f"input: 28\n    layers: [conv:k={BIG}]\n    expect: 1", None),  # a chain error: a failed exercise
        ("input: 28\n    layers: []\n    expect: 28", "has no layers"),
        ("input: ٣٣\n    layers: [conv:k=3]\n    expect: 31", "is not a list of whole numbers"),
    ],
)
def test_numbers_in_an_exercises_file(tmp_path: Path, body: str, needle: str | None) -> None:
    (tmp_path / "ex.yaml").write_text(f"examples:\n  - question: q\n    {body}\n", encoding="utf-8")
    outcome = run(["examples", "ex.yaml"], tmp_path)
    if needle is None:  # the exercise is answered "error: …", shortened, and counted as wrong
        assert outcome.code == 1 and "Traceback" not in outcome.err and "internal error" not in outcome.err
        assert "0 of 1 agree" in outcome.out and max(map(len, outcome.out.splitlines())) < 300
    else:
        check_refusal(outcome, 1, needle)


@pytest.mark.parametrize("text", ["٣٣", "۳", "1_1", "0x1F", "1e3", "+-1", "", "inf", "nan", "１２", "3.0"])
def test_the_one_rule_refuses_what_is_not_plain_digits(tmp_path: Path, text: str) -> None:
    assert numbers.parse_whole(text) is None
    check_refusal(run(["conv", "--in", text, "--k", "3"], tmp_path), 2)
    check_refusal(run(["conv", "--in", "28", "--k", text], tmp_path), 2)
    check_refusal(run(["chain", "28", f"conv:k={text}"], tmp_path), 2)


@pytest.mark.parametrize("text, value", [("28", 28), ("-1", -1), ("+3", 3), ("010", 10), (" 7 ", 7)])
def test_the_one_rule_reads_plain_digits(text: str, value: int) -> None:
    assert numbers.parse_whole(text) == value
    assert type(numbers.parse_whole(text)) is int


def test_long_numbers_compare_beyond_every_bound_and_print_short() -> None:
    big = numbers.parse_whole(BIG)
    assert isinstance(big, numbers.LongInt) and big > 10**300
    assert numbers.parse_whole("-" + BIG) < -(10**300)
    assert len(str(big)) < 40 and len(f"{big}") < 40 and len(repr(big)) < 40
    with pytest.raises(convcalc.SpecError, match="beyond convcalc's limit"):
        convcalc.layer("Conv2d", in_channels=1, out_channels=1, kernel_size=big)


def test_python_api_huge_ints_give_short_messages() -> None:
    huge = 10**5000  # str() of it is refused by Python: the message must not need it
    with pytest.raises(convcalc.SpecError) as caught:
        convcalc.layer("Conv2d", in_channels=1, out_channels=1, kernel_size=huge)
    assert len(str(caught.value)) < 200
    with pytest.raises(convcalc.SpecError) as caught:
        convcalc.layer("Dropout", p=huge)
    assert len(str(caught.value)) < 200


def test_batch_rows_follow_the_rule(tmp_path: Path) -> None:
    rows = [f"conv,28,3,{BIG}", "conv,28,3,٢٦", "conv,٢٨,3,26", "conv,28,1_1,18", "conv,28,3,026"]
    (tmp_path / "rows.csv").write_text("layer,in,k,expect\n" + "\n".join(rows) + "\n", encoding="utf-8")
    outcome = run(["batch", "rows.csv"], tmp_path)
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err
    oks = [line.rsplit(",", 1)[-1] for line in outcome.out.splitlines()[1:]]
    assert oks == ["false", "false", "false", "false", "true"]  # 026 is 26: plain digits
    assert max(len(line) for line in outcome.out.splitlines()) < 5200  # the row itself is echoed
