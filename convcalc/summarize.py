"""``convcalc.summary``: torchinfo's ``summary()`` for notebooks, over convcalc's two engines.

A dispatcher, not a third engine: a spec (a path, a packaged example's name, or a loaded
:class:`~convcalc.graph.Model`) is walked by the model walk without torch; an ``nn.Module`` is run
by :func:`convcalc.verify.verify_python`, which recomputes every leaf convcalc knows. Both give a
:class:`ModelSummary`, which prints as the plain table, renders as HTML in a notebook and as the
terminal table in a rich console. Nothing is printed unless ``verbose``.

A model that does not fit raises (never returns a partial result that could be read as a
whole one): a spec raises :class:`~convcalc.graph.ModelError` (a ``ShapeError``) whose
``.summary`` holds the rows up to the failing layer; an ``nn.Module`` that fails mid-forward
raises :class:`~convcalc.verify.VerifyError` with the one-line diagnosis of ``convcalc verify``
(the module that raised, torch's message, the user's line) and no torch traceback.

(Named ``summarize`` so that the module does not shadow the function ``convcalc.summary``.)
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .builder import SpecBuilder
from .errors import SpecError
from .graph import Model, Row, Summary, Totals
from .render.output import PLAIN, RICH, Output

if TYPE_CHECKING:
    from .verify import LayerCheck, VerifyReport

#: torchinfo's default depth: rows deeper than three module-path components are folded into their parent.
DEFAULT_DEPTH = 3
_OWN = " (own forward)"  # verify's suffix for the work a module does outside its children
_MAX_INPUTS, _MAX_DIMS = 64, 8


@dataclasses.dataclass
class ModelSummary:
    """What ``convcalc.summary`` returns: the rows shown (collapsed to ``depth``), the totals,
    torchinfo's attribute names, the ``--json`` document and, for an ``nn.Module``, the verdict."""

    #: the model walk's result (a spec), or None
    summary: Summary | None
    #: verify's result (an nn.Module), or None
    report: VerifyReport | None
    #: the rows shown: ``Row``s of a spec or ``LayerCheck``s of a module, folded to ``depth``
    rows: list[Any]
    depth: int | None

    @property
    def all_rows(self) -> list[Any]:
        """Every layer, whatever ``depth`` folded."""
        return list(self.summary.rows) if self.summary is not None else list(self.report.checks)  # type: ignore[union-attr]

    @property
    def totals(self) -> Totals:
        return self.summary.totals if self.summary is not None else self.report.totals  # type: ignore[union-attr]

    @property
    def total_params(self) -> int:
        """Every parameter once (tied weights once), as ``sum(p.numel() for p in model.parameters())``."""
        return self.totals.params

    @property
    def trainable_params(self) -> int:
        return self.totals.trainable_params

    @property
    def total_mult_adds(self) -> int:
        """MACs of the weights, bias excluded (FlopCounterMode ÷ 2); torchinfo also counts bias terms."""
        return self.totals.macs

    @property
    def ok(self) -> bool | None:
        """For an nn.Module: whether torch agreed with convcalc on every judged layer; None for a spec."""
        return self.report.ok if self.report is not None else None

    @property
    def verdict(self) -> str | None:
        """The one-line verdict ``convcalc verify`` prints (✓, ✗ with the reason, or · nothing compared)."""
        if self.report is None:
            return None
        from .render.verify import verdict

        return verdict(self.report)

    @property
    def mismatches(self) -> list[Any]:
        return self.report.mismatches if self.report is not None else []

    @property
    def warnings(self) -> list[str]:
        if self.report is not None:
            return list(self.report.warnings)
        from .render.model import layer_warnings

        return layer_warnings(self.summary.rows, self.summary.path)  # type: ignore[union-attr]

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``convcalc model`` (spec) or ``convcalc verify`` (module): every layer."""
        return self.summary.as_dict() if self.summary is not None else self.report.as_dict()  # type: ignore[union-attr]

    def __str__(self) -> str:
        buffer = io.StringIO()
        self._render(Output(format=PLAIN, stream=buffer, color=False))
        buffer.writelines(f"warning: {line}\n" for line in self.warnings)
        return buffer.getvalue().rstrip("\n")

    def _render(self, out: Output) -> None:
        """The table of ``convcalc model`` (spec) or ``convcalc verify`` (module), with the rows shown."""
        if self.summary is not None:
            from .render.model import render_plain, render_rich

            folded = dataclasses.replace(self.summary, rows=self.rows)
            render_plain(folded, out) if out.format == PLAIN else render_rich(folded, out=out)
            return
        from .render import verify

        verify.table(self.report, out, checks=self.rows)  # type: ignore[arg-type]
        if not self.report.ok:  # type: ignore[union-attr]
            out.line()
            verify.differences(self.report, out)  # type: ignore[arg-type]

    __repr__ = __str__  # as torchinfo's: the table

    def _repr_html_(self) -> str:
        from .render.html import table_html
        from .render.model import COLUMNS, header_line, total_lines

        if self.summary is not None:
            return table_html(header_line(self.summary), COLUMNS, self.rows, total_lines(self.totals), [f"warning: {w}" for w in self.warnings])
        from .render.verify import COLUMNS as CHECKS
        from .render.verify import footer, header

        report = self.report
        notes = [self.verdict or ""] + [f"{m.layer} ({m.type}): {m.what} convcalc {m.engine}, torch {m.torch}" for m in self.mismatches]
        return table_html(header(report), CHECKS, self.rows, footer(report), notes + [f"warning: {w}" for w in self.warnings])  # type: ignore[arg-type]

    def __rich__(self) -> Any:
        return _RichView(self)


class _RichView:
    """The terminal table at the console's width, for ``rich.print(s)``."""

    def __init__(self, result: ModelSummary) -> None:
        self.result = result

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        buffer = io.StringIO()
        self.result._render(Output(format=RICH, stream=buffer, width=options.max_width, color=True))
        yield Text.from_ansi(buffer.getvalue().rstrip("\n"))


