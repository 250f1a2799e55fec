"""A local server speaking Cohere's v2 Chat API: JSON and SSE streaming.

``POST /v2/chat`` answers a chat response with ``usage.billed_units`` and
``usage.tokens``; with ``"stream": true`` it sends ``message-start``,
``content-start``, ``content-delta``, ``content-end`` and ``message-end`` (which
carries the usage) events. Errors are ``{"message": ...}`` with the HTTP status.
"""

from __future__ import annotations

import itertools
from typing import Any

from fakes.llm_http import FakeLLMServer, Received, Reply, count_tokens, sse

_ids = itertools.count(1)


class FakeCohere(FakeLLMServer):
    """The fake Cohere API (``cohere.ClientV2(base_url=server.url)``)."""

    def respond(self, request: Received) -> Reply:
        if request.path.split("?", 1)[0] != "/v2/chat":
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

    def error(self, status: int) -> Reply:
        return Reply(status, {"message": f"fake error {status}"})
