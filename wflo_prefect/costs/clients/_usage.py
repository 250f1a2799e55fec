"""Request estimates and response usage, read from the providers' JSON shapes.

Input tokens are estimated before sending as ``ceil(characters / chars_per_token)``
over the request's text (``chars_per_token`` defaults to 4, the usual rule of thumb
for English with OpenAI's and Anthropic's tokenizers; inline base64 data is skipped).
It is an approximation: the actual usage the provider reports is what is settled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Estimate", "TokenUsage", "count_text_chars", "field", "input_tokens_estimate"]

_SKIPPED_KEYS = frozenset({"model", "data", "image_url", "file_data", "stream_options"})


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a request could cost at most: its model, input and maximum output tokens."""

    model: str
    input_tokens: int
    max_output_tokens: int


@dataclass(slots=True)
class TokenUsage:
    """Usage the provider reported (``input_tokens`` includes cached ones)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    model: str | None = None
    request_id: str | None = None
    seen: bool = False


def field(obj: Any, *path: str) -> Any:
    """Read ``obj.a.b`` or ``obj["a"]["b"]`` (SDK models or dicts); ``None`` if missing."""
    current = obj
    for name in path:
        if current is None:
            return None
        if isinstance(current, Mapping):
            current = current.get(name)
        else:
            current = getattr(current, name, None)
    return current


def count_text_chars(value: Any) -> int:
    """Characters of text in a request body (strings in nested lists and objects)."""
    if isinstance(value, str):
        return 0 if value.startswith("data:") else len(value)
    if isinstance(value, Mapping):
        return sum(count_text_chars(v) for k, v in value.items() if k not in _SKIPPED_KEYS)
    if isinstance(value, (list, tuple)):
        return sum(count_text_chars(v) for v in value)
    return 0


def input_tokens_estimate(body: Mapping[str, Any], keys: tuple[str, ...], per_token: int) -> int:
    """Estimated input tokens of the request fields ``keys``."""
    chars = sum(count_text_chars(body.get(k)) for k in keys)
    return math.ceil(chars / per_token)


def as_int(value: Any) -> int:
    """A reported token count (some APIs send whole numbers as floats), or 0 when absent."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0
