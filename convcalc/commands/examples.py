"""``convcalc examples``: solve and check the exercises of examples.yaml."""

from __future__ import annotations

import click

from ..cli import ExitCode
from ..options import json_option

# -- examples -------------------------------------------------------------------------------


@click.command()
@click.argument("path", required=False, default=None, type=click.Path(dir_okay=False))
@click.option("--path", "show_path", is_flag=True, help="Print where the packaged examples.yaml is, and exit.")
@json_option
@click.pass_context
def examples(ctx: click.Context, path: str | None, show_path: bool, as_json: bool) -> None:
    """Solve and check every course exercise (the packaged examples.yaml), or those of PATH.

    Prints question, answer, expected and ✓/✗ for each; exits 1 if any disagrees.
    PATH has the format described at the top of the packaged examples.yaml
    (its location: convcalc examples --path).

    \b
      convcalc examples
      convcalc examples my_homework.yaml --json
    """
    from ..exercises import check_file, default_path
    from ..render import examples as render
    from ..render.output import Output

    if show_path:
        Output.for_stdout().line(str(default_path()))
        return
    outcomes = check_file(path or default_path())
    render.outcomes(outcomes, Output.for_stdout(as_json=as_json))
    if not all(o.ok for o in outcomes):
        ctx.exit(ExitCode.INVALID)
