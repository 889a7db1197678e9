"""How large a spec may grow: the layer budget, checked before an expansion is built.

A spec of a few lines can ask for millions of layers (``repeat: 10000`` of a block that repeats
itself); :class:`Budget` refuses it before building any of them, naming what multiplies. Its
estimate of a block is a lower bound (a ``repeat: $n`` counts once, since ``$n`` is known only
where the block is used), so nothing valid is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .errors import ErrorKind, SpecError

#: The most layers (nodes) a model may have after every block and repeat is expanded.
MAX_NODES = 100_000
#: The most copies one ``repeat:`` makes.
MAX_REPEAT = 10_000
#: The deepest nesting of blocks inside blocks.
MAX_BLOCK_DEPTH = 32


def copies_of(repeat: Any) -> int:
    """The copies a written ``repeat:`` makes for the estimate (1 for a ``$param`` or a bad value)."""
    if isinstance(repeat, int) and not isinstance(repeat, bool) and 1 <= repeat <= MAX_REPEAT:
        return repeat
    return 1


class Budget:
    """Lower bounds of the nodes each block adds, and the check against MAX_NODES.

    ``contents(block)`` gives ``(kind, repeat)`` for each entry of a block, where ``kind`` is a
    nested block (anything ``is_block`` says yes to) or a layer.
    """

    def __init__(self, contents: Callable[[Any], Iterable[tuple[Any, Any]]], is_block: Callable[[Any], bool]) -> None:
        self.contents = contents
        self.is_block = is_block
        self.sizes: dict[int, int] = {}  # id(block) → its lower bound
        self.depth = 0

    def estimate(self, block: Any) -> int:
        """A lower bound of the nodes one use of ``block`` adds (``$`` repeats count once)."""
        key = id(block)
        if key not in self.sizes:
            self.sizes[key] = 1  # a cycle counts once; expansion reports the cycle itself
            total = 0
            for kind, repeat in self.contents(block):
                inner = 1
                if self.is_block(kind) and self.depth < MAX_BLOCK_DEPTH:
                    self.depth += 1
                    try:
                        inner = self.estimate(kind)
                    finally:
                        self.depth -= 1
                total = min(total + copies_of(repeat) * inner, MAX_NODES + 1)
            self.sizes[key] = total
        return self.sizes[key]

    def check(self, per_copy: int, copies: int, kind: str, is_block: bool, before: int) -> SpecError | None:
        """The error when ``copies`` copies of ``per_copy`` nodes after ``before`` pass MAX_NODES."""
        if before + per_copy * copies <= MAX_NODES:
            return None
        if not is_block:
            what = f"repeat: {copies:,} of {kind}"
        elif per_copy > MAX_NODES:
            what = f"block {kind!r} alone expands to more than {MAX_NODES:,} layers (blocks inside blocks multiply)"
        else:
            what = f"{copies:,} × block {kind!r} ({per_copy:,} layers each) = {per_copy * copies:,} layers"
        above = f", after {before:,} layers above" if before else ""
        return SpecError(
            f"the model is too large: {what}{above}; convcalc handles at most {MAX_NODES:,} layers",
            kind=ErrorKind.TOO_LARGE,
            numbers={"layers": before + per_copy * copies, "limit": MAX_NODES},
        )
