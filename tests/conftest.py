"""Shared fixtures of the test suite (append new ones; keep this file small)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pytest


def _torch_agrees(type_name: str, kwargs: dict[str, Any], shape: Sequence[int]) -> str:
    """Run ``convcalc.layer(type_name, **kwargs)`` and ``torch.nn.<type_name>(**kwargs)`` on
    ``shape`` side by side and assert they agree; returns ``"ok"`` or ``"error"``.

    Agreement: convcalc raises ShapeError/SpecError (at construction, ``output_shape``,
    ``num_params`` or ``macs``) exactly when torch raises (at construction or in forward);
    when neither raises, the output shape, the parameter count and MACs (FlopCounterMode's
    flops // 2) are equal. Any other exception from convcalc fails the test.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import convcalc

    shape = tuple(shape)
    where = f"{type_name}(**{kwargs!r}) on input {shape}"
    engine: tuple[Any, ...] | None = None
    try:
        made = convcalc.layer(type_name, **kwargs)
        engine = (made.output_shape(shape), made.num_params, made.macs(shape))
    except (convcalc.ShapeError, convcalc.SpecError) as exc:
        engine_error: Exception | None = exc
    else:
        engine_error = None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = getattr(torch.nn, type_name)(**kwargs)
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                result = module(torch.zeros(shape))
        except Exception as exc:  # torch's refusals come as RuntimeError, ValueError, TypeError …
            torch_error: Exception | None = exc
        else:
            torch_error = None

    if torch_error is not None:
        assert engine_error is not None, (
            f"torch raises but convcalc answers {engine}: {where}\n"
            f"  torch: {type(torch_error).__name__}: {torch_error}"
        )
        return "error"
    assert engine_error is None, (
        f"convcalc raises but torch gives {tuple(result.shape)}: {where}\n  convcalc: {engine_error}"
    )
    assert engine is not None
    out, params, macs = engine
    assert out == tuple(result.shape), f"output shape {out} ≠ torch {tuple(result.shape)}: {where}"
    torch_params = sum(p.numel() for p in module.parameters())
    assert params == torch_params, f"num_params {params} ≠ torch {torch_params}: {where}"
    flops = counter.get_total_flops()
    assert macs == flops // 2, f"macs {macs} ≠ torch flops {flops} // 2: {where}"
    return "ok"


@pytest.fixture(scope="session")
def torch_agrees():
    """The torch oracle: ``torch_agrees(type_name, kwargs, input_shape)`` (see ``_torch_agrees``)."""
    pytest.importorskip("torch")
    return _torch_agrees
