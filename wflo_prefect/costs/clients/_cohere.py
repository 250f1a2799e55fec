"""Instrumenting the official Cohere clients (``cohere.Client``/``AsyncClient``, v1,
and ``cohere.ClientV2``/``AsyncClientV2``).

All their API calls go through the client's ``_client_wrapper.httpx_client``:
``request(...)`` for a plain call and the ``stream(...)`` context manager for a
stream, with the wire body as ``json``. wflo replaces both on that instance (the
client's own retries re-enter ``request`` with ``retries > 0`` and are not metered
again) and meters ``v1/chat``, ``v2/chat`` (plain and streamed) and ``v1/embed``,
``v2/embed``. Usage comes from the response's billed units: ``usage.billed_units``
(v2 chat, and its stream's ``message-end`` event), ``meta.billed_units`` (v1 chat,
its stream's ``stream-end`` event, and embeddings). ``cohere.Client.embed`` sends
its batches from a thread pool; wflo runs them in the caller's context so they are
attributed and budgeted like the call that made them.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.costs.clients._usage import TokenUsage, as_int, field
from wflo_prefect.costs.metering import MeteredCall, start_call
from wflo_prefect.costs.output_limits import output_limit
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.errors import InvalidArgumentError

__all__ = ["instrument_cohere"]

_MARK = "_wflo_instrumented"

#: Metered paths and the request fields that are the call's input.
_INPUTS: dict[str, tuple[str, ...]] = {
    "v2/chat": ("messages", "tools", "documents"),
    "v1/chat": ("message", "chat_history", "preamble", "documents", "tools", "tool_results"),
    "v1/embed": ("texts", "images"),
    "v2/embed": ("texts", "images", "inputs"),
}


def _start(path: Any, method: str, body: Any) -> MeteredCall | None:
    endpoint = str(path or "").strip("/")
    keys = _INPUTS.get(endpoint)
    if str(method).upper() != "POST" or keys is None or not isinstance(body, dict):
        return None
    # The SDK marks parameters not given with Ellipsis; they are not sent.
    sent = {k: v for k, v in body.items() if v is not None and v is not Ellipsis}
    model = sent.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidArgumentError(
            f"An instrumented Cohere call to {endpoint} must name its model",
            value=sent.get("model"),
            hint="Pass model=... (e.g. model='command-r' or model='embed-english-v3.0'); "
            "without it Cohere picks a default wflo cannot price",
            docs="costs.md#capturing-calls",
        )
    inputs = input_bound(sent, keys, "cohere", model).tokens
    if endpoint.endswith("embed"):
        return start_call("cohere", model, input_tokens=inputs, max_output_tokens=0)
    settings = get_cost_settings()
    limit = sent.get("max_tokens") or output_limit(
        "cohere", model, settings.default_max_output_tokens
    )
    return start_call("cohere", model, input_tokens=inputs, max_output_tokens=int(limit))


def _read_usage(usage: Any, into: TokenUsage) -> None:
    billed = field(usage, "billed_units") or field(usage, "tokens")
    if billed is None:
        return
    into.input_tokens = as_int(field(billed, "input_tokens"))
    into.output_tokens = as_int(field(billed, "output_tokens"))
    into.seen = True


def _read_response(data: Any, into: TokenUsage) -> None:
    """Usage of a complete response: v2 chat's ``usage``, v1 chat's and embed's ``meta``."""
    into.request_id = (
        field(data, "id") or field(data, "response_id") or field(data, "generation_id")
    )
    _read_usage(field(data, "usage") or field(data, "meta"), into)


def _settle(call: MeteredCall, usage: TokenUsage) -> None:
    if not usage.seen:
        call.settle_worst_case(request_id=usage.request_id)
        return
    call.settle(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        request_id=usage.request_id,
    )


class _StreamUsage:
    """Reads the usage out of a stream's bytes as the caller consumes them: v2's SSE
    (``data:`` lines; ``message-end``) or v1's JSON lines (``stream-end``)."""

    def __init__(self) -> None:
        self.usage = TokenUsage()
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            line = line.strip()
            if line.startswith(b"data:"):
                line = line[5:].strip()
            if not line.startswith(b"{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = field(event, "type") or field(event, "event_type")
            if kind == "message-start":
                self.usage.request_id = field(event, "id") or self.usage.request_id
            elif kind == "stream-start":
                self.usage.request_id = field(event, "generation_id") or self.usage.request_id
            elif kind == "message-end":
                _read_usage(field(event, "delta", "usage"), self.usage)
            elif kind == "stream-end":
                _read_response(field(event, "response"), self.usage)


def _close_stream(call: MeteredCall, response: Any, reader: _StreamUsage) -> None:
    """Settle a stream however it ended: a stream the server accepted is settled on
    its usage, or its worst case when the caller left (or it broke) before the usage
    event; a refused or unsent one is released."""
    if call.closed:
        return
    if response is not None and 200 <= response.status_code < 300:
        _settle(call, reader.usage)
    else:
        call.release()


class _ContextExecutor:
    """``cohere.Client``'s thread pool, running each task in a copy of the caller's
    context (its run, attribution and ``use_budgets``)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def map(self, fn: Callable[..., Any], *iterables: Any, **kwargs: Any) -> Any:
        parent = contextvars.copy_context()
        return self._inner.map(lambda *a: parent.copy().run(fn, *a), *iterables, **kwargs)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._inner.submit(contextvars.copy_context().run, fn, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def instrument_cohere(client: Any) -> Any:
    """Meter ``client``'s chat calls, streams and embeddings; returns ``client``."""
    http = client._client_wrapper.httpx_client
    if getattr(http, _MARK, False):
        return client
    executor = getattr(client, "_executor", None)
    if executor is not None and not isinstance(executor, _ContextExecutor):
        client._executor = _ContextExecutor(executor)
    request, stream = http.request, http.stream
    is_async = type(http).__name__.startswith("Async")

    def _finish(call: MeteredCall, response: Any) -> None:
        usage = TokenUsage()
        if 200 <= response.status_code < 300:
            try:
                data = response.json()
            except ValueError:
                data = None
            _read_response(data, usage)
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
            reader = _StreamUsage()
            response = None
            try:
                async with stream(path, *args, **kwargs) as response:
                    original = response.aiter_bytes

                    async def tee(*a: Any, **k: Any) -> AsyncIterator[bytes]:
                        async for chunk in original(*a, **k):
                            reader.feed(chunk)
                            yield chunk

                    response.aiter_bytes = tee
                    yield response
            finally:
                _close_stream(call, response, reader)

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
            reader = _StreamUsage()
            response = None
            try:
                with stream(path, *args, **kwargs) as response:
                    original = response.iter_bytes

                    def tee(*a: Any, **k: Any) -> Iterator[bytes]:
                        for chunk in original(*a, **k):
                            reader.feed(chunk)
                            yield chunk

                    response.iter_bytes = tee
                    yield response
            finally:
                _close_stream(call, response, reader)

        http.request, http.stream = srequest, sstream
    setattr(http, _MARK, True)
    return client
