"""Instrumenting the official OpenAI and Anthropic clients (both Stainless-generated).

Every API call of these clients goes through one method, ``client.request(cast_to,
options, stream=..., stream_cls=...)``, *before* the client's retry loop. wflo
replaces it on the client instance: for a metered endpoint it estimates the worst
case from ``options.json_data``, reserves it (raising ``BudgetExceeded`` there, so
nothing reaches the network), calls the original, and settles with the usage of
the parsed response, or, for a stream, when the stream ends or is closed. Any
error releases the hold. The client object stays the same object, of the same
type; ``with_options`` / ``copy`` return instrumented copies.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from wflo_prefect._offload import run_off_loop
from wflo_prefect.costs.attribution import current_attribution
from wflo_prefect.costs.caching import ResponseCache
from wflo_prefect.costs.clients._providers import Endpoint, endpoint_for
from wflo_prefect.costs.clients._usage import TokenUsage
from wflo_prefect.costs.metering import MeteredCall, record_cached_call, start_call
from wflo_prefect.costs.routing import ModelRouting
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.observability import genai

__all__ = ["Meter", "instrument_stainless"]

_MARK = "_wflo_instrumented"


@dataclass(frozen=True, slots=True)
class Meter:
    """How one instrumented client is metered."""

    provider: str
    cache: ResponseCache | None = None
    routing: ModelRouting | None = None


@dataclass
class _Prepared:
    endpoint: Endpoint
    options: Any
    injected: bool = False
    call: MeteredCall | None = None
    cache_key: str | None = None
    cached_result: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _request_id(obj: Any) -> str | None:
    rid = getattr(obj, "_request_id", None)
    if isinstance(rid, str):
        return rid
    response = getattr(obj, "response", None) or getattr(obj, "http_response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        value = headers.get("x-request-id") or headers.get("request-id")
        return str(value) if value else None
    return None


def _settle(call: MeteredCall, usage: TokenUsage | None, request_id: str | None) -> None:
    if usage is None or not usage.seen:
        call.settle_worst_case(request_id=request_id)
        return
    call.settle(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        model=usage.model,
        request_id=request_id,
        details=usage.details,
        service_tier=usage.service_tier,
    )


def _is_stream(result: Any) -> bool:
    return hasattr(result, "_iterator") and hasattr(result, "response")


def _prepare(meter: Meter, options: Any, stream: bool) -> _Prepared | None:
    body = getattr(options, "json_data", None)
    endpoint = endpoint_for(meter.provider, str(options.method), str(options.url))
    if endpoint is None or not isinstance(body, dict) or not body.get("model"):
        return None
    streaming = stream or bool(body.get("stream"))
    prepared = _Prepared(endpoint, options)
    if meter.cache is not None and not streaming:
        prepared.cache_key = meter.cache.key(meter.provider, str(options.url), body)
        hit = meter.cache.get(prepared.cache_key)
        if hit is not None:
            record_cached_call(
                meter.provider,
                hit.model,
                input_tokens=hit.input_tokens,
                output_tokens=hit.output_tokens,
                cached_input_tokens=hit.cached_input_tokens,
                saved_usd=hit.cost_usd,
            )
            prepared.cached_result = hit.result
            return prepared
    settings = get_cost_settings()
    estimate = endpoint.estimate(body, settings.default_max_output_tokens)
    model = estimate.model
    if meter.routing is not None:
        model = meter.routing.target(estimate.model, current_attribution())
    new_body = body
    if model != estimate.model:
        new_body = {**new_body, "model": model}
    if streaming and endpoint.wants_stream_usage(body):
        usage_options = {**(body.get("stream_options") or {}), "include_usage": True}
        new_body = {**new_body, "stream_options": usage_options}
        prepared.injected = True
    if new_body is not body:
        prepared.options = options.model_copy()
        prepared.options.json_data = new_body
    prepared.call = start_call(
        meter.provider,
        model,
        input_tokens=estimate.input_tokens,
        max_output_tokens=estimate.max_output_tokens,
        requested_model=estimate.model if model != estimate.model else None,
        details=estimate.details,
        service_tier=estimate.service_tier,
        cache_write_tokens=estimate.cache_write_tokens,
    )
    return prepared


def _complete(meter: Meter, prepared: _Prepared, result: Any, parsed: Any) -> None:
    call = prepared.call
    assert call is not None
    genai.note_response(call.span, parsed)
    _settle(call, prepared.endpoint.usage_of(parsed), _request_id(result))
    entry = call.entry
    if (
        meter.cache is not None
        and prepared.cache_key is not None
        and entry is not None
        and result is parsed
        and isinstance(result, BaseModel)
    ):
        meter.cache.put(
            prepared.cache_key,
            result,
            model=entry.model,
            input_tokens=entry.input_tokens,
            output_tokens=entry.output_tokens,
            cached_input_tokens=entry.cached_input_tokens,
            cost_usd=entry.cost_usd,
        )


def _wrap_stream(stream: Any, endpoint: Endpoint, call: MeteredCall, injected: bool) -> None:
    original: Iterator[Any] = stream._iterator
    call.streaming = True
    acc = TokenUsage()
    rid = _request_id(stream)

    reasons: list[str] = []

    def metered() -> Generator[Any, None, None]:
        try:
            for item in original:
                genai.stream_finish_reasons(item, reasons)
                if not endpoint.observe(item, acc, injected):
                    yield item
        finally:
            if not call.closed:
                genai.note_finish_reasons(call.span, reasons)
                _settle(call, acc, rid)

    generator = metered()
    stream._iterator = generator
    close = stream.close

    @functools.wraps(close)
    def closing() -> None:
        try:
            close()
        finally:
            generator.close()

    stream.close = closing


def _wrap_async_stream(stream: Any, endpoint: Endpoint, call: MeteredCall, injected: bool) -> None:
    original: AsyncIterator[Any] = stream._iterator
    call.streaming = True
    acc = TokenUsage()
    rid = _request_id(stream)

    reasons: list[str] = []

    async def metered() -> AsyncGenerator[Any, None]:
        try:
            async for item in original:
                genai.stream_finish_reasons(item, reasons)
                if not endpoint.observe(item, acc, injected):
                    yield item
        finally:
            if not call.closed:
                genai.note_finish_reasons(call.span, reasons)
                await run_off_loop(_settle, call, acc, rid)

    generator = metered()
    stream._iterator = generator
    close = stream.close

    @functools.wraps(close)
    async def closing() -> None:
        try:
            await close()
        finally:
            await generator.aclose()

    stream.close = closing


def _is_raw(result: Any) -> bool:
    return hasattr(result, "http_response") and hasattr(result, "parse")


def instrument_stainless(client: Any, meter: Meter) -> Any:
    """Meter every LLM request ``client`` makes (sync or async); returns ``client``."""
    if getattr(client, _MARK, False):
        return client
    original_request = client.request
    original_copy = client.copy

    if inspect.iscoroutinefunction(original_request):

        @functools.wraps(original_request)
        async def arequest(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
            # Holds and settles write the ledger: off the event loop (wflo_prefect._offload).
            prepared = await run_off_loop(_prepare, meter, options, bool(kwargs.get("stream")))
            if prepared is None:
                return await original_request(cast_to, options, *args, **kwargs)
            if prepared.call is None:
                return prepared.cached_result
            call = prepared.call
            try:
                result = await original_request(cast_to, prepared.options, *args, **kwargs)
                if _is_stream(result):
                    _wrap_async_stream(result, prepared.endpoint, call, prepared.injected)
                    return result
                parsed = await result.parse() if _is_raw(result) else result
                await run_off_loop(_complete, meter, prepared, result, parsed)
                return result
            finally:
                if not call.closed and not call.streaming:
                    await run_off_loop(call.release)

        client.request = arequest
    else:

        @functools.wraps(original_request)
        def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
            prepared = _prepare(meter, options, bool(kwargs.get("stream")))
            if prepared is None:
                return original_request(cast_to, options, *args, **kwargs)
            if prepared.call is None:
                return prepared.cached_result
            call = prepared.call
            try:
                result = original_request(cast_to, prepared.options, *args, **kwargs)
                if _is_stream(result):
                    _wrap_stream(result, prepared.endpoint, call, prepared.injected)
                    return result
                # A raw response: parse() caches, so the caller's parse() is the same object.
                parsed = result.parse() if _is_raw(result) else result
                _complete(meter, prepared, result, parsed)
                return result
            finally:
                if not call.closed and not call.streaming:
                    call.release()

        client.request = request

    @functools.wraps(original_copy)
    def copy(*args: Any, **kwargs: Any) -> Any:
        return instrument_stainless(original_copy(*args, **kwargs), meter)

    client.copy = copy
    client.with_options = copy
    setattr(client, _MARK, True)
    return client
