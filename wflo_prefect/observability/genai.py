"""One span per LLM call, named and attributed by the OpenTelemetry ``gen_ai.*`` conventions.

The span is ``chat {model}`` (kind CLIENT) with ``gen_ai.operation.name``,
``gen_ai.provider.name`` (not the deprecated ``gen_ai.system``), request and response
model, ``gen_ai.request.max_tokens``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
``gen_ai.usage.cache_read.input_tokens`` / ``cache_creation.input_tokens``,
``gen_ai.response.id`` and
``gen_ai.response.finish_reasons``; wflo adds the call's cost and what is left of its
tightest budget:

===============================  =====================================================
``wflo.provider``                wflo's provider name (``openai``, ``google`` ...)
``wflo.cost.usd``                the settled cost, exact decimal text
``wflo.cost.estimate_usd``       the worst case held on the budgets before sending
``wflo.cost.saved_usd``          what a response-cache hit saved
``wflo.cache.hit``               the answer came from wflo's response cache
``wflo.budget.name``             the budget with the least left after the call
``wflo.budget.remaining_usd``    what that budget has left in its window after the call
``wflo.call.outcome``            ``settled``, ``released`` (not sent or failed) or ``refused``
===============================  =====================================================

The policy checks and budget reservation made before the call run inside its span, so
a refusal (``BudgetExceeded``, ``PolicyViolation``) is on the span that was refused.

:class:`~wflo_prefect.costs.MeteredCall` calls these helpers; code metering another
client through :func:`~wflo_prefect.metered_call` gets the span with no extra code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from wflo_prefect.observability.tracing import get_tracer, spans_leave_process

if TYPE_CHECKING:
    from wflo_prefect.costs.enforcement import Hold
    from wflo_prefect.ledger.costs import CostEntry

__all__ = [
    "PROVIDER_NAMES",
    "chat_span_setup",
    "end_chat_span",
    "fail_chat_span",
    "finish_reasons_of",
    "note_finish_reasons",
    "note_response",
    "start_chat_span",
    "stream_finish_reasons",
]

#: wflo provider name -> the conventions' ``gen_ai.provider.name`` (well-known values).
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "google": "gcp.gen_ai",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "google-vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
}


def start_chat_span(
    provider: str,
    model: str,
    *,
    max_output_tokens: int | None = None,
    estimate_usd: Decimal | None = None,
    start_time: int | None = None,
) -> Span:
    """Start (not activate) the span of one call to ``model``; end it with :func:`end_chat_span`."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": model,
        "wflo.provider": provider,
    }
    if max_output_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_output_tokens
    if estimate_usd is not None:
        attributes["wflo.cost.estimate_usd"] = str(estimate_usd)
    return get_tracer().start_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=start_time,
        record_exception=False,
        set_status_on_exception=False,
    )


@contextmanager
def chat_span_setup(span: Span) -> Iterator[Span]:
    """Run the call's checks (policies, budget hold) inside its span; a refusal ends it."""
    with trace.use_span(span, end_on_exit=False):
        try:
            yield span
        except BaseException as exc:
            fail_chat_span(span, exc, outcome="refused")
            raise


def fail_chat_span(span: Span | None, exc: BaseException, *, outcome: str = "released") -> None:
    """End the span of a call that was refused or failed, with ``error.type``."""
    if span is None or not span.is_recording():
        return
    span.set_attribute("error.type", type(exc).__name__)
    span.set_attribute("wflo.call.outcome", outcome)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.end()


