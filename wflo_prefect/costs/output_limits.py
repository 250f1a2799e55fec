"""The most a model can answer, and what an image or audio input can cost in tokens.

A request that sets no maximum output is held for the model's own output limit
(genai-prices' data has context windows, not output limits, so the limits are
shipped here from the providers' model pages). A model not listed is held for
``PREFECT_INTEGRATIONS_WFLO_COSTS_DEFAULT_MAX_OUTPUT_TOKENS``.
"""

from __future__ import annotations

import math

__all__ = ["AUDIO_BYTES_PER_TOKEN", "audio_tokens", "image_tokens", "output_limit"]

# (provider, model prefix) -> output tokens, longest prefix first within a provider.
_OUTPUT_LIMITS: dict[str, tuple[tuple[str, int], ...]] = {
    "openai": (
        ("gpt-5", 128_000),
        ("gpt-4.1", 32_768),
        ("gpt-4.5", 16_384),
        ("gpt-4o-mini", 16_384),
        ("gpt-4o", 16_384),
        ("chatgpt-4o", 16_384),
        ("gpt-4-turbo", 4_096),
        ("gpt-4", 8_192),
        ("gpt-3.5", 4_096),
        ("o1-mini", 65_536),
        ("o1-preview", 32_768),
        ("o1", 100_000),
        ("o3", 100_000),
        ("o4", 100_000),
    ),
    "anthropic": (
        ("claude-3-haiku", 4_096),
        ("claude-3-opus", 4_096),
        ("claude-3-sonnet", 4_096),
        ("claude-3-5", 8_192),
        ("claude-3-7", 128_000),  # 64k, 128k with the output-128k beta header
        ("claude-opus-4-0", 32_000),
        ("claude-opus-4-1", 32_000),
        ("claude-opus-4-2", 32_000),
        ("claude-opus-4", 64_000),
        ("claude-sonnet-4", 64_000),
        ("claude-haiku-4", 64_000),
    ),
    "google": (
        ("gemini-1.5", 8_192),
        ("gemini-2.0", 8_192),
        ("gemini-2.5", 65_536),
        ("gemini-3", 65_536),
    ),
    "cohere": (
        ("command-a", 8_192),
        ("command-r", 4_096),
        ("command", 4_096),
    ),
}
_OUTPUT_LIMITS["azure"] = _OUTPUT_LIMITS["openai"]
_OUTPUT_LIMITS["google-vertex"] = _OUTPUT_LIMITS["google"]  # Vertex AI: the same models

# (provider, model prefix) -> tokens one image can cost at most (largest size, high detail).
_IMAGE_TOKENS: dict[str, tuple[tuple[str, int], ...]] = {
    # 8 tiles of 512 px: 85 + 170 * 8 (gpt-4o); gpt-4o-mini bills 2833 + 5667 per tile.
    "openai": (
        ("gpt-4o-mini", 2_833 + 5_667 * 8),
        ("gpt-4.1-nano", math.ceil(1_536 * 2.46)),
        ("gpt-4.1-mini", math.ceil(1_536 * 1.62)),
        ("o4-mini", math.ceil(1_536 * 1.72)),
        ("", 85 + 170 * 8),
    ),
    # Images are scaled to at most ~1.15 megapixels: (w * h) / 750 <= ~1600 tokens.
    "anthropic": (("", 1_600),),
    # 258 tokens per 768 px tile, up to 16 tiles.
    "google": (("", 258 * 16),),
}
_IMAGE_TOKENS["google-vertex"] = _IMAGE_TOKENS["google"]
_DEFAULT_IMAGE_TOKENS = 48_169

#: Audio bytes per token assumed at most (OpenAI bills ~10 tokens a second; 8 kbit/s,
#: the lowest common compressed rate, is 1,000 bytes a second).
AUDIO_BYTES_PER_TOKEN = 100


def _lookup(table: dict[str, tuple[tuple[str, int], ...]], provider: str, model: str) -> int | None:
    name = model.lower().rsplit("/", 1)[-1]
    for prefix, value in table.get(provider.lower(), ()):
        if name.startswith(prefix):
            return value
    return None


def output_limit(provider: str, model: str, default: int) -> int:
    """The most output tokens ``provider``'s ``model`` can return (``default`` if unknown)."""
    return _lookup(_OUTPUT_LIMITS, provider, model) or default


def image_tokens(provider: str, model: str) -> int:
    """Input tokens one image can cost at most on ``provider``'s ``model``."""
    return _lookup(_IMAGE_TOKENS, provider, model) or _DEFAULT_IMAGE_TOKENS


def audio_tokens(audio_bytes: int) -> int:
    """Input audio tokens ``audio_bytes`` of encoded audio can cost at most."""
    return math.ceil(audio_bytes / AUDIO_BYTES_PER_TOKEN) + 10 if audio_bytes else 0
