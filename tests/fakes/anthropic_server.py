"""A local server speaking Anthropic's Messages API: JSON and SSE streaming.

Usage as Anthropic reports it (``input_tokens`` excludes cache reads and writes,
which come as ``cache_read_input_tokens`` / ``cache_creation_input_tokens``, the
writes split by lifetime in ``cache_creation``: 1-hour when a ``cache_control``
block of the request asks ``ttl: "1h"``, else 5-minute); a
stream starts with ``message_start`` (input usage), sends ``content_block_*`` and
``ping`` events, then ``message_delta`` with the cumulative ``output_tokens`` and
``message_stop``. ``request-id`` headers; Anthropic's error object.
"""

from __future__ import annotations

import itertools
from typing import Any

from fakes.llm_http import FakeLLMServer, Received, Reply, count_tokens, sse

_ids = itertools.count(1)


class FakeAnthropic(FakeLLMServer):
    """The fake Anthropic API (point the client's ``base_url`` at ``server.url``)."""

    #: Of each request's input tokens, this many are reported as cache reads.
    cache_read_tokens = 0
    #: ... and this many (of the rest) as written to the cache.
    cache_write_tokens = 0

    def input_tokens(self, body: dict[str, Any]) -> int:
        """What the request's input is billed as (this fake: characters / 4)."""
        return count_tokens([body.get("system") or "", body.get("messages", [])])

    def output_tokens(self, body: dict[str, Any]) -> int:
        """How many tokens the answer has (capped by ``max_tokens``)."""
        return min(self.reply_tokens, int(body["max_tokens"]))

    def respond(self, request: Received) -> Reply:
        n = next(_ids)
        headers = {"request-id": f"req_{n:06d}"}
        if not request.path.endswith("/v1/messages"):
            return Reply(
                404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}
            )
        body = request.body
        total_input = self.input_tokens(body)
        cached = min(self.cache_read_tokens, total_input)
        written = min(self.cache_write_tokens, total_input - cached)
        output = self.output_tokens(body)
        usage = {
            "input_tokens": total_input - cached - written,
            "output_tokens": output,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": cached,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 0 if _asks_one_hour(body) else written,
                "ephemeral_1h_input_tokens": written if _asks_one_hour(body) else 0,
            },
        }
        message: dict[str, Any] = {
            "id": f"msg_{n:06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": "Hello!"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return Reply(json_body=message, headers=headers)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Hello!"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": output},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return Reply(events=sse(events), headers=headers)

    def error(self, status: int) -> Reply:
        kind = "overloaded_error" if status == 529 else "api_error"
        return Reply(
            status,
            {"type": "error", "error": {"type": kind, "message": f"fake error {status}"}},
            headers={"request-id": "req_error", "x-should-retry": "false"},
        )


def _asks_one_hour(value: Any) -> bool:
    """Whether a ``cache_control`` block in ``value`` asks for the 1-hour cache."""
    if isinstance(value, dict):
        control = value.get("cache_control")
        if isinstance(control, dict) and control.get("ttl") == "1h":
            return True
        return any(_asks_one_hour(v) for v in value.values())
    if isinstance(value, list):
        return any(_asks_one_hour(v) for v in value)
    return False
