"""Instrumenting the official Google GenAI client (``google.genai.Client``).

Its API calls go through four methods of the client's ``_api_client``
(``request``, ``request_streamed``, ``async_request``, ``async_request_streamed``)
with the wire body as a dict, before the client's retries. wflo replaces them on
that instance, for ``…:generateContent`` and ``…:streamGenerateContent``: the worst
case is estimated from ``contents``, ``systemInstruction``, ``tools`` and
``generationConfig.maxOutputTokens``, reserved, and settled from the response's
``usageMetadata`` (in a stream, the last chunk's). ``thoughtsTokenCount`` is
billed as output, ``cachedContentTokenCount`` as cached input.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.costs.clients._usage import (
    TokenUsage,
    as_int,
    field,
)
from wflo_prefect.costs.metering import MeteredCall, start_call
from wflo_prefect.costs.output_limits import output_limit
from wflo_prefect.costs.settings import get_cost_settings

__all__ = ["instrument_google"]

_PATH = re.compile(r"(?:^|/)(?:models/)?(?P<model>[^/:?]+):(?:stream)?[gG]enerateContent$")
_MARK = "_wflo_instrumented"


def _model_of(path: str) -> str | None:
    match = _PATH.search(path.split("?", 1)[0])
    return match.group("model") if match else None


def _start(path: str, body: dict[str, Any]) -> MeteredCall | None:
    model = _model_of(path)
    if model is None:
        return None
    settings = get_cost_settings()
    keys = ("contents", "systemInstruction", "system_instruction", "tools")
    inputs = input_bound(body, keys, "google", model).tokens
    config = body.get("generationConfig") or body.get("generation_config") or {}
    limit = field(config, "maxOutputTokens") or field(config, "max_output_tokens")
    candidates = field(config, "candidateCount") or 1
    most = limit or output_limit("google", model, settings.default_max_output_tokens)
    max_output = int(most) * int(candidates)
    return start_call("google", model, input_tokens=inputs, max_output_tokens=max_output)


def _read(body: str | None, into: TokenUsage) -> None:
    if not body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return
    usage = field(data, "usageMetadata")
    into.model = field(data, "modelVersion") or into.model
    into.request_id = field(data, "responseId") or into.request_id
    if usage is None:
        return
    into.input_tokens = as_int(field(usage, "promptTokenCount"))
    into.cached_input_tokens = as_int(field(usage, "cachedContentTokenCount"))
    into.output_tokens = as_int(field(usage, "candidatesTokenCount")) + as_int(
        field(usage, "thoughtsTokenCount")
    )
    into.seen = True


def _settle(call: MeteredCall, usage: TokenUsage) -> None:
    if not usage.seen:
        call.settle_worst_case(request_id=usage.request_id)
        return
    call.settle(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        model=usage.model,
        request_id=usage.request_id,
    )


def instrument_google(client: Any) -> Any:
    """Meter ``client``'s generateContent calls, sync and async (``client.aio``)."""
    api = client._api_client
    if getattr(api, _MARK, False):
        return client
    request, request_streamed = api.request, api.request_streamed
    async_request, async_request_streamed = api.async_request, api.async_request_streamed

    @functools.wraps(request)
    def metered_request(method: str, path: str, body: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start(path, body) if method.lower() == "post" else None
        if call is None:
            return request(method, path, body, *args, **kwargs)
        try:
            response = request(method, path, body, *args, **kwargs)
            usage = TokenUsage()
            _read(response.body, usage)
            _settle(call, usage)
            return response
        finally:
            if not call.closed:
                call.release()

    @functools.wraps(request_streamed)
    def metered_stream(
        method: str, path: str, body: Any, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        call = _start(path, body) if method.lower() == "post" else None
        if call is None:
            yield from request_streamed(method, path, body, *args, **kwargs)
            return
        usage = TokenUsage()
        received = False
        try:
            for chunk in request_streamed(method, path, body, *args, **kwargs):
                received = True
                _read(chunk.body, usage)
                yield chunk
        finally:
            if not call.closed:
                if received:
                    _settle(call, usage)
                else:
                    call.release()

    @functools.wraps(async_request)
    async def metered_async_request(
        method: str, path: str, body: Any, *args: Any, **kwargs: Any
    ) -> Any:
        call = _start(path, body) if method.lower() == "post" else None
        if call is None:
            return await async_request(method, path, body, *args, **kwargs)
        try:
            response = await async_request(method, path, body, *args, **kwargs)
            usage = TokenUsage()
            _read(response.body, usage)
            _settle(call, usage)
            return response
        finally:
            if not call.closed:
                call.release()

    @functools.wraps(async_request_streamed)
    async def metered_async_stream(
        method: str, path: str, body: Any, *args: Any, **kwargs: Any
    ) -> Any:
        call = _start(path, body) if method.lower() == "post" else None
        if call is None:
            return await async_request_streamed(method, path, body, *args, **kwargs)
        try:
            chunks = await async_request_streamed(method, path, body, *args, **kwargs)
        except BaseException:
            call.release()
            raise

        async def metered() -> AsyncIterator[Any]:
            usage = TokenUsage()
            received = False
            try:
                async for chunk in chunks:
                    received = True
                    _read(chunk.body, usage)
                    yield chunk
            finally:
                if not call.closed:
                    if received:
                        _settle(call, usage)
                    else:
                        call.release()

        return metered()

    api.request = metered_request
    api.request_streamed = metered_stream
    api.async_request = metered_async_request
    api.async_request_streamed = metered_async_stream
    setattr(api, _MARK, True)
    return client
