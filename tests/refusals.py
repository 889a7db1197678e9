"""Why a layer is refused, as convcalc says it and as torch says it: the rejection tests check
that both refuse for the same reason, not only that both refuse.

Each reason: (what convcalc's message says, what torch's says), as regular expressions.
"""

from __future__ import annotations

import re

REASONS: dict[str, tuple[str, str]] = {
    "arity": (
        r"needs \d values? \(one per spatial axis\)",
        r"-dimensional input for \d-dimensional weight|list of \d values to match|should contain one int|output_size must be \d",
    ),
    "padding word": (r"padding must be one of|padding must be a number", r"Invalid padding string|argument 'padding'.* must be tuple of ints"),
    "padding mode": (r"padding_mode must be one of|only padding_mode \"zeros\"", r"padding_mode must be one of|Only \"zeros\" padding mode"),
    "same with stride": (r"padding='same' is not supported for strided", r"padding='same' is not supported for strided"),
    "groups": (r"must be divisible by groups", r"must be divisible by groups"),
    "channels": (r"expects in_channels = \d+, but the input .* has \d+ channels", r"expected input\[.*\] to have \d+ channels, but got \d+ channels"),
    "reflect padding": (r"reflect padding \d+ must be smaller than the input", r"Padding size should be less than the corresponding input dimension"),
    "circular padding": (r"wraps around the input \d+ more than once", r"wrapping around more than once"),
    "window too large": (r"is larger than the (padded )?input|is too small", r"[Tt]oo small|smaller than kernel size"),
    "pool padding": (r"must be at most half the kernel size", r"half of (effective )?kernel size"),
    "rank": (r"expects a \d-D .* input, got \d-D", r"Expected \dD|Input dimension should be at least|Dimension out of range"),
    "divisor": (r"divisor_override must not be zero", r"divisor must be not zero"),
    "output size": (r"output_size must be (a whole number|at least 0)", r"output_size.* must be tuple of ints|negative dimension"),
    "output padding": (r"output_padding \d+ must be smaller than either stride", r"output padding must be smaller than either stride or dilation"),
}


def reason_of(engine_message: str) -> str:
    """The one reason whose convcalc side matches ``engine_message``."""
    found = [name for name, (ours, _) in REASONS.items() if re.search(ours, engine_message)]
    assert len(found) == 1, f"convcalc's refusal matches {found or 'no reason'} in tests/refusals.py: {engine_message}"
    return found[0]


def same_reason(engine_message: str, torch_message: str) -> str:
    """Assert torch refuses for the reason convcalc gives; returns the reason."""
    reason = reason_of(engine_message)
    assert re.search(REASONS[reason][1], torch_message), (
        f"convcalc refuses for {reason!r} ({engine_message}), torch for another reason: {torch_message}"
    )
    return reason
