"""The output layer: every command hands its result to a renderer here, in one of three formats.

- ``output.py``  where output goes and how it may look, decided once: the format (``json``;
  ``rich`` on a terminal; ``plain`` on pipes and files), width, colour (none at all with
  ``NO_COLOR`` or ``TERM=dumb``), ASCII spellings on streams that cannot encode ``× → − ✓ █``,
  JSON that stays valid in any encoding, closed or full streams. ``Output`` is what renderers write to.
- ``text.py``    user text made safe to show (control characters escaped, long values shortened).
- ``table.py``   the column registry, the plain table, the terminal table (rich's look, laid out
  in one pass: fitted to the width by column priority, never a cut number; ``--wide``/``--columns``).
- ``progress.py`` a progress indicator on stderr for long work (only on a terminal, only when slow).
- one module per result type: ``calculator.py`` (conv/tconv/pool answer, chain), ``model.py``
  (model summary, --find-sizes, --list), ``examples.py``, ``values.py`` (--values), ``why.py``,
  ``errors.py`` (the one error line).

How to add a renderer (for a new command or result type):

1. Write ``convcalc/render/<result>.py`` with one function that takes the result and an
   ``Output`` and branches on ``out.format``::

       def solutions(result: Solutions, out: Output) -> None:
           if out.format == JSON:
               out.json(result.as_dict())          # the one JSON dumper
           elif out.format == PLAIN:
               out.lines(plain_table(...))         # plain text: no colour, no box drawing
           else:                                   # RICH: a terminal
               terminal_table(out, title, COLUMNS, result.rows)
               out.line(out.styled("✓ all agree", "green"))   # styles vanish under NO_COLOR

   A rich renderer may simply call the plain one when a table would add nothing. Write ``×``,
   ``→``, ``✓`` freely: streams that cannot encode them get ASCII spellings. ``out.console()``
   gives a rich Console (markup off) for anything else rich draws; import rich only there.
2. In the command: parse options → call the core → ``render.<result>.<function>(result,
   Output.for_stdout(as_json=as_json))``. Raise ``ConvcalcError`` for invalid input: ``cli.py``
   catches it and renders the one error line (and the JSON error object under ``--json``).
3. Text the user wrote (names, paths) goes through ``text.one_line``/``visible`` (tables do it for
   columns declared ``user_text=True``); rich never parses markup here (``markup=False``, ``Text``).
4. Warnings: ``output.warn(lines)`` (stderr). Long loops: ``progress.track(...)``.
5. Keep the start-up path light: import rich (and anything heavy) inside the rich branch only.
6. Pin the output in ``tests/test_golden.py`` (plain and rich); test widths with
   ``Output(format=RICH, stream=io.StringIO(), width=80, color=False)`` (see tests/test_render.py).
"""

from __future__ import annotations

from typing import Any

#: Older names, still importable from ``convcalc.render`` (loaded on first use).
_MOVED = {
    "Column": "table",
    "plain_table": "table",
    "human_count": "numbers",
    "human_bytes": "numbers",
    "render_plain": "model",
    "render_rich": "model",
    "total_lines": "model",
    "header_line": "model",
    "COLUMNS": "model",
    "to_json": "output",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
