"""``python -m convcalc``."""

from .cli import console

console()
