"""Instrumenting the official Google GenAI client (``google.genai.Client``).

Its API calls go through four methods of the client's ``_api_client``
(``request``, ``request_streamed``, ``async_request``, ``async_request_streamed``)
with the wire body as a dict, before the client's retries. wflo replaces them on
that instance, for:

* ``…:generateContent`` and ``…:streamGenerateContent``: the worst case is
  estimated from ``contents``, ``systemInstruction``, ``tools`` and
  ``generationConfig.maxOutputTokens``, reserved, and settled from the response's
  ``usageMetadata`` (in a stream, the last chunk's). ``thoughtsTokenCount`` is
  billed as output, ``cachedContentTokenCount`` as cached input. A stream that ends
  before its final chunk (the caller stopped, or the connection broke) was sent and
  is billed by Google: it is charged its worst case.
* ``embed_content`` (``…:batchEmbedContents``, ``…:embedContent``, and Vertex's
  ``…:predict`` for embedding models): input tokens only, from ``usageMetadata``
  or Vertex's per-embedding ``statistics.token_count``; the Gemini API's
  ``batchEmbedContents`` reports no counts, and is then recorded at the hold's
  offline count (an upper bound, see ``tokens.py``).

Calls through a Vertex AI client (``Client(vertexai=True)``) are recorded under the
provider ``google-vertex`` and priced at Vertex's list prices (see
``shipped_prices.py``); Gemini API calls under ``google``. Audio input
(``usageMetadata.promptTokensDetails`` with modality ``AUDIO``) is priced at the
audio rate; the hold counts inline audio the same way.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.costs.clients._usage import TokenUsage, as_int, field
from wflo_prefect.costs.metering import MeteredCall, start_call
from wflo_prefect.costs.output_limits import output_limit
from wflo_prefect.costs.settings import get_cost_settings

__all__ = ["instrument_google"]

_PATH = re.compile(
    r"(?:^|/)(?:models/)?(?P<model>[^/:?]+):"
    r"(?P<method>(?:stream)?[gG]enerateContent|batchEmbedContents|embedContent|predict)$"
)
_MARK = "_wflo_instrumented"


@dataclass(slots=True)
class _Call:
    """A metered request: its hold, and for an embedding the hold's input count."""

    metered: MeteredCall
    embed_tokens: int | None = None


def _embed_contents(method: str, body: dict[str, Any]) -> list[Any] | None:
    """The contents an embedding request embeds, or None when it is not one."""
    if method == "batchEmbedContents":
        return [field(r, "content") for r in body.get("requests") or []]
    if method == "embedContent":
        return [body.get("content")]
    instances = body.get("instances")
    if isinstance(instances, list) and all(field(i, "content") for i in instances):
        return [field(i, "content") for i in instances]
    return None  # another :predict (Imagen...): not metered


def _start(provider: str, path: str, body: Any) -> _Call | None:
    match = _PATH.search(path.split("?", 1)[0])
    if match is None or not isinstance(body, dict):
        return None
    model, method = match.group("model"), match.group("method")
    if not method.lower().endswith("generatecontent"):
        contents = _embed_contents(method, body)
        if contents is None:
            return None
        tokens = input_bound({"contents": contents}, ("contents",), provider, model).tokens
        call = start_call(provider, model, input_tokens=tokens, max_output_tokens=0)
        return _Call(call, tokens)
    settings = get_cost_settings()
    keys = ("contents", "systemInstruction", "system_instruction", "tools")
    bound = input_bound(body, keys, provider, model)
    config = body.get("generationConfig") or body.get("generation_config") or {}
    limit = field(config, "maxOutputTokens") or field(config, "max_output_tokens")
    candidates = field(config, "candidateCount") or 1
    most = limit or output_limit(provider, model, settings.default_max_output_tokens)
    max_output = int(most) * int(candidates)
    details = {"input_audio_tokens": bound.audio_tokens} if bound.audio_tokens else None
    call = start_call(
        provider, model, input_tokens=bound.tokens, max_output_tokens=max_output, details=details
    )
    return _Call(call)


def _audio_tokens(usage: Any, key: str) -> int:
    """Audio tokens of a ``usageMetadata``'s ``promptTokensDetails`` or
    ``cacheTokensDetails`` (``key``)."""
    parts = field(usage, key)
    if not isinstance(parts, list):
        return 0
    return sum(as_int(field(p, "tokenCount")) for p in parts if field(p, "modality") == "AUDIO")