def summary(
    model: Any,
    input_size: Any = None,
    *,
    input_data: Any = None,
    device: str = "cpu",
    dtypes: Sequence[Any] | None = None,
    depth: int | None = DEFAULT_DEPTH,
    batch: int | None = None,
    verbose: int = 0,
    max_memory: int | str = "2GiB",
) -> ModelSummary:
    """torchinfo's ``summary(model, input_size)``, checked against torch; see the module docstring.

    ``model``: an ``nn.Module``, a spec path, a packaged example's name (``"resnet18"``), a
    loaded model or a :class:`~convcalc.builder.SpecBuilder` (no torch needed for these four). ``input_size``: the shape with the batch,
    ``(1, 3, 224, 224)``, or a list of shapes for several inputs (a spec's own ``input:`` if
    omitted); ``input_data``: a tensor, a list/tuple of them (positional) or a dict (keywords).
    ``dtypes``: one per input (``torch.long`` for token ids; default float32); ``depth``: fold
    rows deeper than this many module-path components into their parent (None: every layer);
    ``batch``: replaces the batch of ``input_size`` (a spec's, default 1); ``verbose``: print it.
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise SpecError(f"depth must be a whole number ≥ 0 or None, got {depth!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise SpecError(f"batch must be a whole number ≥ 1, got {batch!r}")
    if isinstance(model, (str, os.PathLike, Model, SpecBuilder)):
        result = _spec_summary(model, input_size, input_data, dtypes, batch, depth)
    else:
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(model, torch.nn.Module):
            raise SpecError(
                f"convcalc.summary takes a torch.nn.Module, a spec path, a packaged example's name, a model from"
                f" convcalc.load_model or a convcalc.SpecBuilder, not a {type(model).__name__}"
            )
        result = _module_summary(torch, model, input_size, input_data, device, dtypes, batch, depth, max_memory)
    if verbose:
        print(result)
    return result


# -- specs (no torch) ---------------------------------------------------------------------------


def _spec_summary(model: Any, input_size: Any, input_data: Any, dtypes: Any, batch: int | None, depth: int | None) -> ModelSummary:
    from .packaged import load_named_model

    if input_data is not None:
        raise SpecError("input_data= runs an nn.Module; a spec's input is its input: line, or input_size=(N, C, H, W)")
    loaded = model if isinstance(model, Model) else model.model() if isinstance(model, SpecBuilder) else load_named_model(os.fspath(model))
    shape: tuple[int, ...] | None = None
    size_batch = 1
    if input_size is not None:
        sizes = _sizes(input_size)
        if len(sizes) != 1:
            raise SpecError(f"a spec has one input; input_size gives {len(sizes)}")
        full = sizes[0]
        if len(full) != len(loaded.input_shape) + 1:
            raise SpecError(
                f"input_size {full} has {len(full)} sizes; {loaded.name} takes the batch and {len(loaded.input_shape)} more"
                f" (its input: is {list(loaded.input_shape)}), e.g. {(1, *loaded.input_shape)}"
            )
        size_batch, shape = full[0], full[1:]
    dtype = _dtype_name(dtypes)
    walked = loaded.summary(batch=batch or size_batch, dtype=dtype, input_shape=shape)
    return ModelSummary(walked, None, _fold(walked.rows, depth, _fold_row), depth)


def _dtype_name(dtypes: Any) -> str:
    """``[torch.float16]`` or ``["float16"]`` → ``"float16"`` (one input); float32 by default."""
    if dtypes is None:
        return "float32"
    if isinstance(dtypes, (str, bytes)) or not isinstance(dtypes, Sequence) or len(dtypes) != 1:
        raise SpecError(f"dtypes must be a list with one dtype per input, e.g. [torch.float16] or ['float16'], got {dtypes!r}")
    from .sizes import dtype_bytes

    name = str(dtypes[0]).replace("torch.", "")
    dtype_bytes(name)
    return name


# -- nn.Modules (verify) ------------------------------------------------------------------------


def _module_summary(
    torch: Any, model: Any, input_size: Any, input_data: Any, device: str, dtypes: Any, batch: int | None, depth: int | None, max_memory: int | str
) -> ModelSummary:
    from .sizes import DTYPE_BYTES
    from .verify import parse_memory, verify_python

    limit = parse_memory(max_memory) if isinstance(max_memory, str) else max_memory
    name = type(model).__name__
    if (input_size is None) == (input_data is None):
        raise SpecError(f"give {name} either input_size=(N, C, H, W) (a list of them for several inputs) or input_data=")
    if input_data is not None:
        if dtypes is not None:
            raise SpecError("dtypes= applies to input_size=; input_data's tensors keep their own dtypes")
        args, kwargs = _data(torch, input_data)
    else:
        sizes = _sizes(input_size)
        if batch is not None:
            sizes = [(batch, *s[1:]) for s in sizes]
        kinds = _torch_dtypes(torch, dtypes, len(sizes))
        needed = sum(_elements(s) * torch.empty((), dtype=k).element_size() for s, k in zip(sizes, kinds))
        if needed > limit:
            from .verify import format_bytes

            raise SpecError(f"input_size {sizes} needs {format_bytes(needed)} of input alone, more than max_memory {format_bytes(limit)}")
        if len(sizes) == 1 and kinds[0].is_floating_point and str(kinds[0]).replace("torch.", "") in DTYPE_BYTES:
            # one floating input: verify's own path (meta estimate first, the model cast to the dtype)
            dtype = str(kinds[0]).replace("torch.", "")
            report = verify_python(model, sizes[0][1:], name=name, batch=sizes[0][0], dtype=dtype, device=device, max_memory=limit)
            return ModelSummary(None, report, _fold(report.checks, depth, _fold_check(model)), depth)
        args, kwargs = tuple(torch.zeros(s, dtype=k) for s, k in zip(sizes, kinds)), {}
    floats = [str(t.dtype).replace("torch.", "") for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    dtype = floats[0] if floats and floats[0] in DTYPE_BYTES else "float32"
    report = verify_python(model, (), name=name, dtype=dtype, device=device, max_memory=limit, inputs=(args, kwargs))
    return ModelSummary(None, report, _fold(report.checks, depth, _fold_check(model)), depth)


def _elements(shape: Sequence[int]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def _sizes(input_size: Any) -> list[tuple[int, ...]]:
    """``(1, 3, 224, 224)`` → one shape; ``[(1, 3, 32, 32), (1, 10)]`` → several (as torchinfo)."""
    if not isinstance(input_size, (list, tuple)) or not input_size:
        raise SpecError(f"input_size must be a shape with the batch, e.g. (1, 3, 224, 224), or a list of them; got {input_size!r}"[:300])
    shapes = [input_size] if all(isinstance(v, int) for v in input_size) else list(input_size)
    if len(shapes) > _MAX_INPUTS:
        raise SpecError(f"input_size gives {len(shapes)} inputs; at most {_MAX_INPUTS}")
    checked = []
    for shape in shapes:
        if (
            not isinstance(shape, (list, tuple))
            or not 1 <= len(shape) <= _MAX_DIMS
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10**9 for v in shape)
        ):
            raise SpecError(f"input_size: {shape!r} is not a shape like (1, 3, 224, 224) (1 to {_MAX_DIMS} whole numbers ≥ 1, batch first)"[:300])
        checked.append(tuple(shape))
    return checked


def _torch_dtypes(torch: Any, dtypes: Any, count: int) -> list[Any]:
    if dtypes is None:
        return [torch.float32] * count
    if isinstance(dtypes, (str, bytes)) or not isinstance(dtypes, Sequence) or len(dtypes) != count:
        raise SpecError(f"dtypes must be a list with one dtype per input ({count}), e.g. [torch.float32], got {dtypes!r}"[:300])
    kinds = []
    for kind in dtypes:
        value = getattr(torch, kind.replace("torch.", ""), None) if isinstance(kind, str) else kind
        if not isinstance(value, torch.dtype):
            raise SpecError(f"dtypes: {kind!r} is not a torch dtype (torch.float32, torch.long, …)"[:300])
        kinds.append(value)
    return kinds


def _data(torch: Any, input_data: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """torchinfo's ``input_data``: a tensor, a list/tuple (positional arguments) or a dict (keywords)."""
    if isinstance(input_data, torch.Tensor):
        return (input_data,), {}
    if isinstance(input_data, Mapping):
        if not all(isinstance(k, str) for k in input_data):
            raise SpecError("input_data: a dict's keys are forward's argument names (strings)")
        return (), dict(input_data)
    if isinstance(input_data, (list, tuple)):
        return tuple(input_data), {}
    raise SpecError(f"input_data must be a tensor, a list/tuple of them or a dict, not a {type(input_data).__name__}")


