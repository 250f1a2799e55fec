"""The input side of a request's hold: its text, images and audio, counted as tokens.

Text is counted with :func:`wflo_prefect.costs.tokens.text_tokens` piece by piece
(each string of the request on its own, plus the role and separator tokens around
it); tool and function definitions are counted as their JSON. An image costs the
model's largest image allowance, and audio an allowance per encoded byte
(:mod:`wflo_prefect.costs.output_limits`). Documents (PDF parts) are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wflo_prefect.costs.output_limits import audio_tokens, image_tokens
from wflo_prefect.costs.tokens import PIECE_OVERHEAD, text_tokens

__all__ = ["InputBound", "input_bound"]

#: Tokens the API adds once per request (OpenAI primes each reply with 3).
REQUEST_OVERHEAD = 3
_SKIPPED_KEYS = frozenset({"model", "stream_options", "cache_control", "mime_type", "mimeType"})
_SCHEMA_KEYS = frozenset({"tools", "functions", "response_format", "text"})
_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})


@dataclass(slots=True)
class _Parts:
    texts: list[str] = field(default_factory=list)
    images: int = 0
    audio_bytes: int = 0


@dataclass(frozen=True, slots=True)
class InputBound:
    """A request's input tokens at most; ``audio_tokens`` is the part that is audio."""

    tokens: int
    audio_tokens: int = 0


def _data_bytes(value: Any) -> int:
    """Decoded size of base64 data (a data URL or bare base64), or 0."""
    if not isinstance(value, str):
        return 0
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    return len(data) * 3 // 4


def _is_image(value: Mapping[str, Any]) -> bool:
    if value.get("type") in _IMAGE_TYPES:
        return True
    mime = value.get("mime_type") or value.get("mimeType") or value.get("media_type") or ""
    return isinstance(mime, str) and mime.startswith("image/")


def _is_audio(value: Mapping[str, Any]) -> bool:
    if value.get("type") in ("input_audio", "audio"):
        return True
    mime = value.get("mime_type") or value.get("mimeType") or value.get("media_type") or ""
    return isinstance(mime, str) and mime.startswith("audio/")


def _walk(value: Any, into: _Parts) -> None:
    if isinstance(value, str):
        if value.startswith("data:image/"):
            into.images += 1
        elif value.startswith("data:audio/"):
            into.audio_bytes += _data_bytes(value)
        elif not value.startswith("data:"):
            into.texts.append(value)
        return
    if isinstance(value, Mapping):
        if _is_image(value):
            into.images += 1
            return
        if _is_audio(value):
            into.audio_bytes += _audio_size(value)
            return
        for key, item in value.items():
            if key in _SKIPPED_KEYS:
                continue
            if key in ("inline_data", "inlineData", "input_audio") and isinstance(item, Mapping):
                _walk({**item, "type": "input_audio"} if key == "input_audio" else item, into)
                continue
            _walk(item, into)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _walk(item, into)


def _audio_size(value: Mapping[str, Any]) -> int:
    data = value.get("data")
    if data is None and isinstance(value.get("input_audio"), Mapping):
        data = value["input_audio"].get("data")
    if data is None and isinstance(value.get("source"), Mapping):
        data = value["source"].get("data")
    return _data_bytes(data) if data is not None else 0


def input_bound(
    body: Mapping[str, Any], keys: tuple[str, ...], provider: str, model: str
) -> InputBound:
    """The input tokens the request fields ``keys`` can be billed as, at most."""
    parts = _Parts()
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if key in _SCHEMA_KEYS and not isinstance(value, str):
            parts.texts.append(json.dumps(value, ensure_ascii=False, default=str))
        else:
            _walk(value, parts)
    text = sum(text_tokens(t, provider, model) + PIECE_OVERHEAD for t in parts.texts)
    audio = audio_tokens(parts.audio_bytes)
    images = parts.images * image_tokens(provider, model)
    return InputBound(REQUEST_OVERHEAD + text + images + audio, audio)
