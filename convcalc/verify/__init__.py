"""``convcalc verify``: build the real torch modules, run them once, compare every layer with the engine.

This is the only package of convcalc that imports torch, and it does so inside functions
(:func:`import_torch`), so that importing it — and the CLI — stays cheap.

Three kinds of target, one report (:class:`VerifyReport`):

- a spec (:func:`verify_model`): the engine walks it first — its verdict comes first, so an
  invalid spec is a :class:`~convcalc.graph.ModelError` before torch is even imported (the
  ``meta`` device skips several of CPU torch's checks and must never turn an error into a ✓).
  Then every leaf is built as ``getattr(torch.nn, row.type)(**row.layer.torch_kwargs())`` from
  the *bound* layer of its row, wired like the spec (merges are ``torch.add``/``torch.mul``/
  ``torch.cat``), and run once under ``torch.no_grad()``;
- a single calculator layer (``verify conv …``): a one-node spec;
- a user's ``nn.Module`` (:func:`verify_python`): it runs as written, and every leaf whose type
  the engine knows is rebuilt from its constructor attributes and recomputed on the input it
  really received.

Per layer, three numbers are compared: the output shape (forward hooks), the parameter count
(``numel`` of the module's parameters) and MACs (``FlopCounterMode`` flops // 2, measured
around each module call). Nothing here prints; ``commands/verify.py`` renders the report.

Modules: ``report`` (what was found), ``runtime`` (torch, devices, memory, the hooked forward
pass), ``specs`` (specs and calculator layers), ``user_models`` (a user's module), ``equivalents``
(modules of no torch.nn class, judged as the engine layers they are shown to compute), ``emission`` and
``fx_emission`` (``--emit-spec``: the chain of leaves, and torch.fx graphs).
"""

from .report import ClassicRow, LayerCheck, Mismatch, VerifyError, VerifyReport
from .runtime import format_bytes, import_torch, parse_memory, summary_estimate
from .specs import build_module, verify_model, verify_summary
from .memory import python_estimate, spec_estimate
from .emission import check_destination, emit_spec, source_files
from .user_models import layer_from_module, load_python_model, verify_python, verify_python_target

__all__ = [
    "ClassicRow",
    "LayerCheck",
    "Mismatch",
    "VerifyError",
    "VerifyReport",
    "build_module",
    "check_destination",
    "emit_spec",
    "source_files",
    "format_bytes",
    "import_torch",
    "layer_from_module",
    "load_python_model",
    "parse_memory",
    "summary_estimate",
    "verify_model",
    "verify_python",
    "verify_python_target",
    "python_estimate",
    "spec_estimate",
    "verify_summary",
]
