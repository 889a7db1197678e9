"""``verify --emit-spec``: write a Python model whose leaves run in sequence as a convcalc spec —
safely (never over a file without ``force``, never over the model's source, atomically) and
exactly (the emitted spec is built as torch modules with the model's weights, both run on the
same random input, and the spec is written only if the outputs agree)."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

from ..errors import ConvcalcError, InputError
from ..graph import describe_shape, load_model
from ..layers import Layer, lookup
from ..reader import STDOUT, output_target
from ..sizes import format_shape
from .report import VerifyError, VerifyReport
from .runtime import _eval_mode, import_torch, seed_dynamo_disable, torch_dtype

#: Arguments that a spec infers from the incoming shape; an emitted spec leaves them out.
INFERRED = ("in_channels", "in_features", "num_features", "num_channels")

#: Arguments with one value per spatial axis: ``(3, 3)`` can be written ``3``. Others
#: (LayerNorm's normalized_shape, Unflatten's unflattened_size) mean something else as one number.
PER_AXIS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding", "output_size"})

#: Outputs agree when torch.allclose(model, spec, rtol, atol) holds (float32 on CPU).
RTOL, ATOL = 1e-4, 1e-5


def source_files(model: Any) -> set[str]:
    """The files that define the model's classes (never to be overwritten by an emitted spec)."""
    files = set()
    for module in model.modules():
        with contextlib.suppress(TypeError, OSError):
            name = inspect.getsourcefile(type(module))
            if name:
                files.add(os.path.realpath(name))
    return files


def check_destination(path: str, *, force: bool = False, protected: Iterable[str] = (), option: str = "--emit-spec") -> str:
    """Refuse, before anything runs, a destination that cannot or must not be written (an
    InputError, exit 2): what :func:`convcalc.reader.output_target` refuses (a folder, a pipe, a
    device, a missing or unwritable folder), the model's own source, an existing file without
    ``force``. Returns the path to write, ``-`` (stdout) for ``-`` and ``/dev/stdout``."""
    target = output_target(path, option=option, example="model.yaml")
    if target == STDOUT:
        return target
    real = os.path.realpath(path)
    if real in {os.path.realpath(p) for p in protected}:
        raise InputError(f"{option} {path}: that is the model's own source file; name another file", file=path)
    if os.path.lexists(path) and not force:
        raise InputError(f"{option} {path}: the file exists; add --force to replace it, or name another file", file=path)
    return target


def spec_text(report: VerifyReport) -> str:
    """The YAML spec of ``report``'s chain of leaves (``name:`` is the model's class name)."""
    import yaml

    if report.sequential is not None:
        cause = own_work(report)
        if cause is not None:
            raise VerifyError(_own_work_message(cause))
        raise VerifyError(f"--emit-spec needs modules that run one after another: {report.sequential}")
    entries: list[Any] = []
    for check in report.checks:
        assert check.layer is not None
        args = _spec_args(check.layer)
        entry: Any = {check.layer.type_name: args} if args else check.layer.type_name
        if check.params and not check.trainable_params:
            entry = {check.layer.type_name: args or {}, "trainable": False}
        entries.append(entry)
    data = {"name": report.name, "input": list(report.input_shape[1:]), "layers": entries}
    header = f"# written by convcalc verify --emit-spec from {report.name} (torch {report.torch_version})\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)


def emit_spec(report: VerifyReport, path: str, *, force: bool = False, out: Any = None) -> int:
    """Write ``report``'s model as a spec at ``path`` (``-``: to ``out``, default stdout), after
    proving it: same totals when loaded, same output as the model on a random input. Graph models
    are traced with torch.fx (:mod:`.fx_emission`); a model fx cannot trace is written as its chain
    of leaves, if they run one after another. Returns the number of rows written."""
    from .fx_emission import fx_emission

    model = report.module
    if model is None:
        raise VerifyError("--emit-spec needs the report of verify_python (the model it ran)")
    path = check_destination(path, force=force, protected=source_files(model))
    emitted = fx_emission(report)
    if not isinstance(emitted, str):
        text, rows = emitted.text, emitted.rows
    else:  # fx cannot trace it: the chain of leaves, if they run one after another
        try:
            text = spec_text(report)
            summary = _load_text(text, report)
            check_totals(report, summary, report.checks[-1].output_shape)
            prove(report, summary)
        except VerifyError as error:
            raise VerifyError(f"{error.message} (torch.fx cannot trace it either: {emitted})") from None
        rows = len(summary.rows)
    if path == STDOUT:
        (out or sys.stdout).write(text)
        return rows
    _write_atomically(path, text)
    return rows


