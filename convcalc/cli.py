"""The ``convcalc`` command line: parse options, call the core, render. Nothing else lives here."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from .errors import ConvcalcError
from .render.output import (
    Output,
    Settings,
    is_terminal,
    is_write_failure,
    prepare_streams,
    stderr_line,
)
from .render.output import warn as render_warn
from .render.text import shorten_words

#: Command name → "module:attribute"; a command's module is imported only when it runs (or for
#: --help), which keeps `convcalc conv` quick to start.
COMMANDS = {
    "conv": "convcalc.commands.calculator:conv",
    "tconv": "convcalc.commands.calculator:tconv",
    "pool": "convcalc.commands.calculator:pool",
    "chain": "convcalc.commands.calculator:chain",
    "model": "convcalc.commands.model:model",
    "examples": "convcalc.commands.examples:examples",
    "batch": "convcalc.commands.batch:batch",
    "verify": "convcalc.commands.verify:verify",
    "draw": "convcalc.commands.draw:draw",
    "why": "convcalc.commands.why:why",
    "solve": "convcalc.commands.solve:solve",
}

class ExitCode:
    """Exit codes of every command (click itself uses 2 for usage errors)."""

    OK = 0
    INVALID = 1
    USAGE = 2


class ConvcalcContext(click.Context):
    """click's context, with help text in ASCII spellings where stdout cannot encode ``×``/``→``
    (click writes UTF-8 bytes to an ASCII stream, bypassing the renderer's fallback)."""

    def get_help(self) -> str:
        from .render.output import for_stream

        return for_stream(super().get_help(), sys.stdout)


class ConvcalcGroup(click.Group):
    """Loads commands lazily; turns convcalc's errors into one line on stderr (plus JSON when
    asked) and exit code 1."""

    context_class = ConvcalcContext

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        command.context_class = ConvcalcContext
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConvcalcError as error:
            fail(ctx, error)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            stderr_line("convcalc: interrupted")
            ctx.exit(130)
        except BrokenPipeError:  # `convcalc model … | head`: the reader left; stop quietly
            raise
        except Exception as error:  # a bug of ours: say so in one line, keep the traceback for --traceback
            if is_write_failure(error):
                raise  # reported once, in run()
            if settings(ctx).traceback:
                raise
            stderr_line(
                shorten_words(f"convcalc: internal error: {type(error).__name__}: {error} (rerun with --traceback and report it)")
            )
            ctx.exit(ExitCode.INVALID)


def settings(ctx: click.Context) -> Settings:
    """What this run asked of the output (--json, --traceback, --wide …), on the root context."""
    return ctx.find_root().ensure_object(Settings)


def fail(ctx: click.Context, error: ConvcalcError) -> NoReturn:
    """Report ``error`` once (stderr, and stdout JSON under --json) and exit with its code (1, or 2 for usage)."""
    from .render.errors import report

    chosen = settings(ctx)
    report(error, Output.for_stdout(as_json=chosen.json, settings=chosen))
    if chosen.traceback:
        raise error
    ctx.exit(error.exit_code)


def remember_json(ctx: click.Context, as_json: bool) -> None:
    """Record --json for the error path (``options.json_option`` does it; kept for older callers)."""
    settings(ctx).json = as_json


def emit_json(data: Any) -> None:
    """Older name for ``Output.for_stdout(as_json=True).json(data)`` (the one JSON dumper)."""
    Output.for_stdout(as_json=True).json(data)


def use_rich() -> bool:
    """Tables are drawn with rich on a terminal; piped output is plain text."""
    return is_terminal(sys.stdout)


def warn(lines: Sequence[str]) -> None:
    render_warn(lines)


@click.group(cls=ConvcalcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convcalc", prog_name="convcalc")
@click.option("--traceback", is_flag=True, hidden=True, help="Show Python tracebacks (for bug reports).")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """Output sizes, parameters and compute of convolutional networks, exactly as PyTorch computes them.

    \b
      convcalc conv --in 227 --k 11 --s 4          # 55
      convcalc pool --in 26 --k 2 --s 2 --p 1      # 14
      convcalc tconv --in 3 --k 3 --s 3 --op 1     # 10
      convcalc chain 28 conv:k=5 maxpool:k=2       # 28 → 24 → 12
      convcalc model mnist_cnn                     # a packaged example; --list
      convcalc examples
      convcalc batch answers.csv > graded.csv      # grade many answers in one process

    Exit codes: 0 ok, 1 invalid geometry or model, 2 usage error (bad option or value, unreadable file).
    """
    settings(ctx).traceback = traceback


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: click's handling, with usage errors shortened to one line on stderr.

    Output that cannot be written is handled here, once: a closed stdout (``>&-``) or a full
    device (``>/dev/full``) is one line on stderr and exit 1; a reader that left (``| head -1``)
    ends quietly.
    """
    problem = prepare_streams()
    if problem is not None:
        stderr_line(f"error: {problem}")
        return ExitCode.INVALID
    try:
        code = main.main(args=argv, prog_name="convcalc", standalone_mode=False)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        return ExitCode.INVALID
    except OSError as error:
        if not is_write_failure(error):
            raise
        silence_stdout()
        stderr_line(f"error: cannot write the output: {error.strerror or error}")
        return ExitCode.INVALID
    except click.exceptions.NoArgsIsHelpError as error:
        sys.stdout.write((error.ctx.get_help() if error.ctx else error.format_message()) + "\n")
        return ExitCode.USAGE
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        stderr_line(usage_line(error.format_message(), hint))
        return ExitCode.USAGE
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        stderr_line("convcalc: aborted")
        return ExitCode.INVALID
    return code if isinstance(code, int) else ExitCode.OK


def silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that the interpreter's last flush does not fail a second time."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def usage_line(message: str, hint: str) -> str:
    from .render.errors import usage_line as line

    return line(message, hint)


def console() -> None:
    """The ``convcalc`` console script.

    A short-lived process: once the output is flushed it leaves with ``os._exit``, skipping the
    interpreter's teardown of every imported module (about a tenth of `convcalc conv`'s run time).
    After torch was imported (verify), the normal exit runs torch's own exit handlers.
    """
    code = run()
    if "torch" in sys.modules:
        sys.exit(code)
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
