"""emit-spec's proof: the spec built as torch modules with the model's weights gives the model's output on the
same random input (:func:`_prove`), else the first fx node whose row differs is named."""

from __future__ import annotations

from typing import Any

from .fx_rows import Entry, _dims, _first, _refusal_text
from .report import VerifyError, VerifyReport
from .runtime import _eval_mode, torch_dtype

# -- proof ------------------------------------------------------------------------------------


def _prove(torch: Any, report: VerifyReport, graph: Any, entries: list[Entry], summary: Any, x: Any) -> None:
    """Build the spec as torch modules with the model's weights, run it and the model on ``x``, and
    refuse unless the outputs agree; a disagreement names the first fx node whose row differs."""
    from .emission import ATOL, RTOL
    from .specs import build_module, materialize

    model = report.module
    dt = torch_dtype(torch, report.dtype)
    net = build_module(summary, torch)
    materialize(torch, net, x.device, dt)
    rows = {e.row: e for e in entries}
    for row, mine in zip(summary.rows, net.layers):
        entry = rows.get(row.name)
        if entry is None or (entry.module is None and entry.state is None) or entry.tie is not None:
            continue
        try:
            mine.load_state_dict(entry.module.state_dict() if entry.state is None else entry.state)
        except (RuntimeError, KeyError) as error:
            raise VerifyError(f"--emit-spec: the weights of '{entry.node}' do not fit the spec's {row.type} ({_first(error)}); nothing written") from None
    with torch.no_grad(), _eval_mode(model), _eval_mode(net):
        expected = model(x)
        got = net(x)
    if isinstance(got, tuple):
        got = got[0]
    if not isinstance(expected, torch.Tensor):
        raise VerifyError(f"--emit-spec: {report.name} returns a {type(expected).__name__}, a spec one tensor; nothing written")
    if tuple(expected.shape) == tuple(got.shape) and torch.allclose(expected, got, rtol=RTOL, atol=ATOL):
        return
    node = _first_difference(torch, report, graph, net, summary, rows, x)
    gap = (expected - got).abs().max().item() if tuple(expected.shape) == tuple(got.shape) else "shape"
    if node is not None:
        entry, detail = node
        fx_node = next(n for n in graph.graph.nodes if n.name == entry.node)
        raise VerifyError(_refusal_text(report.name, fx_node, f"gives another value as the spec's {entry.type} '{entry.row}' ({detail})"))
    raise VerifyError(
        f"--emit-spec: the spec computes what the traced graph computes, but the model's own forward gives another output"
        f" (largest difference {gap}): its forward does something fx does not record; nothing written"
    )


def _first_difference(torch: Any, report: VerifyReport, graph: Any, net: Any, summary: Any, rows: dict[str, Entry], x: Any) -> tuple[Entry, str] | None:
    import torch.fx

    from .emission import ATOL, RTOL

    seen: dict[str, Any] = {}

    class Interpreter(torch.fx.Interpreter):  # type: ignore[misc,name-defined]
        def run_node(self, n: Any) -> Any:
            result = super().run_node(n)
            if isinstance(result, torch.Tensor):
                seen[n.name] = result.detach().clone()
            return result

    outputs: dict[int, Any] = {}
    handles = []
    for index, module in enumerate(net.layers):
        def hook(m: Any, args: Any, out: Any, index: int = index) -> None:
            value = out[0] if isinstance(out, tuple) else out
            outputs.setdefault(index, []).append(value.detach().clone())

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), _eval_mode(report.module), _eval_mode(net):
            Interpreter(graph).run(x)
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    for index, row in enumerate(summary.rows):
        entry = rows.get(row.name)
        values = outputs.get(index, [])
        if entry is None or entry.node not in seen or not values:
            continue
        theirs, mine = seen[entry.node], values[0]
        if tuple(theirs.shape) != tuple(mine.shape):
            if entry.type == "AdaptiveAvgPool2d":
                continue  # mean without keepdim: its Flatten row compares
            return entry, f"shape {_dims(tuple(mine.shape))} vs {_dims(tuple(theirs.shape))}"
        if not torch.allclose(theirs, mine, rtol=RTOL, atol=ATOL):
            return entry, f"largest difference {(theirs - mine).abs().max().item():.3g}"
    return None