def check_totals(report: VerifyReport, summary: Any, output_shape: Any) -> None:
    """The loaded spec has the model's parameters, MACs and output shape, or nothing is written."""
    mine, theirs = summary.totals, report.totals
    if (mine.params, mine.macs, tuple(summary.output_shape)) != (theirs.params, theirs.macs, tuple(output_shape)):
        raise VerifyError(
            f"--emit-spec: the spec gives {mine.params:,} params, {mine.macs:,} MACs, output {format_shape(summary.output_shape)};"
            f" the module has {theirs.params:,}, {theirs.macs:,}, {describe_shape(tuple(output_shape))}; nothing written"
        )


def _load_text(text: str, report: VerifyReport) -> Any:
    folder = tempfile.mkdtemp(prefix="convcalc-emit-")
    scratch = os.path.join(folder, "spec.yaml")
    try:
        with open(scratch, "w", encoding="utf-8") as handle:
            handle.write(text)
        return load_model(scratch).summary(batch=report.input_shape[0], dtype=report.dtype)
    except ConvcalcError as error:  # what it wrote does not read back: convcalc's own fault, said as such
        where = f"line {error.line}: " if error.line else ""
        raise VerifyError(
            f"--emit-spec: the spec written for {report.name} does not load back ({where}{error.detail}); this is a convcalc bug,"
            " please report it with the model; nothing written"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(scratch)
            os.rmdir(folder)


def _write_atomically(path: str, text: str) -> None:
    """A temporary file in the same folder, then a rename over ``path`` (a symlink is replaced,
    never written through)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), _mode_for(path))  # mkstemp's 0600 is for the scratch file only
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise InputError(f"--emit-spec {path}: cannot write it ({error.strerror or error})", file=path) from None


def _mode_for(path: str) -> int:
    """The permissions of the file being replaced, else those of a new file (0666 less the umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def prove(report: VerifyReport, summary: Any) -> None:
    """Build the spec as torch modules with the model's weights, run both on the same random input,
    and refuse — naming the module whose own forward computes around its children — unless the
    outputs agree to float tolerance."""
    torch = import_torch()
    from .specs import build_module, materialize

    model = report.module
    device = next((p.device for p in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    if device.type == "meta":
        raise VerifyError("--emit-spec proves the spec by running it beside the model, which needs --device cpu (or cuda), not meta")
    dt = torch_dtype(torch, report.dtype)
    net = build_module(summary, torch)
    materialize(torch, net, device, dt)
    leaves = [report.calls_modules[i] for i in range(len(report.checks))]
    for index, (theirs, mine) in enumerate(zip(leaves, net.layers)):
        try:
            mine.load_state_dict(theirs.state_dict())
        except (RuntimeError, KeyError) as error:
            raise VerifyError(f"--emit-spec: the weights of '{report.checks[index].name}' do not fit the spec's {report.checks[index].type} ({error}); nothing written") from None
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(tuple(report.input_shape), generator=generator, dtype=dt).to(device)
    with torch.no_grad(), _eval_mode(model), _eval_mode(net):
        worker = _OwnWork(torch, model)
        with worker:
            expected = model(x)
        got = net(x)
    if isinstance(expected, tuple):
        expected = expected[0]
    if isinstance(got, tuple):
        got = got[0]
    same = tuple(expected.shape) == tuple(got.shape) and torch.allclose(expected, got, rtol=RTOL, atol=ATOL)
    if same:
        return
    if worker.first is not None:
        raise VerifyError(_own_work_message(worker.first))
    gap = (expected - got).abs().max().item() if tuple(expected.shape) == tuple(got.shape) else "shape"
    raise VerifyError(f"--emit-spec: the spec's output differs from the model's on the same input (largest difference {gap}); nothing written")


def _own_work_message(cause: tuple[str, str, str]) -> str:
    path, kind, op = cause
    return (
        f"--emit-spec: '{path}' ({kind}) computes in its own forward (torch's {op!r} first) around its child modules, which a chain"
        " of layers cannot express; the spec would compute something else, so nothing was written"
    )


def own_work(report: VerifyReport) -> tuple[str, str, str] | None:
    """Run the model once more and return the first (path, class, operator) that a module with
    children computes in its own forward; None if there is none (or the model cannot run again)."""
    torch = import_torch()
    model = report.module
    if model is None:
        return None
    device = next((p.device for p in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    x = torch.zeros(tuple(report.input_shape), dtype=torch_dtype(torch, report.dtype), device=device)
    worker = _OwnWork(torch, model)
    try:
        with torch.no_grad(), _eval_mode(model), worker:
            model(x)
    except Exception:  # noqa: BLE001  only a better message is at stake
        return None
    return worker.first


class _OwnWork:
    """While the model runs: the first operator that a module with children executes in its own
    forward (not inside a child), views and other aliases excepted — (path, class path, operator)."""

    def __init__(self, torch: Any, model: Any) -> None:
        self.torch = torch
        self.model = model
        self.stack: list[tuple[str, Any, bool]] = []
        self.first: tuple[str, str, str] | None = None
        self.handles: list[Any] = []
        self.mode: Any = None
        self.seed: Any = None

    def __enter__(self) -> _OwnWork:
        for path, module in self.model.named_modules():
            leaf = next(iter(module.children()), None) is None
            label = path or type(self.model).__name__
            self.handles.append(module.register_forward_pre_hook(self._enter(label, leaf)))
            self.handles.append(module.register_forward_hook(self._leave))
        mode_class = _own_work_mode(self.torch)
        self.seed = seed_dynamo_disable(mode_class)
        self.seed.__enter__()
        self.mode = mode_class(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args: object) -> None:
        self.mode.__exit__(None, None, None)
        self.seed.__exit__(None, None, None)
        for handle in self.handles:
            handle.remove()

    def _enter(self, label: str, leaf: bool) -> Any:
        def hook(module: Any, args: Any) -> None:
            self.stack.append((label, module, leaf))

        return hook

    def _leave(self, module: Any, args: Any, output: Any) -> None:
        if self.stack:
            self.stack.pop()

    def saw(self, func: Any) -> None:
        if self.first is not None or not self.stack:
            return
        path, module, leaf = self.stack[-1]
        if leaf:
            return
        returns = getattr(getattr(func, "_schema", None), "returns", ())
        if returns and all(r.alias_info is not None and not r.alias_info.is_write for r in returns):
            return  # a view (reshape, flatten, slicing …) computes nothing; in-place ops (out += x) do
        cls = type(module)
        self.first = (path, f"{cls.__module__}.{cls.__qualname__}", str(getattr(func, "__name__", func)).split(".")[0])


def _own_work_mode(torch: Any) -> Any:
    cached = getattr(_own_work_mode, "cache", None)
    if cached is not None:
        return cached
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Mode(TorchDispatchMode):  # type: ignore[misc]
        def __init__(self, owner: _OwnWork) -> None:
            super().__init__()
            self.owner = owner

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            self.owner.saw(func)
            return func(*args, **(kwargs or {}))

    _own_work_mode.cache = _Mode  # type: ignore[attr-defined]
    return _Mode


def _spec_args(layer: Layer) -> dict[str, Any]:
    """The layer's torch arguments that differ from the defaults, as YAML-friendly values."""
    _, family = lookup(layer.type_name)
    args = {}
    for key, value in layer.torch_kwargs().items():
        if key in INFERRED:
            continue
        value = _yaml_value(value, per_axis=key in PER_AXIS)
        default = family.PARAMS.get(key, object())
        if value == default or (isinstance(value, list) and len(set(map(str, value))) == 1 and value[0] == default):
            continue
        args[key] = value
    return args


def _yaml_value(value: Any, *, per_axis: bool = False) -> Any:
    if isinstance(value, (tuple, list)):
        items = [_yaml_value(v) for v in value]
        same = items and all(i == items[0] for i in items) and all(isinstance(i, int) for i in items)
        return items[0] if per_axis and same else items
    return value
