"""A local server speaking OpenAI's HTTP API: chat completions, responses, embeddings.

JSON bodies and SSE streams as the real API sends them (``data: {chunk}`` lines
ending with ``data: [DONE]``; usage in a final chunk with empty ``choices`` only
when ``stream_options.include_usage`` is set; ``response.*`` events for the
Responses API), ``x-request-id`` headers, and OpenAI's error object.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from fakes.llm_http import FakeLLMServer, Received, Reply, count_tokens, sse

_ids = itertools.count(1)


class FakeOpenAI(FakeLLMServer):
    """The fake OpenAI API (mount the client at ``server.url + '/v1'``).

    Chat completions answer "Hello!", or, while ``script`` holds assistant messages
    (e.g. with ``tool_calls``), the next of those (non-streamed requests).
    """

    def __init__(self) -> None:
        super().__init__()
        self.script: list[dict[str, Any]] = []

    def _next_message(self) -> dict[str, Any]:
        with self._lock:
            if self.script:
                return {"role": "assistant", "content": None, "refusal": None, **self.script.pop(0)}
        return {"role": "assistant", "content": "Hello!", "refusal": None}

    def _usage_chat(self, body: dict[str, Any]) -> tuple[int, int]:
        prompt = count_tokens(body.get("messages", []))
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 10_000
        return prompt, min(self.reply_tokens, int(limit))

    def respond(self, request: Received) -> Reply:
        n = next(_ids)
        headers = {"x-request-id": f"req_{n:06d}"}
        body = request.body
        if request.path.endswith("/chat/completions"):
            return self._chat(body, n, headers)
        if request.path.endswith("/responses"):
            return self._responses(body, n, headers)
        if request.path.endswith("/embeddings"):
            tokens = count_tokens(body.get("input", ""))
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return Reply(
                json_body={
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                        for i, _ in enumerate(inputs)
                    ],
                    "model": body["model"],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
                headers=headers,
            )
        return Reply(404, {"error": {"message": "Not found", "type": "invalid_request_error"}})

    def _chat(self, body: dict[str, Any], n: int, headers: dict[str, str]) -> Reply:
        prompt, completion = self._usage_chat(body)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        base = {"id": f"chatcmpl-{n}", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            message = self._next_message()
            return Reply(
                json_body={
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                },
                headers=headers,
            )
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include else {}
        chunk = {**base, "object": "chat.completion.chunk", "system_fingerprint": "fp_fake"}
        events: list[tuple[str | None, Any]] = [
            (None, {**chunk, **extra, "choices": [_delta({"role": "assistant", "content": ""})]}),
            (None, {**chunk, **extra, "choices": [_delta({"content": "Hel"})]}),
            (None, {**chunk, **extra, "choices": [_delta({"content": "lo!"})]}),
            (None, {**chunk, **extra, "choices": [_delta({}, "stop")]}),
        ]
        if include:
            events.append((None, {**chunk, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return Reply(events=sse(events), headers=headers)

    def _responses(self, body: dict[str, Any], n: int, headers: dict[str, str]) -> Reply:
        prompt = count_tokens([body.get("input", ""), body.get("instructions") or ""])
        output = min(self.reply_tokens, int(body.get("max_output_tokens") or 10_000))
        response = {
            "id": f"resp_{n}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body["model"],
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{n}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + output,
            },
        }
        if not body.get("stream"):
            return Reply(json_body=response, headers=headers)
        created = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str | None, Any]] = [
            (
                "response.created",
                {"type": "response.created", "sequence_number": 0, "response": created},
            ),
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 1,
                    "item_id": f"msg_{n}",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "Hello!",
                    "logprobs": [],
                },
            ),
            (
                "response.completed",
                {"type": "response.completed", "sequence_number": 2, "response": response},
            ),
        ]
        return Reply(events=sse(events), headers=headers)

    def error(self, status: int) -> Reply:
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return Reply(
            status,
            {
                "error": {
                    "message": f"fake error {status}",
                    "type": kind,
                    "param": None,
                    "code": kind,
                }
            },
            headers={"x-request-id": "req_error", "x-should-retry": "false"},
        )


def _delta(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