# -- depth: folding rows into their parent module ------------------------------------------------


def _fold(rows: Sequence[Any], depth: int | None, merge: Callable[[str, list[Any]], Any]) -> list[Any]:
    """Consecutive rows below ``depth`` module-path components become one row for their ancestor at
    that depth (``layer1.0.conv1`` → ``layer1`` at depth 1; an own-forward row counts at its
    module's path). ``depth=None``: every row as it is; 0: none (the totals only)."""
    if depth is None:
        return list(rows)
    groups: list[tuple[str | None, list[Any]]] = []
    for row in rows:
        own = row.name.endswith(_OWN)
        parts = (row.name[: -len(_OWN)] if own else row.name).split(".")
        key = ".".join(parts[:depth]) if len(parts) > depth else None
        if key is not None and groups and groups[-1][0] == key:
            groups[-1][1].append(row)
        else:
            groups.append((key, [row]))
    return [group[0] if key is None else merge(key, group) for key, group in groups if key != ""]


def _fold_row(key: str, rows: list[Row]) -> Row:
    first, last = rows[0], rows[-1]
    return dataclasses.replace(
        first,
        name=key,
        type="block",
        output_shape=last.output_shape,
        summary=f"{len(rows)} layers",
        params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        macs=sum(r.macs for r in rows),
        receptive_field=last.receptive_field,
        output_bytes=sum(r.output_bytes for r in rows),
        depth=key.count("."),
        warnings=tuple(dict.fromkeys(w for r in rows for w in r.warnings)),
    )


