"""A local server speaking Cohere's Chat (v1 and v2) and Embed (v1 and v2) APIs.

``POST /v2/chat`` answers a chat response with ``usage.billed_units`` and
``usage.tokens``; with ``"stream": true`` it sends ``message-start``,
``content-start``, ``content-delta``, ``content-end`` and ``message-end`` (which
carries the usage) events. ``POST /v1/chat`` answers v1's ``NonStreamedChatResponse``
with ``meta.billed_units``; streamed, v1's JSON lines (``stream-start``,
``text-generation``, ``stream-end`` carrying the whole response and its ``meta``).
``POST /v1/embed`` and ``/v2/embed`` answer one embedding per text with
``meta.billed_units.input_tokens``. Errors are ``{"message": ...}`` with the HTTP status.
"""

from __future__ import annotations

import itertools
from typing import Any

from fakes.llm_http import FakeLLMServer, Received, Reply, count_tokens, sse

_ids = itertools.count(1)


class FakeCohere(FakeLLMServer):
    """The fake Cohere API (``cohere.ClientV2(base_url=server.url)``)."""

    def respond(self, request: Received) -> Reply:
        path = request.path.split("?", 1)[0]
        if path in ("/v1/embed", "/v2/embed"):
            return self._embed(request.body, v2=path == "/v2/embed")
        if path == "/v1/chat":
            return self._chat_v1(request.body)
        if path != "/v2/chat":
            return self.error(404)
        n = next(_ids)
        body = request.body
        prompt = count_tokens(body.get("messages", []))
        output = min(self.reply_tokens, int(body.get("max_tokens") or 10_000))
        usage = {
            "billed_units": {"input_tokens": prompt, "output_tokens": output},
            "tokens": {"input_tokens": prompt + 7, "output_tokens": output},
        }
        chat_id = f"chat-{n:06d}"
        if not body.get("stream"):
            return Reply(
                json_body={
                    "id": chat_id,
                    "finish_reason": "COMPLETE",
                    "message": {
                        "role": "assistant",
                        "content": [{"type": "text", "text": "Hello!"}],
                    },
                    "usage": usage,
                }
            )
        events: list[tuple[str | None, Any]] = [
            (
                "message-start",
                {
                    "id": chat_id,
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                },
            ),
            (
                "content-start",
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                },
            ),
            (
                "content-delta",
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": "Hello!"}}},
                },
            ),
            ("content-end", {"type": "content-end", "index": 0}),
            (
                "message-end",
                {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}},
            ),
        ]
        return Reply(events=sse(events))

    def _embed(self, body: dict[str, Any], *, v2: bool) -> Reply:
        texts = list(body.get("texts") or [])
        billed = sum(count_tokens(t) for t in texts)
        vectors = [[0.1, 0.2, 0.3] for _ in texts]
        meta = {
            "api_version": {"version": "2" if v2 else "1"},
            "billed_units": {"input_tokens": billed},
        }
        reply: dict[str, Any] = {"id": f"embed-{next(_ids):06d}", "texts": texts, "meta": meta}
        if v2 or body.get("embedding_types"):
            reply.update(response_type="embeddings_by_type", embeddings={"float": vectors})
        else:
            reply.update(response_type="embeddings_floats", embeddings=vectors)
        return Reply(json_body=reply)

    def _chat_v1(self, body: dict[str, Any]) -> Reply:
        n = next(_ids)
        prompt = count_tokens(
            [body.get("message", ""), body.get("chat_history", []), body.get("preamble") or ""]
        )
        output = min(self.reply_tokens, int(body.get("max_tokens") or 10_000))
        generation = f"gen-{n:06d}"
        response = {
            "response_id": f"resp-{n:06d}",
            "generation_id": generation,
            "text": "Hello!",
            "finish_reason": "COMPLETE",
            "chat_history": [],
            "meta": {
                "api_version": {"version": "1"},
                "billed_units": {"input_tokens": prompt, "output_tokens": output},
                "tokens": {"input_tokens": prompt + 7, "output_tokens": output},
            },
        }
        if not body.get("stream"):
            return Reply(json_body=response)
        return Reply(
            lines=[
                {"is_finished": False, "event_type": "stream-start", "generation_id": generation},
                {"is_finished": False, "event_type": "text-generation", "text": "Hel"},
                {"is_finished": False, "event_type": "text-generation", "text": "lo!"},
                {
                    "is_finished": True,
                    "event_type": "stream-end",
                    "finish_reason": "COMPLETE",
                    "response": response,
                },
            ]
        )

    def error(self, status: int) -> Reply:
        return Reply(status, {"message": f"fake error {status}"})
