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
    zero-size outputs; adaptive pooling gives them, as torch does).
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


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the command line in-process: ``cli(*args)`` → (exit code, stdout, stderr)."""
    from convcalc.cli import run

    def invoke(*args: Any) -> tuple[int, str, str]:
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