def finish_reasons_of(response: Any) -> list[str]:
    """The finish reasons in a parsed response of OpenAI, Anthropic, Google or Cohere."""
    from wflo_prefect.costs.clients._usage import field

    reasons: list[str] = []
    for choice in field(response, "choices") or []:  # OpenAI chat completions
        if (reason := field(choice, "finish_reason")) is not None:
            reasons.append(str(reason))
    for candidate in field(response, "candidates") or []:  # Google
        reason = field(candidate, "finish_reason") or field(candidate, "finishReason")
        if reason is not None:
            reasons.append(str(getattr(reason, "name", reason)))
    for name in ("stop_reason", "finish_reason"):  # Anthropic, Cohere
        if (reason := field(response, name)) is not None and isinstance(reason, str):
            reasons.append(reason)
    if not reasons and isinstance(field(response, "status"), str):  # OpenAI Responses
        reasons.append(str(field(response, "status")))
    return reasons


def stream_finish_reasons(chunk: Any, into: list[str]) -> None:
    """Add the finish reasons a streamed chunk carries (OpenAI chat, Anthropic) to ``into``."""
    from wflo_prefect.costs.clients._usage import field

    for choice in field(chunk, "choices") or ():
        if (reason := field(choice, "finish_reason")) is not None:
            into.append(str(reason))
    reason = field(chunk, "delta", "stop_reason")
    if reason is not None and field(chunk, "type") == "message_delta":
        into.append(str(reason))


def note_finish_reasons(span: Span | None, reasons: Sequence[str]) -> None:
    """Put the finish reasons of a streamed response on the call's span."""
    if reasons and span is not None and span.is_recording():
        span.set_attribute("gen_ai.response.finish_reasons", list(reasons))


def note_response(span: Span | None, response: Any) -> None:
    """Put the response's id and finish reasons on the call's span (before it is settled)."""
    if span is None or not span.is_recording():
        return
    from wflo_prefect.costs.clients._usage import field

    reasons = finish_reasons_of(response)
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", reasons)
    response_id = field(response, "id") or field(response, "response_id")
    if isinstance(response_id, str):
        span.set_attribute("gen_ai.response.id", response_id)


def end_chat_span(
    span: Span | None,
    provider: str,
    entry: CostEntry,
    hold: Hold | None,
    *,
    started: float | None = None,
    cache_write_tokens: int = 0,
) -> None:
    """End the call's span with its usage, cost and budget left (one is made if none was).

    ``started`` (a ``time.perf_counter()`` value) dates a span made here, for calls
    recorded after they happened.
    """
    if span is None:
        start_time = None
        if started is not None:
            start_time = time.time_ns() - int((time.perf_counter() - started) * 1e9)
        span = start_chat_span(
            provider, entry.requested_model or entry.model, start_time=start_time
        )
    if not span.is_recording():
        span.end()
        return
    attributes: dict[str, Any] = {
        "gen_ai.response.model": entry.model,
        "gen_ai.usage.input_tokens": entry.input_tokens,
        "gen_ai.usage.output_tokens": entry.output_tokens,
        "wflo.cost.usd": str(entry.cost_usd),
        "wflo.call.outcome": "settled",
    }
    if entry.cached_input_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = entry.cached_input_tokens
    if cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = cache_write_tokens
    if entry.request_id and "gen_ai.response.id" not in (getattr(span, "attributes", None) or {}):
        attributes["gen_ai.response.id"] = entry.request_id
    if entry.cached:
        attributes["wflo.cache.hit"] = True
        attributes["wflo.cost.saved_usd"] = str(entry.saved_usd)
    if hold is not None and hold.bound and spans_leave_process():
        from wflo_prefect.observability.budget_view import tightest_after

        tightest = tightest_after(hold.bound, entry)
        if tightest is not None:
            attributes["wflo.budget.name"] = tightest[0]
            attributes["wflo.budget.remaining_usd"] = str(tightest[1])
    span.set_attributes(attributes)
    span.end()


def release_chat_span(span: Span | None, reasons: Sequence[str] = ()) -> None:
    """End the span of a call whose hold was given back (not sent, or no answer)."""
    if span is None or not span.is_recording():
        return
    span.set_attribute("wflo.call.outcome", "released")
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", list(reasons))
    span.end()
