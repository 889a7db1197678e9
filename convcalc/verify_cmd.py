"""The ``convcalc verify`` command (placeholder until the torch-backed verifier lands)."""

from __future__ import annotations

import click


@click.command()
@click.argument("target", nargs=-1)
def verify(target: tuple[str, ...]) -> None:
    """Build the real torch layers and confirm every shape (not available yet)."""
    raise click.UsageError("verify is not implemented yet")