def _fold_check(model: Any) -> Callable[[str, list[LayerCheck]], LayerCheck]:
    def merge(key: str, checks: list[LayerCheck]) -> LayerCheck:
        first, last = checks[0], checks[-1]
        mismatches = tuple(m for c in checks for m in c.mismatches)
        try:
            kind = type(model.get_submodule(key)).__name__
        except AttributeError:
            kind = "block"
        outputs = [c for c in checks if not c.own]
        end = outputs[-1] if outputs else last
        return dataclasses.replace(
            first if not first.own else last,
            name=key,
            type=kind,
            input_shape=first.input_shape,
            output_shape=end.output_shape,
            torch_output_shape=end.torch_output_shape,
            params=sum(c.params for c in checks),
            trainable_params=sum(c.trainable_params for c in checks),
            macs=sum(c.macs for c in checks),
            torch_params=sum(c.torch_params or 0 for c in checks),
            torch_macs=sum(c.torch_macs or 0 for c in checks),
            # ✓ only when every row inside was judged and agreed; ✗ whenever one disagreed
            known=bool(mismatches) or (all(c.known or c.own for c in checks) and any(c.known for c in checks)),
            mismatches=mismatches,
            depth=key.count("."),
            own=False,
            row=None,
            layer=None,
            class_path="",
            judged_as="",
            not_judged="",
        )

    return merge
