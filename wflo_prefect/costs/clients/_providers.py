"""Per-provider knowledge: which requests are metered, their worst case, their usage.

OpenAI: ``/chat/completions`` (usage in the response, or in the final stream chunk
when ``stream_options.include_usage`` is set, which wflo adds when a stream does
not ask for it and then hides that extra chunk from the caller), ``/responses``
(usage in the response, or in the ``response.completed`` stream event),
``/embeddings`` and legacy ``/completions``. Anthropic: ``/v1/messages`` (usage in
the response; in a stream, input tokens in ``message_start`` and the cumulative
output tokens in ``message_delta``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from wflo_prefect.costs.clients._usage import (
    Estimate,
    TokenUsage,
    as_int,
    field,
    input_tokens_estimate,
)

__all__ = ["Endpoint", "endpoint_for"]

Kind = Literal["chat", "responses", "embeddings", "completions", "messages"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A metered API endpoint of one provider."""

    provider: str
    kind: Kind

    def estimate(self, body: Mapping[str, Any], per_token: int, default_max: int) -> Estimate:
        """The request's model, estimated input tokens and maximum output tokens."""
        model = str(body.get("model") or "")
        if self.kind == "chat":
            inputs = input_tokens_estimate(body, ("messages", "tools", "functions"), per_token)
            limit = body.get("max_completion_tokens") or body.get("max_tokens") or default_max
            choices = body.get("n") or 1
            return Estimate(model, inputs, int(limit) * int(choices))
        if self.kind == "responses":
            inputs = input_tokens_estimate(body, ("input", "instructions", "tools"), per_token)
            return Estimate(model, inputs, int(body.get("max_output_tokens") or default_max))
        if self.kind == "embeddings":
            raw = body.get("input")
            if isinstance(raw, list) and raw and isinstance(raw[0], int):
                return Estimate(model, len(raw), 0)  # already tokens
            return Estimate(model, input_tokens_estimate(body, ("input",), per_token), 0)
        if self.kind == "completions":
            inputs = input_tokens_estimate(body, ("prompt",), per_token)
            limit = int(body.get("max_tokens") or 16) * int(body.get("n") or 1)
            return Estimate(model, inputs, limit)
        inputs = input_tokens_estimate(body, ("system", "messages", "tools"), per_token)
        return Estimate(model, inputs, int(body.get("max_tokens") or default_max))

    def wants_stream_usage(self, body: Mapping[str, Any]) -> bool:
        """Whether a streaming request must be asked to report usage (OpenAI chat)."""
        if self.provider != "openai" or self.kind not in ("chat", "completions"):
            return False
        return not bool(field(body, "stream_options", "include_usage"))

    def usage_of(self, result: Any) -> TokenUsage | None:
        """Usage of a complete (non-streamed) response object, if it has one."""
        usage = field(result, "usage")
        if usage is None:
            return None
        found = TokenUsage(model=field(result, "model"), seen=True)
        self._read_usage(usage, found)
        return found

    def _read_usage(self, usage: Any, into: TokenUsage) -> None:
        if self.provider == "anthropic":
            cache_read = as_int(field(usage, "cache_read_input_tokens"))
            cache_write = as_int(field(usage, "cache_creation_input_tokens"))
            # Anthropic's input_tokens excludes cache reads and writes; ours includes them.
            into.input_tokens = as_int(field(usage, "input_tokens")) + cache_read + cache_write
            into.cached_input_tokens = cache_read
            into.cache_write_tokens = cache_write
            into.output_tokens = as_int(field(usage, "output_tokens"))
        elif self.kind in ("chat", "embeddings", "completions"):
            into.input_tokens = as_int(field(usage, "prompt_tokens"))
            into.output_tokens = as_int(field(usage, "completion_tokens"))
            details = field(usage, "prompt_tokens_details")
            into.cached_input_tokens = as_int(field(details, "cached_tokens"))
        else:
            into.input_tokens = as_int(field(usage, "input_tokens"))
            into.output_tokens = as_int(field(usage, "output_tokens"))
            into.cached_input_tokens = as_int(field(usage, "input_tokens_details", "cached_tokens"))

    def observe(self, event: Any, acc: TokenUsage, injected: bool) -> bool:
        """Read usage from one stream event into ``acc``; True to hide the event."""
        if self.provider == "anthropic":
            kind = field(event, "type")
            if kind == "message_start":
                message = field(event, "message")
                acc.model = field(message, "model") or acc.model
                usage = field(message, "usage")
                if usage is not None:
                    self._read_usage(usage, acc)
                    acc.seen = True
            elif kind == "message_delta":
                output = field(event, "usage", "output_tokens")
                if output is not None:
                    acc.output_tokens = as_int(output)
                    acc.seen = True
            return False
        if self.kind == "responses":
            if field(event, "type") == "response.completed":
                response = field(event, "response")
                acc.model = field(response, "model") or acc.model
                usage = field(response, "usage")
                if usage is not None:
                    self._read_usage(usage, acc)
                    acc.seen = True
            return False
        acc.model = field(event, "model") or acc.model
        usage = field(event, "usage")
        if usage is not None:
            self._read_usage(usage, acc)
            acc.seen = True
            # The chunk we asked for carries only usage; the caller did not ask for it.
            return injected and not field(event, "choices")
        return False


_OPENAI_PATHS: tuple[tuple[str, Kind], ...] = (
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/completions", "completions"),
)


def endpoint_for(provider: str, method: str, url: str) -> Endpoint | None:
    """The metered endpoint a request goes to, or ``None`` (not an LLM call)."""
    if method.lower() != "post":
        return None
    path = url.split("?", 1)[0].rstrip("/")
    if provider == "openai":
        for suffix, kind in _OPENAI_PATHS:
            if path.endswith(suffix):
                return Endpoint("openai", kind)
        return None
    if provider == "anthropic" and path.endswith("/messages"):
        return Endpoint("anthropic", "messages")
    return None
