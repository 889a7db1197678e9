"""Shared fixtures of the test suite (append new ones; keep this file small)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pytest


def _convcalc_answer(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...], bound: bool) -> Any:
    """convcalc's (output shape, num_params, MACs, layer), or the ShapeError/SpecError it raises."""
    import convcalc

    try:
        layer = made = convcalc.layer(type_name, **kwargs)
        if bound:
            layer = made.bind(shape)
        out = layer.output_shape(shape)
        if bound:
            assert made.output_shape(shape) == out, "the unbound layer gives another shape"
        params, macs = layer.num_params, layer.macs(shape)
    except (convcalc.ShapeError, convcalc.SpecError) as exc:
        if bound:
            message = str(exc)
            assert "\n" not in message and message.startswith(type_name), f"message not one line: {message!r}"
        return exc
    if bound:  # the rest of the API must answer for any input the layer accepts
        layer.window(shape)
        layer.describe()
        layer.warnings(shape)
        layer.explain(shape)
    return out, params, macs, layer


def _torch_answer(type_name: str, kwargs: dict[str, Any], shape: tuple[int, ...], empty_is_error: bool) -> Any:
    """torch's (output shape, parameter count, FlopCounterMode's flops // 2) in eval mode, or what it raises."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = getattr(torch.nn, type_name)(**kwargs)
            module.eval()
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                result = module(torch.zeros(shape))
        except Exception as exc:  # torch's refusals come as RuntimeError, ValueError, TypeError, IndexError …
            return exc
    if empty_is_error and result.numel() == 0:
        return ValueError(f"empty output {tuple(result.shape)}")
    return tuple(result.shape), sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


def _torch_agrees(
    type_name: str,
    kwargs: dict[str, Any],
    shape: Sequence[int],
    torch_kwargs: dict[str, Any] | None = None,
    *,
    bound: bool = False,
    empty_is_error: bool = False,
) -> str:
    """Run ``convcalc.layer(type_name, **kwargs)`` and ``torch.nn.<type_name>(**kwargs)`` (in eval
    mode) on ``shape`` side by side and assert they agree; returns ``"ok"`` or ``"error"``.

    Agreement: convcalc raises ShapeError/SpecError (at construction, ``output_shape``,
    ``num_params`` or ``macs``) exactly when torch raises (at construction or in forward);
    when neither raises, the output shape, the parameter count and MACs (FlopCounterMode's
    flops // 2) are equal. Any other exception from convcalc fails the test.

    ``torch_kwargs``: what torch gets instead of ``kwargs`` (an argument convcalc infers, torch needs).
    ``bound``: convcalc answers through ``layer.bind(shape)`` (which fills inferred arguments), and
    the layer's contract is checked too: the unbound layer gives the same shape, a refusal is one
    line starting with the type name, window/describe/warnings/explain answer, and
    ``torch_kwargs()`` rebuilds a module of torch's output shape and parameter count.
    ``empty_is_error``: torch's empty output counts as a refusal (the shape-only families refuse
    zero-size outputs, and so does adaptive pooling with output_size 0, where torch gives them).
    """
    shape = tuple(shape)
    torch_kwargs = kwargs if torch_kwargs is None else torch_kwargs
    where = f"{type_name}(**{kwargs!r}) on input {shape}"
    if torch_kwargs is not kwargs:
        where += f" (torch: {torch_kwargs!r})"
    engine = _convcalc_answer(type_name, kwargs, shape, bound)
    theirs = _torch_answer(type_name, torch_kwargs, shape, empty_is_error)

    if isinstance(theirs, Exception):
        assert isinstance(engine, Exception), (
            f"torch raises but convcalc answers {engine[:3]}: {where}\n  torch: {type(theirs).__name__}: {theirs}"
        )
        return "error"
    assert not isinstance(engine, Exception), (
        f"convcalc raises but torch gives {theirs[0]}: {where}\n  convcalc: {engine}"
    )
    (out, params, macs, layer), (torch_out, torch_params, torch_macs) = engine, theirs
    assert out == torch_out, f"output shape {out} ≠ torch {torch_out}: {where}"
    assert params == torch_params, f"num_params {params} ≠ torch {torch_params}: {where}"
    assert macs == torch_macs, f"macs {macs} ≠ torch flops // 2 = {torch_macs}: {where}"
    if bound:
        rebuilt = _torch_answer(type_name, layer.torch_kwargs(), shape, empty_is_error)
        assert not isinstance(rebuilt, Exception) and rebuilt[:2] == (torch_out, torch_params), (
            f"torch_kwargs() {layer.torch_kwargs()!r} rebuilds another module: {where}"
        )
    return "ok"


@pytest.fixture(scope="session")
def torch_agrees():
    """The torch oracle: ``torch_agrees(type_name, kwargs, input_shape, torch_kwargs=None, *,
    bound=False, empty_is_error=False)`` (see ``_torch_agrees``)."""
    pytest.importorskip("torch")
    return _torch_agrees


def _torch_refuses_alike(type_name: str, kwargs: dict[str, Any], shape: Sequence[int]) -> str:
    """Both convcalc and torch refuse ``type_name(**kwargs)`` on ``shape``, for the same reason
    (tests/refusals.py); returns the reason."""
    from refusals import same_reason

    engine = _convcalc_answer(type_name, kwargs, tuple(shape), False)
    theirs = _torch_answer(type_name, kwargs, tuple(shape), False)
    assert isinstance(engine, Exception) and isinstance(theirs, Exception), (engine, theirs)
    return same_reason(str(engine), str(theirs))


@pytest.fixture(scope="session")
def torch_refuses_alike():
    """``torch_refuses_alike(type_name, kwargs, input_shape)``: see ``_torch_refuses_alike``."""
    pytest.importorskip("torch")
    return _torch_refuses_alike


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the command line in-process: ``cli(*args)`` → (exit code, stdout, stderr)."""
    from convcalc.cli import run

    def invoke(*args: Any) -> tuple[int, str, str]:
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


