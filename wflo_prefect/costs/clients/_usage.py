"""Request estimates and response usage, read from the providers' JSON shapes.

A request's estimate is an upper bound of its tokens (see
:mod:`wflo_prefect.costs.clients._bound`); the usage the provider reports is what
is settled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

__all__ = ["Estimate", "TokenUsage", "as_int", "field"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a request could cost at most: its model, input and maximum output tokens."""

    model: str
    input_tokens: int
    max_output_tokens: int
    #: Usage details of the worst case (``input_audio_tokens``, ``output_audio_tokens``).
    details: dict[str, int] = dataclass_field(default_factory=dict)
    #: The service tier the request asks for (OpenAI ``service_tier``).
    service_tier: str | None = None
    #: Of ``input_tokens``, those that may be written to the provider's cache.
    cache_write_tokens: int = 0


@dataclass(slots=True)
class TokenUsage:
    """Usage the provider reported (``input_tokens`` includes cached ones)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    #: Usage details genai-prices prices (``cache_write_1h_tokens``, ``input_audio_tokens``...).
    details: dict[str, int] = dataclass_field(default_factory=dict)
    service_tier: str | None = None
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


def as_int(value: Any) -> int:
    """A reported token count (some APIs send whole numbers as floats), or 0 when absent."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0
