"""One LLM call under governance: price, estimate, reserve, send, settle or release.

:func:`metered_call` is what :func:`~wflo_prefect.instrument` uses for every
request, and what code calling any other provider can use directly::

    with metered_call("openai", "gpt-4o-mini", input_tokens=1200, max_output_tokens=300) as call:
        response = my_http_client.post(...)          # sent only if the budgets allow
        call.settle(input_tokens=..., output_tokens=..., request_id=...)

:func:`record_llm_usage` records a call that already happened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from wflo_prefect.costs.attribution import Attribution, current_attribution
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.enforcement import Hold, reserve
from wflo_prefect.costs.prices import Price, find_price
from wflo_prefect.costs.usage import check_count, check_usage
from wflo_prefect.ledger.costs import CostEntry, NewCostEntry
from wflo_prefect.observability import genai, metrics
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.policies.engine import enforce_policies

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "MeteredCall",
    "estimate_cost",
    "metered_call",
    "record_cached_call",
    "record_llm_usage",
    "start_call",
]

_log = get_logger("costs")


@dataclass
class MeteredCall:
    """A call whose worst case is held on its budgets until it is settled."""

    provider: str
    model: str
    price: Price
    estimate_usd: Decimal
    who: Attribution
    hold: Hold
    started: float = field(default_factory=time.perf_counter)
    entry: CostEntry | None = None
    #: The response is a stream: it is settled when the stream ends, not on return.
    streaming: bool = False
    #: The model the caller asked for, when routing sent the request to ``model``.
    requested_model: str | None = None
    #: The call's ``chat {model}`` span (see observability/genai.py).
    span: Span | None = None

    def settle(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        model: str | None = None,
        request_id: str | None = None,
        cached: bool = False,
        saved_usd: Decimal = Decimal(0),
        cost_usd: Decimal | None = None,
        details: Mapping[str, int] | None = None,
        service_tier: str | None = None,
    ) -> CostEntry | None:
        """Record the actual usage (``model``: the one that answered, if it differs).

        ``details`` and ``service_tier`` are passed to :meth:`Price.cost`. Bad counts
        (negative, cached above input, absurdly large) raise
        :class:`~wflo_prefect.errors.InvalidArgumentError` and the hold stays open.
        """
        price = self.price
        answered = model or self.model
        if answered != self.model:
            try:
                price = find_price(self.provider, answered)
            except LookupError:
                price = self.price  # a dated alias of the requested model: same price
            if not price.priced and self.price.priced:
                # Unpriced (warn mode) but the requested model was priced and held:
                # a dated alias of it, priced as the requested model.
                price = self.price
        if cost_usd is None:
            cost_usd = price.cost(
                input_tokens,
                output_tokens,
                cached_input_tokens,
                cache_write_tokens=cache_write_tokens,
                details=details,
                service_tier=service_tier,
            )
        else:
            check_usage(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens)
        latency_ms = (time.perf_counter() - self.started) * 1000
        who = self.who
        entry = NewCostEntry(
            flow_run_id=who.flow_run_id,
            task_run_id=who.task_run_id,
            flow_name=who.flow_name,
            deployment_id=who.deployment_id,
            work_pool=who.work_pool,
            user=who.user,
            tags=list(who.tags),
            provider=self.provider,
            model=answered,
            requested_model=self.requested_model
            or (self.model if answered != self.model else None),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cost_usd=cost_usd,
            saved_usd=saved_usd,
            priced=price.priced,
            cached=cached,
            latency_ms=round(latency_ms, 3),
            request_id=request_id,
            trace_id=who.trace_id,
        )
        stored = self.hold.settle(entry)
        if stored is not None:
            self.entry = stored
            _observe(stored)
            genai.end_chat_span(
                self.span,
                self.provider,
                stored,
                self.hold,
                started=self.started,
                cache_write_tokens=cache_write_tokens,
            )
        return stored

    def settle_worst_case(self, *, request_id: str | None = None) -> CostEntry | None:
        """Charge the reserved worst case: the call was sent but its usage is unknown."""
        _log.warning(
            "costs.usage_unknown",
            provider=self.provider,
            model=self.model,
            charged_usd=str(self.estimate_usd),
        )
        return self.settle(
            input_tokens=0, output_tokens=0, cost_usd=self.estimate_usd, request_id=request_id
        )

    def release(self) -> None:
        """Give the hold back: the call failed or was never sent."""
        self.hold.release()
        genai.release_chat_span(self.span)

    @property
    def closed(self) -> bool:
        """Whether the call was settled or released."""
        return self.hold.closed


def _observe(entry: CostEntry) -> None:
    labels = (entry.provider, entry.model)
    metrics.LLM_API_CALLS.labels(*labels).inc()
    metrics.LLM_TOKENS.labels(*labels, "input").inc(entry.input_tokens)
    metrics.LLM_TOKENS.labels(*labels, "output").inc(entry.output_tokens)
    if entry.cached_input_tokens:
        metrics.LLM_TOKENS.labels(*labels, "cached_input").inc(entry.cached_input_tokens)
    metrics.WORKFLOW_COST.labels(entry.flow_name or "").inc(float(entry.cost_usd))
    _log.info(
        "llm.call",
        provider=entry.provider,
        model=entry.model,
        input_tokens=entry.input_tokens,
        output_tokens=entry.output_tokens,
        cost_usd=str(entry.cost_usd),
        cached=entry.cached,
    )


def _check_tokens(**counts: int) -> None:
    for name, value in counts.items():
        check_count(name, value)


def estimate_cost(
    provider: str,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int = 0,
    cached_input_tokens: int = 0,
) -> Decimal:
    """What a call would cost, in USD, before it is made (no budget is touched)."""
    check_usage(input_tokens, output_tokens, cached_input_tokens)
    return find_price(provider, model).cost(input_tokens, output_tokens, cached_input_tokens)


def start_call(
    provider: str,
    model: str,
    *,
    input_tokens: int,
    max_output_tokens: int,
    budgets: Sequence[Budget] | None = None,
    requested_model: str | None = None,
    details: Mapping[str, int] | None = None,
    service_tier: str | None = None,
    cache_write_tokens: int = 0,
) -> MeteredCall:
    """Price the worst case and hold it on the budgets; raises BudgetExceeded or
    UnknownModelPrice before anything is sent.

    ``details`` (e.g. ``input_audio_tokens``), ``service_tier`` and
    ``cache_write_tokens`` (input that may be written to the provider's cache) price
    the worst case as the provider would bill it.
    """
    _check_tokens(input_tokens=input_tokens, max_output_tokens=max_output_tokens)
    span = genai.start_chat_span(provider, model, max_output_tokens=max_output_tokens)
    with genai.chat_span_setup(span):  # the checks below are events / errors on the call's span
        price = find_price(provider, model)
        estimate = price.cost(
            input_tokens,
            max_output_tokens,
            cache_write_tokens=cache_write_tokens,
            details=details,
            service_tier=service_tier,
        )
        span.set_attribute("wflo.cost.estimate_usd", str(estimate))
        enforce_policies(
            "spend",
            kind="llm_call",
            name=f"{provider}/{model}",
            extra={"provider": provider, "model": model, "estimated_cost": estimate},
        )
        who = current_attribution()
        hold = reserve(estimate, who, budgets)
    call = MeteredCall(provider, model, price, estimate, who, hold, span=span)
    call.requested_model = requested_model
    return call


def record_cached_call(
    provider: str,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int,
    saved_usd: Decimal,
) -> CostEntry | None:
    """Record a call answered from the response cache: cost 0, ``saved_usd`` saved."""
    who = current_attribution()
    price = Price(provider, model, "custom")
    call = MeteredCall(provider, model, price, Decimal(0), who, Hold(Decimal(0), who, []))
    return call.settle(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached_input_tokens,
        cached=True,
        saved_usd=saved_usd,
        cost_usd=Decimal(0),
    )


@contextmanager
def metered_call(
    provider: str,
    model: str,
    *,
    input_tokens: int,
    max_output_tokens: int,
    budgets: Sequence[Budget] | None = None,
) -> Iterator[MeteredCall]:
    """Hold a call's worst case for the block; settle it inside, or it is released.

    Raises :class:`~wflo_prefect.BudgetExceeded` on entry (nothing is sent) when a
    ``halt`` budget would be overrun. Leaving the block without ``settle`` (an
    error, or the call was not made) releases the hold.
    """
    _check_tokens(input_tokens=input_tokens, max_output_tokens=max_output_tokens)
    call = start_call(
        provider,
        model,
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
        budgets=budgets,
    )
    try:
        yield call
    except BaseException as exc:
        if not call.closed:
            genai.fail_chat_span(call.span, exc)
        raise
    finally:
        if not call.closed:
            call.release()


def record_llm_usage(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    *,
    latency_ms: float | None = None,
    request_id: str | None = None,
    budgets: Sequence[Budget] | None = None,
) -> CostEntry:
    """Record a call made with any client: priced, attributed, counted on the budgets.

    The money is already spent, so nothing is refused; budgets over their limit
    alert, and the next governed call is halted. ``input_tokens`` includes
    ``cached_input_tokens``.
    """
    _check_tokens(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached_input_tokens,
    )
    price = find_price(provider, model)
    cost = price.cost(input_tokens, output_tokens, cached_input_tokens)
    who = current_attribution()
    hold = reserve(cost, who, budgets, enforce=False)
    call = MeteredCall(provider, model, price, cost, who, hold)
    if latency_ms is not None:
        call.started = time.perf_counter() - latency_ms / 1000
    stored = call.settle(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached_input_tokens,
        request_id=request_id,
        cost_usd=cost,
    )
    assert stored is not None
    return stored