def _read(body: str | None, into: TokenUsage) -> bool:
    """Read one response (or stream chunk) into ``into``; True if it is a final chunk."""
    if not body:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    usage = field(data, "usageMetadata")
    into.model = field(data, "modelVersion") or into.model
    into.request_id = field(data, "responseId") or into.request_id
    if usage is not None:
        into.input_tokens = as_int(field(usage, "promptTokenCount"))
        into.cached_input_tokens = as_int(field(usage, "cachedContentTokenCount"))
        into.output_tokens = as_int(field(usage, "candidatesTokenCount")) + as_int(
            field(usage, "thoughtsTokenCount")
        )
        audio = _audio_tokens(usage, "promptTokensDetails")
        if audio:
            into.details["input_audio_tokens"] = audio
            cached_audio = _audio_tokens(usage, "cacheTokensDetails")
            if cached_audio:
                into.details["cache_audio_read_tokens"] = min(cached_audio, audio)
        into.seen = True
    elif isinstance(field(data, "predictions"), list):  # Vertex embeddings
        counts = [field(p, "embeddings", "statistics", "token_count") for p in data["predictions"]]
        if counts and all(c is not None for c in counts):
            into.input_tokens = sum(as_int(c) for c in counts)
            into.seen = True
    candidates = field(data, "candidates")
    return isinstance(candidates, list) and any(field(c, "finishReason") for c in candidates)


def _settle(call: _Call, usage: TokenUsage) -> None:
    if not usage.seen and call.embed_tokens is not None:
        usage.input_tokens, usage.seen = call.embed_tokens, True  # no counts: the bound
    if not usage.seen:
        call.metered.settle_worst_case(request_id=usage.request_id)
        return
    call.metered.settle(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        model=usage.model,
        request_id=usage.request_id,
        details=usage.details or None,
    )


def _end_stream(call: _Call, usage: TokenUsage, received: bool, finished: bool) -> None:
    """Close a stream's call however it ended: no chunk (refused, never answered):
    released; ended early (caller stopped, connection broke): its worst case."""
    if call.metered.closed:
        return
    if not received:
        call.metered.release()
    elif finished:
        _settle(call, usage)
    else:
        call.metered.settle_worst_case(request_id=usage.request_id)


def instrument_google(client: Any) -> Any:
    """Meter ``client``'s generateContent calls, streams and embeddings, sync and async."""
    api = client._api_client
    if getattr(api, _MARK, False):
        return client
    provider = "google-vertex" if getattr(api, "vertexai", False) else "google"
    request, request_streamed = api.request, api.request_streamed
    async_request, async_request_streamed = api.async_request, api.async_request_streamed

    @functools.wraps(request)
    def metered_request(method: str, path: str, body: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start(provider, path, body) if method.lower() == "post" else None
        if call is None:
            return request(method, path, body, *args, **kwargs)
        try:
            response = request(method, path, body, *args, **kwargs)
            usage = TokenUsage()
            _read(response.body, usage)
            _settle(call, usage)
            return response
        finally:
            if not call.metered.closed:
                call.metered.release()

    @functools.wraps(request_streamed)
    def metered_stream(
        method: str, path: str, body: Any, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        call = _start(provider, path, body) if method.lower() == "post" else None
        if call is None:
            yield from request_streamed(method, path, body, *args, **kwargs)
            return
        usage = TokenUsage()
        received = finished = False
        try:
            for chunk in request_streamed(method, path, body, *args, **kwargs):
                received = True
                finished = _read(chunk.body, usage) or finished
                yield chunk
        finally:
            _end_stream(call, usage, received, finished)

    @functools.wraps(async_request)
    async def metered_async_request(
        method: str, path: str, body: Any, *args: Any, **kwargs: Any
    ) -> Any:
        call = _start(provider, path, body) if method.lower() == "post" else None
        if call is None:
            return await async_request(method, path, body, *args, **kwargs)
        try:
            response = await async_request(method, path, body, *args, **kwargs)
            usage = TokenUsage()
            _read(response.body, usage)
            _settle(call, usage)
            return response
        finally:
            if not call.metered.closed:
                call.metered.release()

    @functools.wraps(async_request_streamed)
    async def metered_async_stream(
        method: str, path: str, body: Any, *args: Any, **kwargs: Any
    ) -> Any:
        call = _start(provider, path, body) if method.lower() == "post" else None
        if call is None:
            return await async_request_streamed(method, path, body, *args, **kwargs)
        try:
            chunks = await async_request_streamed(method, path, body, *args, **kwargs)
        except BaseException:
            call.metered.release()
            raise

        async def metered() -> AsyncIterator[Any]:
            usage = TokenUsage()
            # The request is answered (sent, 2xx) before the first chunk is read.
            received, finished = True, False
            try:
                async for chunk in chunks:
                    received = True
                    finished = _read(chunk.body, usage) or finished
                    yield chunk
            finally:
                _end_stream(call, usage, received, finished)

        return metered()

    api.request = metered_request
    api.request_streamed = metered_stream
    api.async_request = metered_async_request
    api.async_request_streamed = metered_async_stream
    setattr(api, _MARK, True)
    return client
