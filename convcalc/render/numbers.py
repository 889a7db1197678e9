"""Counts and byte sizes for people: ``123.46M``, ``1.5 MB``."""

from __future__ import annotations


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"  # pragma: no cover


def human_count(count: int) -> str:
    """``123456789`` → ``"123.46M"``."""
    for value, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= value:
            return f"{count / value:.2f}{unit}"
    return str(count)
