"""--explain that teaches: the symbolic formula first, the lecture's form, a picture for every axis
(wide ones elided, never dropped), the transposed convolution's picture and the padding modes —
with torch as the oracle of which positions each window reads / each input writes."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc import formulas
from strategies import SETTINGS


def test_formula_first_then_the_lecture_form_then_numbers(cli) -> None:
    code, out, _ = cli("conv", "--in", "227", "--k", "11", "--s", "4", "--explain")
    lines = out.splitlines()
    assert code == 0
    assert lines[1].strip() == formulas.CONV_FORMULA
    assert lines[2].strip() == formulas.LECTURE_CONV
    assert lines[3].strip().startswith("H: floor((227 + 2×0")
    code, out, _ = cli("conv", "--in", "28", "--k", "3", "--d", "2", "--explain")
    assert formulas.LECTURE_CONV not in out  # no lecture form with dilation


def test_227_gets_a_picture_with_both_ends(cli) -> None:
    code, out, _ = cli("conv", "--in", "227", "--k", "11", "--s", "4", "--explain")
    assert "H input" in out and "…" in out
    assert "window 1 ███████████" in out and "window 55" in out
    assert "W: the same as H" in out


def test_every_axis_gets_a_picture(cli) -> None:
    code, out, _ = cli("conv", "--in", "10x9", "--k", "3", "--s", "2", "--explain")
    assert "H input" in out and "W input" in out


def test_padding_mode_in_header_and_picture(cli) -> None:
    code, out, _ = cli("conv", "--in", "6", "--k", "3", "--p", "1", "--padding-mode", "circular", "--explain")
    assert out.splitlines()[0] == "Conv2d k=3 s=1 p=1 padding_mode=circular"
    assert "H input    ↻■■■■■■↻" in out and "·" not in out.split("H input")[1]


def test_tconv_picture_full_size_crop_and_output_padding(cli) -> None:
    code, out, _ = cli("tconv", "--in", "3", "--k", "3", "--s", "3", "--p", "0", "--op", "1", "--explain")
    assert formulas.TCONV_FORMULA in out
    assert "H full     ■■■■■■■■■\n" in out and "output   ■■■■■■■■■+" in out
    code, out, _ = cli("tconv", "--in", "3", "--k", "3", "--p", "2", "--explain")
    assert "output   --■--" in out


def _strip(line: str, width: int) -> str:
    return line[7 + width :] if line.startswith("window") else line[6 + width :]


@settings(max_examples=80, **SETTINGS)
@given(st.integers(1, 70), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2))
def test_conv_picture_windows_read_what_torch_reads(size: int, k: int, s: int, p: int, d: int) -> None:
    """Window w of the picture has a tap at padded position j exactly when torch's output w
    depends on input j − p (a one-hot input, a kernel of ones)."""
    torch = pytest.importorskip("torch")
    out = formulas.conv_out(size, k, s, p, p, d)
    assume(out >= 1)
    lines = formulas.picture(size, k, s, p, p, d, out)
    width = max(2, len(str(out)))
    columns = formulas._Canvas(size + 2 * p)
    conv = torch.nn.Conv1d(1, 1, k, s, p, d, bias=False)
    conv.weight.data.fill_(1.0)
    rows = {int(line.split()[1]) - 1: _strip(line, width) for line in lines if line.startswith("window")}
    assert rows and all(0 <= w < out for w in rows)
    for j in columns.positions():
        if not p <= j < p + size:
            continue
        x = torch.zeros(1, 1, size)
        x[0, 0, j - p] = 1
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reads = conv(x)[0, 0].tolist()
        for w, strip in rows.items():
            column = columns.column(j)
            drawn = column < len(strip) and strip[column] == "█"
            assert drawn == (reads[w] != 0), f"window {w + 1}, position {j}: {lines}"


@settings(max_examples=60, **SETTINGS)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(1, 3), st.integers(0, 3), st.integers(1, 2), st.integers(0, 2))
def test_tconv_picture_output_is_torchs(size: int, k: int, s: int, p: int, d: int, op: int) -> None:
    """The output strip has torch's output size, and input i's copy lands where torch writes it."""
    torch = pytest.importorskip("torch")
    assume(op < max(s, d))
    out = formulas.tconv_out(size, k, s, p, d, op)
    assume(out >= 1)
    lines = formulas.scatter_picture(size, k, s, p, d, op, out)
    width = max(3, len(str(size)))
    output = _strip(lines[-1], width)
    full = (size - 1) * s + d * (k - 1) + 1
    canvas = formulas._Canvas(max(full, p + out))
    if not canvas.elided:
        assert output.count("■") + output.count("+") == out
    module = torch.nn.ConvTranspose1d(1, 1, k, s, p, op, dilation=d, bias=False)
    module.weight.data.fill_(1.0)
    for line in lines[1:-1]:
        if not line.startswith("input"):
            continue
        i = int(line.split()[1]) - 1
        x = torch.zeros(1, 1, size)
        x[0, 0, i] = 1
        with torch.no_grad():
            writes = module(x)[0, 0].tolist()
        strip = _strip(line, width)
        for q in canvas.positions():
            column = canvas.column(q)
            drawn = column < len(strip) and strip[column] == "█"
            o = q - p
            if 0 <= o < out:
                assert drawn == (writes[o] != 0), f"input {i + 1}, full position {q}: {lines}"
