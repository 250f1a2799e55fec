"""Instrumenting the official Cohere client (``cohere.ClientV2`` / ``AsyncClientV2``).

The v2 chat calls go through the client's ``_client_wrapper.httpx_client``:
``request(...)`` for ``chat`` and the ``stream(...)`` context manager for
``chat_stream``, with the wire body as ``json``. wflo replaces both on that
instance (the client's own retries re-enter ``request`` with ``retries > 0`` and
are not metered again). Usage comes from ``usage.billed_units`` of the response,
or of the stream's ``message-end`` event.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.costs.clients._usage import TokenUsage, as_int, field
from wflo_prefect.costs.metering import MeteredCall, start_call
from wflo_prefect.costs.output_limits import output_limit
from wflo_prefect.costs.settings import get_cost_settings

__all__ = ["instrument_cohere"]

_MARK = "_wflo_instrumented"


def _start(path: Any, method: str, body: Any) -> MeteredCall | None:
    if str(method).upper() != "POST" or str(path or "").strip("/") != "v2/chat":
        return None
    if not isinstance(body, dict):
        return None
    # The SDK marks parameters not given with Ellipsis; they are not sent.
    sent = {k: v for k, v in body.items() if v is not None and v is not Ellipsis}
    model = sent.get("model")
    if not isinstance(model, str):
        return None
    settings = get_cost_settings()
    inputs = input_bound(sent, ("messages", "tools", "documents"), "cohere", model).tokens
    limit = sent.get("max_tokens") or output_limit(
        "cohere", model, settings.default_max_output_tokens
    )
    max_output = int(limit)
    return start_call("cohere", model, input_tokens=inputs, max_output_tokens=max_output)


def _read_usage(usage: Any, into: TokenUsage) -> None:
    billed = field(usage, "billed_units") or field(usage, "tokens")
    if billed is None:
        return
    into.input_tokens = as_int(field(billed, "input_tokens"))
    into.output_tokens = as_int(field(billed, "output_tokens"))
    into.seen = True


def _settle(call: MeteredCall, usage: TokenUsage) -> None:
    if not usage.seen:
        call.settle_worst_case(request_id=usage.request_id)
        return
    call.settle(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        request_id=usage.request_id,
    )


class _SSEUsage:
    """Reads ``message-end`` usage out of SSE bytes as the caller consumes them."""

    def __init__(self) -> None:
        self.usage = TokenUsage()
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            try:
                event = json.loads(line[5:].strip())
            except ValueError:
                continue
            if field(event, "type") == "message-start":
                self.usage.request_id = field(event, "id") or self.usage.request_id
            if field(event, "type") == "message-end":
                _read_usage(field(event, "delta", "usage"), self.usage)


def instrument_cohere(client: Any) -> Any:
    """Meter ``client``'s v2 chat calls and streams; returns ``client``."""
    http = client._client_wrapper.httpx_client
    if getattr(http, _MARK, False):
        return client
    request, stream = http.request, http.stream
    is_async = type(http).__name__.startswith("Async")

    def _finish(call: MeteredCall, response: Any) -> None:
        usage = TokenUsage()
        if 200 <= response.status_code < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
            usage.request_id = field(data, "id")
            _read_usage(field(data, "usage"), usage)
            _settle(call, usage)
        else:
            call.release()

    if is_async:

        @functools.wraps(request)
        async def arequest(path: Any = None, *args: Any, **kwargs: Any) -> Any:
            call = None
            if not kwargs.get("retries"):
                call = _start(path, kwargs.get("method", ""), kwargs.get("json"))
            if call is None:
                return await request(path, *args, **kwargs)
            try:
                response = await request(path, *args, **kwargs)
                _finish(call, response)
                return response
            finally:
                if not call.closed:
                    call.release()

        @asynccontextmanager
        async def astream(path: Any = None, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            call = _start(path, kwargs.get("method", ""), kwargs.get("json"))
            if call is None:
                async with stream(path, *args, **kwargs) as response:
                    yield response
                return
            reader = _SSEUsage()
            try:
                async with stream(path, *args, **kwargs) as response:
                    original = response.aiter_bytes

                    async def tee(*a: Any, **k: Any) -> AsyncIterator[bytes]:
                        async for chunk in original(*a, **k):
                            reader.feed(chunk)
                            yield chunk

                    response.aiter_bytes = tee
                    yield response
                    ok = 200 <= response.status_code < 300
                if ok:
                    _settle(call, reader.usage)
            finally:
                if not call.closed:
                    call.release()

        http.request, http.stream = arequest, astream
    else:

        @functools.wraps(request)
        def srequest(path: Any = None, *args: Any, **kwargs: Any) -> Any:
            call = None
            if not kwargs.get("retries"):
                call = _start(path, kwargs.get("method", ""), kwargs.get("json"))
            if call is None:
                return request(path, *args, **kwargs)
            try:
                response = request(path, *args, **kwargs)
                _finish(call, response)
                return response
            finally:
                if not call.closed:
                    call.release()

        @contextmanager
        def sstream(path: Any = None, *args: Any, **kwargs: Any) -> Iterator[Any]:
            call = _start(path, kwargs.get("method", ""), kwargs.get("json"))
            if call is None:
                with stream(path, *args, **kwargs) as response:
                    yield response
                return
            reader = _SSEUsage()
            try:
                with stream(path, *args, **kwargs) as response:
                    original = response.iter_bytes

                    def tee(*a: Any, **k: Any) -> Iterator[bytes]:
                        for chunk in original(*a, **k):
                            reader.feed(chunk)
                            yield chunk

                    response.iter_bytes = tee
                    yield response
                    ok = 200 <= response.status_code < 300
                if ok:
                    _settle(call, reader.usage)
            finally:
                if not call.closed:
                    call.release()

        http.request, http.stream = srequest, sstream
    setattr(http, _MARK, True)
    return client
