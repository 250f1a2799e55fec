"""Fake providers that bill like the real ones: real token counts, the whole output budget.

Prompt tokens are counted with the model's own vocabulary (``o200k_base`` for the
GPT-4o family, ``cl100k_base`` for GPT-4 and GPT-3.5, through the vocabularies that
ship offline), with OpenAI's documented framing: 3 tokens per message, 1 more for a
``name``, 3 to prime the reply. Every answer uses its whole ``max_tokens`` (or the
model's own output limit when none is given), so the bill is the worst case a hold
has to cover. The response names the ``service_tier`` the request asked for.
Inline audio input (``input_audio`` parts) is billed one token per 100 decoded
bytes and reported in ``prompt_tokens_details.audio_tokens``; a request asking for
the ``audio`` modality gets all its output as audio
(``completion_tokens_details.audio_tokens``).
"""

from __future__ import annotations

import base64
from typing import Any

import quicktok
from fakes.anthropic_server import FakeAnthropic
from fakes.llm_http import Received, Reply
from fakes.openai_server import FakeOpenAI

#: The fake's own table of output limits (what a request without max_tokens can cost).
OUTPUT_LIMITS = {"gpt-4o-mini": 16_384, "gpt-4o": 16_384, "gpt-4": 8_192, "o1": 100_000}


def _vocabulary(model: str) -> Any:
    name = (
        "cl100k_base"
        if model.startswith(("gpt-4-", "gpt-3.5")) or model == "gpt-4"
        else "o200k_base"
    )
    return quicktok.get_encoding(name)


def _text(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def prompt_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    """What OpenAI bills a chat request's messages as."""
    vocabulary = _vocabulary(model)
    total = 3
    for message in messages:
        total += 3 + sum(int(vocabulary.count(t)) for t in _text(message.get("content")))
        if message.get("name"):
            total += 1 + int(vocabulary.count(message["name"]))
    return total


class BillingOpenAI(FakeOpenAI):
    """Bills real prompt tokens and the request's whole output budget."""

    def _usage_chat(self, body: dict[str, Any]) -> tuple[int, int]:
        model = str(body["model"])
        prompt = prompt_tokens(model, body.get("messages", []))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is None:
            limit = next(v for k, v in OUTPUT_LIMITS.items() if model.startswith(k))
        return prompt, int(limit) * int(body.get("n") or 1)

    def respond(self, request: Received) -> Reply:
        reply = super().respond(request)
        tier = request.body.get("service_tier")
        if isinstance(reply.json_body, dict) and tier:
            reply.json_body["service_tier"] = tier
        usage = reply.json_body.get("usage") if isinstance(reply.json_body, dict) else None
        if isinstance(usage, dict) and "prompt_tokens_details" in usage:
            audio = _audio_tokens(request.body.get("messages", []))
            usage["prompt_tokens"] += audio
            usage["total_tokens"] += audio
            usage["prompt_tokens_details"]["audio_tokens"] = audio
            if "audio" in (request.body.get("modalities") or []):
                usage["completion_tokens_details"]["audio_tokens"] = usage["completion_tokens"]
        return reply


def _audio_tokens(value: Any) -> int:
    """Tokens the ``input_audio`` parts of ``value`` are billed: one per 100 decoded bytes."""
    if isinstance(value, dict):
        if value.get("type") == "input_audio":
            data = value.get("input_audio", {}).get("data", "")
            return len(base64.b64decode(data)) // 100
        return sum(_audio_tokens(v) for v in value.values())
    if isinstance(value, list):
        return sum(_audio_tokens(v) for v in value)
    return 0


class BillingAnthropic(FakeAnthropic):
    """Anthropic's tokenizer is not published: this fake bills each text with the most
    token-hungry of the four real vocabularies that ship offline (o200k, cl100k,
    Llama-3, Qwen), plus 3 tokens a message, and the whole ``max_tokens``."""

    def input_tokens(self, body: dict[str, Any]) -> int:
        vocabularies = [
            quicktok.get_encoding(n) for n in ("o200k_base", "cl100k_base", "llama3", "qwen3")
        ]

        def tokens(text: str) -> int:
            return max(int(v.count(text)) for v in vocabularies)

        system = body.get("system") or ""
        texts = _text(system) + [
            t for m in body.get("messages", []) for t in _text(m.get("content"))
        ]
        return 3 * len(body.get("messages", [])) + sum(tokens(t) for t in texts)

    def output_tokens(self, body: dict[str, Any]) -> int:
        return int(body["max_tokens"])
