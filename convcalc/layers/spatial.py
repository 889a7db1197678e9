"""Shared base of the layers that slide over 1, 2 or 3 spatial axes (conv, pooling)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import AXES, AXIS_WORDS, Layer, Shape


@dataclass(frozen=True)
class Spatial(Layer):
    """A layer over ``(N, C, *spatial)`` or unbatched ``(C, *spatial)`` input."""

    dims: int = 2

    def ranks(self) -> tuple[int, ...]:
        return (self.dims + 1, self.dims + 2)

    def _rank_message(self, shape: Shape) -> str:
        return (
            f"expects a {self.dims + 1}-D (unbatched C×{'×'.join(self.axes)}) or {self.dims + 2}-D (batched) input,"
            f" got {len(shape)}-D {list(shape)}"
        )

    @property
    def axes(self) -> tuple[str, ...]:
        return AXES[self.dims]

    def axis_prefix(self, axis: str) -> str:
        """``"W: "`` for multi-axis layers, nothing for 1-D ones."""
        return f"{axis}: " if self.dims > 1 else ""

    def spatial(self, shape: Shape) -> Shape:
        return shape[-self.dims :]

    def replace_spatial(self, shape: Shape, sizes: tuple[int, ...], channels: int | None = None) -> Shape:
        lead = list(shape[: -self.dims])
        if channels is not None:
            lead[-1] = channels
        return (*lead, *sizes)

    def uncovered_warnings(self, shape: Shape, counts: list[int]) -> list[str]:
        """Warnings about trailing input positions that no window reads."""
        lines = []
        for axis, count in zip(self.axes, counts):
            if count:
                word = AXIS_WORDS[axis]
                what = f"the last {count} {word}" if count > 1 else f"the last {word.rstrip('s')}"
                lines.append(
                    f"{self.type_name}: {what} of the input ({axis}) {'are' if count > 1 else 'is'} never covered"
                    " by a window (the stride does not divide evenly)"
                )
        return lines


def compact(values: tuple[int, ...] | str) -> str:
    """``(3, 3)`` → ``"3"``, ``(3, 5)`` → ``"3x5"``, strings as they are."""
    if isinstance(values, str):
        return values
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))
