"""A local server speaking the Gemini API (generateContent), JSON and SSE.

``POST /{version}/models/{model}:generateContent`` answers a GenerateContentResponse
with ``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount``,
``totalTokenCount``), ``modelVersion`` and ``responseId``;
``:streamGenerateContent?alt=sse`` sends the same as ``data:`` chunks, usage
growing with each chunk. ``:batchEmbedContents`` answers one embedding per request
and, like the Gemini API, no token counts (unless ``embed_usage`` is set: then
``usageMetadata.promptTokenCount``); Vertex's ``:predict`` for embedding models
answers ``predictions[].embeddings`` with ``statistics.token_count``. Inline audio
parts (``inlineData`` with an ``audio/`` MIME type) are billed one token per 100
decoded bytes and reported in ``usageMetadata.promptTokensDetails`` (modality
``AUDIO``). The same server answers Vertex AI's paths
(``…/publishers/google/models/{model}:generateContent``). Errors use Google's
``{"error": {code, message, status}}``.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from fakes.llm_http import FakeLLMServer, Received, Reply, count_tokens, sse

_ids = itertools.count(1)


class FakeGemini(FakeLLMServer):
    """The fake Gemini API (``HttpOptions(base_url=server.url)``)."""

    #: Report ``usageMetadata`` on batchEmbedContents (the Gemini API does not).
    embed_usage = False
    #: Fail streams after their first chunk with an error event (as Gemini does mid-stream).
    stream_error = False
    #: Of each prompt's text tokens, this many are reported as read from a context cache.
    cached_text_tokens = 0

    def respond(self, request: Received) -> Reply:
        n = next(_ids)
        path = request.path.split("?", 1)[0]
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        body = request.body
        if path.endswith(":batchEmbedContents"):
            counts = [count_tokens(r.get("content", {})) for r in body.get("requests", [])]
            reply: dict[str, Any] = {"embeddings": [{"values": [0.1, 0.2]} for _ in counts]}
            if self.embed_usage:
                reply["usageMetadata"] = {"promptTokenCount": sum(counts)}
            return Reply(json_body=reply)
        if path.endswith(":predict"):
            instances = body.get("instances", [])
            predictions = [
                {
                    "embeddings": {
                        "values": [0.1, 0.2],
                        "statistics": {
                            "truncated": False,
                            "token_count": count_tokens(i.get("content", "")),
                        },
                    }
                }
                for i in instances
            ]
            return Reply(json_body={"predictions": predictions, "metadata": {}})
        audio = _audio_tokens(body.get("contents", []))
        text = _without_audio([body.get("contents", []), body.get("systemInstruction") or {}])
        prompt = count_tokens(text) + audio
        limit = int((body.get("generationConfig") or {}).get("maxOutputTokens") or 10_000)
        output = min(self.reply_tokens, limit)

        def chunk(text: str, produced: int, finish: str | None) -> dict[str, Any]:
            candidate: dict[str, Any] = {
                "content": {"parts": [{"text": text}], "role": "model"},
                "index": 0,
            }
            if finish:
                candidate["finishReason"] = finish
            usage: dict[str, Any] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": produced,
                "totalTokenCount": prompt + produced,
            }
            cached = min(self.cached_text_tokens, prompt - audio)
            if cached:
                usage["cachedContentTokenCount"] = cached
                usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
            if audio:
                usage["promptTokensDetails"] = [
                    {"modality": "TEXT", "tokenCount": prompt - audio},
                    {"modality": "AUDIO", "tokenCount": audio},
                ]
            return {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": f"resp-{n:06d}",
            }

        if path.endswith(":generateContent"):
            return Reply(json_body=chunk("Hello!", output, "STOP"))
        if path.endswith(":streamGenerateContent"):
            half = output // 2
            events = [(None, chunk("Hel", half, None)), (None, chunk("lo!", output, "STOP"))]
            if self.stream_error:
                events[1] = (None, self.error(500).json_body)
            return Reply(events=sse(events))
        return self.error(404)

    def error(self, status: int) -> Reply:
        names = {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
        return Reply(
            status,
            {
                "error": {
                    "code": status,
                    "message": f"fake error {status}",
                    "status": names.get(status, "UNKNOWN"),
                }
            },
        )


def _is_audio(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    inline = value.get("inlineData") or value.get("inline_data")
    if not isinstance(inline, dict):
        return False
    return str(inline.get("mimeType") or inline.get("mime_type") or "").startswith("audio/")


def _audio_tokens(value: Any) -> int:
    """Tokens the inline audio parts of ``value`` are billed: one per 100 decoded bytes."""
    if _is_audio(value):
        inline = value.get("inlineData") or value.get("inline_data")
        return len(base64.b64decode(inline.get("data", ""))) // 100
    if isinstance(value, dict):
        return sum(_audio_tokens(v) for v in value.values())
    if isinstance(value, list):
        return sum(_audio_tokens(v) for v in value)
    return 0


def _without_audio(value: Any) -> Any:
    """``value`` with its inline audio parts left out (they are billed as audio)."""
    if isinstance(value, dict):
        return {k: _without_audio(v) for k, v in value.items() if not _is_audio(v)}
    if isinstance(value, list):
        return [_without_audio(v) for v in value if not _is_audio(v)]
    return value
