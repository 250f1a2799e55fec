"""Token usage, checked before it is priced, and the decimal arithmetic of prices.

A provider's usage (or a caller's) is checked once, where it enters: whole
numbers, none negative, none above :data:`MAX_TOKENS`, the cached and
cache-write parts within the input, each detail within its side. A bad count
raises :class:`~wflo_prefect.errors.InvalidArgumentError` naming the field, so no
cost entry can lower a budget's spend or overflow the ledger.

Prices are computed in :data:`MONEY_CONTEXT`, whatever decimal context the caller
has set (``decimal.localcontext(prec=3)`` in user code must not truncate costs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import ParamSpec, TypeVar

from wflo_prefect.errors import InvalidArgumentError

__all__ = [
    "INPUT_DETAILS",
    "MAX_TOKENS",
    "MONEY_CONTEXT",
    "OUTPUT_DETAILS",
    "check_count",
    "check_usage",
    "in_money_context",
]

#: No call bills more tokens than this (a trillion); more is a bad count, not a call.
MAX_TOKENS = 10**12

#: The context every price is computed in: 34 significant digits, banker's rounding,
#: and errors (not silent infinities) on overflow or division by zero.
MONEY_CONTEXT = Context(
    prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def in_money_context(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` in :data:`MONEY_CONTEXT`: budget arithmetic (holds, lease sizes,
    charges) must not depend on the decimal context of the code making the call."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(MONEY_CONTEXT):
            return fn(*args, **kwargs)

    return wrapper


#: genai-prices usage details that are part of ``input_tokens`` / ``output_tokens``.
INPUT_DETAILS = frozenset(
    {
        "cache_write_1h_tokens",
        "cache_write_5m_tokens",
        "input_audio_tokens",
        "input_image_tokens",
        "input_text_tokens",
        "cache_audio_read_tokens",
    }
)
OUTPUT_DETAILS = frozenset(
    {"output_audio_tokens", "output_image_tokens", "output_reasoning_tokens", "output_text_tokens"}
)


def check_count(name: str, value: object) -> int:
    """``value`` as a token count, or :class:`InvalidArgumentError` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgumentError(
            f"`{name}` must be a whole number of tokens >= 0",
            value=value,
            hint="Pass the counts the provider reported in its usage",
        )
    if value > MAX_TOKENS:
        raise InvalidArgumentError(
            f"`{name}` is more tokens than any call bills (at most {MAX_TOKENS:,})",
            value=value,
            hint="Check the usage: a count this large is a bug, not a call",
        )
    return value


def check_usage(
    input_tokens: object,
    output_tokens: object,
    cached_input_tokens: object = 0,
    cache_write_tokens: object = 0,
    details: Mapping[str, object] | None = None,
) -> None:
    """Raise :class:`InvalidArgumentError` naming the first count that cannot be a call's."""
    total_in = check_count("input_tokens", input_tokens)
    total_out = check_count("output_tokens", output_tokens)
    cached = check_count("cached_input_tokens", cached_input_tokens)
    written = check_count("cache_write_tokens", cache_write_tokens)
    if cached + written > total_in:
        raise InvalidArgumentError(
            "`cached_input_tokens` and `cache_write_tokens` count part of `input_tokens`, "
            "so together cannot exceed it",
            value={"input_tokens": total_in, "cached": cached, "cache_write": written},
            hint=f"Pass input_tokens >= {cached + written} (all input tokens, cached included)",
        )
    for key, value in (details or {}).items():
        count = check_count(key, value)
        if key in INPUT_DETAILS:
            limit, side = total_in, "input_tokens"
        elif key in OUTPUT_DETAILS:
            limit, side = total_out, "output_tokens"
        else:
            raise InvalidArgumentError(
                "Unknown usage detail",
                value=key,
                hint=f"Use one of {', '.join(sorted(INPUT_DETAILS | OUTPUT_DETAILS))}",
            )
        if key == "cache_write_1h_tokens":
            limit, side = written, "cache_write_tokens"
        if count > limit:
            raise InvalidArgumentError(
                f"`{key}` counts part of `{side}`, so cannot exceed it",
                value={key: count, side: limit},
                hint=f"Pass {side} >= {count}",
            )
