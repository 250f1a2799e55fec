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

from wflo_prefect.costs.clients._bound import InputBound, input_bound
from wflo_prefect.costs.clients._usage import Estimate, TokenUsage, as_int, field
from wflo_prefect.costs.output_limits import output_limit

__all__ = ["Endpoint", "endpoint_for"]

Kind = Literal["chat", "responses", "embeddings", "completions", "messages"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A metered API endpoint of one provider."""

    provider: str
    kind: Kind

    def estimate(self, body: Mapping[str, Any], default_max: int) -> Estimate:
        """The request's model, input tokens and output tokens, each at most.

        A request without a maximum output is held for the model's own output limit.
        """
        model = str(body.get("model") or "")
        provider = self.provider
        tier = body.get("service_tier") if provider == "openai" else None
        service_tier = tier if isinstance(tier, str) else None

        def inputs(*keys: str) -> InputBound:
            return input_bound(body, keys, provider, model)

        def most(given: Any) -> int:
            return int(given or output_limit(provider, model, default_max))

        if self.kind == "chat":
            bound = inputs("messages", "tools", "functions", "response_format")
            limit = most(body.get("max_completion_tokens") or body.get("max_tokens"))
            limit *= int(body.get("n") or 1)
            details = _audio_details(bound, body, limit)
            return Estimate(model, bound.tokens, limit, details, service_tier)
        if self.kind == "responses":
            bound = inputs("input", "instructions", "tools", "text")
            limit = most(body.get("max_output_tokens"))
            return Estimate(
                model, bound.tokens, limit, _audio_details(bound, body, 0), service_tier
            )
        if self.kind == "embeddings":
            raw = body.get("input")
            if isinstance(raw, list) and raw and isinstance(raw[0], int):
                return Estimate(model, len(raw), 0)  # already tokens
            return Estimate(model, inputs("input").tokens, 0)
        if self.kind == "completions":
            limit = int(body.get("max_tokens") or 16) * int(body.get("n") or 1)
            return Estimate(model, inputs("prompt").tokens, limit)
        bound = inputs("system", "messages", "tools")
        limit = most(body.get("max_tokens"))
        writes, hour = _cache_writes(body, bound.tokens)
        details = {"cache_write_1h_tokens": writes} if hour and writes else {}
        return Estimate(model, bound.tokens, limit, details, cache_write_tokens=writes)

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
        tier = field(result, "service_tier")
        found.service_tier = tier if isinstance(tier, str) else None
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
            # 1-hour cache writes are billed at twice the input rate (5-minute: 1.25x).
            hour = as_int(field(usage, "cache_creation", "ephemeral_1h_input_tokens"))
            if hour:
                into.details["cache_write_1h_tokens"] = min(hour, cache_write)
        elif self.kind in ("chat", "embeddings", "completions"):
            into.input_tokens = as_int(field(usage, "prompt_tokens"))
            into.output_tokens = as_int(field(usage, "completion_tokens"))
            details = field(usage, "prompt_tokens_details")
            into.cached_input_tokens = as_int(field(details, "cached_tokens"))
            self._read_audio(
                into,
                as_int(field(details, "audio_tokens")),
                as_int(field(usage, "completion_tokens_details", "audio_tokens")),
            )
        else:
            into.input_tokens = as_int(field(usage, "input_tokens"))
            into.output_tokens = as_int(field(usage, "output_tokens"))
            into.cached_input_tokens = as_int(field(usage, "input_tokens_details", "cached_tokens"))

    @staticmethod
    def _read_audio(into: TokenUsage, audio_in: int, audio_out: int) -> None:
        if audio_in:
            into.details["input_audio_tokens"] = audio_in
        if audio_out:
            into.details["output_audio_tokens"] = audio_out

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
                tier = field(response, "service_tier")
                acc.service_tier = tier if isinstance(tier, str) else acc.service_tier
                usage = field(response, "usage")
                if usage is not None:
                    self._read_usage(usage, acc)
                    acc.seen = True
            return False
        acc.model = field(event, "model") or acc.model
        tier = field(event, "service_tier")
        if isinstance(tier, str):
            acc.service_tier = tier
        usage = field(event, "usage")
        if usage is not None:
            self._read_usage(usage, acc)
            acc.seen = True
            # The chunk we asked for carries only usage; the caller did not ask for it.
            return injected and not field(event, "choices")
        return False


def _cache_writes(body: Any, tokens: int) -> tuple[int, bool]:
    """(tokens that may be written to Anthropic's cache, whether at the 1-hour rate):
    all of the input once any block asks for caching, since writes cost more than input."""
    found: list[str] = []

    def look(value: Any) -> None:
        if isinstance(value, Mapping):
            control = value.get("cache_control")
            if isinstance(control, Mapping):
                found.append(str(control.get("ttl") or "5m"))
            for item in value.values():
                look(item)
        elif isinstance(value, list):
            for item in value:
                look(item)

    look(body)
    return (tokens if found else 0), "1h" in found


def _audio_details(bound: InputBound, body: Mapping[str, Any], max_output: int) -> dict[str, int]:
    """The audio parts of a worst case: audio input, and all output when audio is asked for."""
    details: dict[str, int] = {}
    if bound.audio_tokens:
        details["input_audio_tokens"] = bound.audio_tokens
    modalities = body.get("modalities")
    if max_output and isinstance(modalities, list) and "audio" in modalities:
        details["output_audio_tokens"] = max_output
    return details


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