# -- golden files: what users see, pinned -------------------------------------------------------
# `python -m pytest --update-goldens` rewrites every golden file from the current output; review
# the diff (`git diff tests/golden`) and commit it with the change that meant it.

GOLDEN_DIR = __import__("pathlib").Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current output instead of comparing with it",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(text)``: ``text`` must equal ``tests/golden/<test>/<parameters>.txt`` (or, with
    ``--update-goldens``, becomes it)."""
    import re

    test = request.node.originalname
    param = request.node.callspec.id if hasattr(request.node, "callspec") else "output"
    path = GOLDEN_DIR / test / (re.sub(r"[^A-Za-z0-9_.+=-]+", "_", param) + ".txt")

    def check(text: str) -> None:
        if request.config.getoption("--update-goldens"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"no golden file {path.relative_to(GOLDEN_DIR.parent)}; run `python -m pytest --update-goldens`"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, (
            f"the output differs from {path.relative_to(GOLDEN_DIR.parent)}; if the change is meant, "
            "run `python -m pytest --update-goldens` and review `git diff tests/golden`"
        )

    return check


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """Run the command line in-process with stdout/stderr as a terminal (``rich=True``: a tty
    120 columns wide, colourless: TERM=dumb, NO_COLOR; rich's Console honours COLUMNS there
    only with LINES set) or as pipes: ``terminal(args, rich=...)``
    → (exit code, stdout, stderr)."""
    import io
    import sys

    from convcalc.cli import run

    class Stream(io.TextIOWrapper):
        def __init__(self, tty: bool) -> None:
            super().__init__(io.BytesIO(), encoding="utf-8", newline="\n", write_through=True)
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

        def text(self) -> str:
            self.flush()
            return self.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "40")  # rich takes COLUMNS on a dumb terminal only with LINES

    def invoke(args: Sequence[str], *, rich: bool) -> tuple[int, str, str]:
        out, err = Stream(rich), Stream(rich)
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            patch.setattr(sys, "stderr", err)
            code = run([str(a) for a in args])
        return code, out.text(), err.text()

    return invoke
