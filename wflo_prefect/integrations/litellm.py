"""LiteLLM's SDK under wflo budgets: metered ``completion`` and ``acompletion``.

Needs ``pip install 'wflo-prefect[litellm]'``. Call these instead of
``litellm.completion`` / ``litellm.acompletion``, with the same arguments::

    from wflo_prefect.integrations.litellm import acompletion

    response = await acompletion(model="openai/gpt-4o-mini", messages=[...], max_tokens=300)

Before the request is sent, its worst case (input estimated from the messages and
tools, plus ``max_tokens`` / ``max_completion_tokens`` or wflo's default) is held on
the active wflo budgets: a ``halt`` budget raises :class:`~wflo_prefect.BudgetExceeded`
and nothing is sent. The response's real usage is settled (for a stream, the usage
LiteLLM reports in its last chunk: wflo asks for it with
``stream_options={"include_usage": True}``), priced with wflo's prices for the
provider LiteLLM routes the model to, and attributed to the Prefect run. Errors
release the hold. In async code the hold and settle run off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from wflo_prefect.integrations._common import estimate_input_tokens, max_output_tokens, require

litellm: Any = require("litellm", "litellm")

from wflo_prefect._offload import run_off_loop  # noqa: E402
from wflo_prefect.costs.clients._usage import as_int, field  # noqa: E402
from wflo_prefect.costs.metering import MeteredCall, start_call  # noqa: E402

__all__ = ["acompletion", "completion", "price_provider"]

# LiteLLM's provider names where genai-prices (and wflo) name them otherwise.
_PROVIDERS = {
    "gemini": "google",
    "vertex_ai": "google-vertex",
    "vertex_ai_beta": "google-vertex",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "cohere_chat": "cohere",
    "xai": "x-ai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "text-completion-openai": "openai",
}


def price_provider(
    model: str, *, custom_llm_provider: str | None = None, api_base: str | None = None
) -> tuple[str, str]:
    """``(provider, model)`` as wflo prices them, for a LiteLLM model string.

    ``"openai/gpt-4o-mini"`` is ``("openai", "gpt-4o-mini")``; ``custom_llm_provider=``
    and ``api_base=`` are taken into account as LiteLLM does.
    """
    bare, provider, _, _ = litellm.get_llm_provider(
        model=model,
        custom_llm_provider=custom_llm_provider,
        api_base=api_base,
    )
    return _PROVIDERS.get(provider, provider), bare


def _start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[MeteredCall, dict[str, Any]]:
    params = dict(kwargs)
    if args:
        params.setdefault("model", args[0])
    if len(args) > 1:
        params.setdefault("messages", args[1])
    model = params.get("model")
    if not isinstance(model, str) or not model:
        from wflo_prefect.errors import InvalidArgumentError

        raise InvalidArgumentError(
            "completion() needs model= (a LiteLLM model string)",
            value=model,
            hint='e.g. completion(model="openai/gpt-4o-mini", messages=[...])',
            docs="integrations/litellm.md",
        )
    provider, bare = price_provider(
        model,
        custom_llm_provider=params.get("custom_llm_provider"),
        api_base=params.get("api_base"),
    )
    limit = params.get("max_completion_tokens") or params.get("max_tokens")
    call = start_call(
        provider,
        bare,
        input_tokens=estimate_input_tokens(
            [params.get("messages"), params.get("tools")], provider, bare
        ),
        max_output_tokens=max_output_tokens(limit),
    )
    if params.get("stream"):
        options = params.get("stream_options") or {}
        params["stream_options"] = {**options, "include_usage": True}
    return call, params


def _settle(call: MeteredCall, usage: Any, model: Any, request_id: Any) -> None:
    if usage is None:
        call.settle_worst_case(request_id=request_id if isinstance(request_id, str) else None)
        return
    details = field(usage, "prompt_tokens_details")
    call.settle(
        input_tokens=as_int(field(usage, "prompt_tokens")),
        output_tokens=as_int(field(usage, "completion_tokens")),
        cached_input_tokens=as_int(field(details, "cached_tokens")),
        model=model if isinstance(model, str) and model else None,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _usage_of(chunk: Any) -> Any:
    usage = field(chunk, "usage")
    if usage is None and isinstance(chunk, Mapping):
        usage = chunk.get("usage")
    return usage if field(usage, "prompt_tokens") is not None else None


class _MeteredStream:
    """LiteLLM's stream wrapper, settled when its chunks run out or it is closed."""

    def __init__(self, stream: Any, call: MeteredCall) -> None:
        self._stream = stream
        self._call = call
        self._usage: Any = None
        self._id: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _seen(self, chunk: Any) -> None:
        self._id = self._id or field(chunk, "id")
        usage = _usage_of(chunk)
        if usage is not None:
            self._usage = usage

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                self._seen(chunk)
                yield chunk
        finally:
            if not self._call.closed:
                _settle(self._call, self._usage, None, self._id)

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._stream:
                self._seen(chunk)
                yield chunk
        finally:
            if not self._call.closed:
                await run_off_loop(_settle, self._call, self._usage, None, self._id)


def completion(*args: Any, **kwargs: Any) -> Any:
    """``litellm.completion``, held on wflo budgets before it is sent, then settled."""
    call, params = _start(args, kwargs)
    try:
        response = litellm.completion(**params)
    except BaseException:
        call.release()
        raise
    if params.get("stream"):
        return _MeteredStream(response, call)
    try:
        _settle(call, _usage_of(response), field(response, "model"), field(response, "id"))
    finally:
        if not call.closed:
            call.release()
    return response


async def acompletion(*args: Any, **kwargs: Any) -> Any:
    """``litellm.acompletion``: the hold and settle run off the event loop."""
    call, params = await run_off_loop(_start, args, kwargs)
    try:
        response = await litellm.acompletion(**params)
    except BaseException:
        await run_off_loop(call.release)
        raise
    if params.get("stream"):
        return _MeteredStream(response, call)
    try:
        await run_off_loop(
            _settle, call, _usage_of(response), field(response, "model"), field(response, "id")
        )
    finally:
        if not call.closed:
            await run_off_loop(call.release)
    return response
