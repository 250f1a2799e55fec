"""``instrument(client)``: price, attribute and budget every LLM call a client makes.

Supported: the official ``openai`` clients (``OpenAI``, ``AsyncOpenAI``, Azure
variants: chat completions, responses, embeddings, legacy completions; streaming
included), ``anthropic`` clients (``Anthropic``, ``AsyncAnthropic``: messages,
streaming included), ``google.genai.Client`` (generate_content and its stream,
embed_content; sync and ``client.aio``) and ``cohere`` clients (``Client``,
``AsyncClient``, ``ClientV2``, ``AsyncClientV2``: chat, chat_stream, embed).
The same client object is returned, still of its own type.
"""

from __future__ import annotations

from typing import TypeVar

from wflo_prefect.costs.caching import ResponseCache
from wflo_prefect.costs.clients._cohere import instrument_cohere
from wflo_prefect.costs.clients._google import instrument_google
from wflo_prefect.costs.clients._stainless import Meter, instrument_stainless
from wflo_prefect.costs.routing import ModelRouting
from wflo_prefect.costs.tokens import warm_up
from wflo_prefect.errors import InvalidArgumentError

__all__ = ["instrument"]

C = TypeVar("C")


def _provider_of(client: object) -> str | None:
    for cls in type(client).__mro__:
        root = cls.__module__.split(".", 1)[0]
        if root in ("openai", "anthropic") and hasattr(client, "request"):
            return root
        if cls.__module__.startswith("google.genai") and hasattr(client, "_api_client"):
            return "google"
        if root == "cohere" and hasattr(client, "_client_wrapper"):
            return "cohere"
    return None


def instrument(
    client: C, *, cache: ResponseCache | None = None, routing: ModelRouting | None = None
) -> C:
    """Meter every LLM request of ``client``; returns the same client.

    Before each request its worst case (input tokens estimated from the request,
    plus its maximum output tokens at the output price) is reserved on the active
    budgets; a ``halt`` budget that would be overrun raises
    :class:`~wflo_prefect.BudgetExceeded` and nothing is sent. The actual usage is
    settled from the response (or the stream's final usage event).

    Args:
        client: an official OpenAI, Anthropic, Google GenAI or Cohere (v1 or v2)
            client, sync or async.
        cache: answer identical non-streamed requests from this cache within its TTL
            (opt-in); the ledger records such calls as cached, with the money saved.
        routing: send requests for expensive models to cheaper ones when a budget
            runs low (opt-in); the ledger records both model names.
    """
    provider = _provider_of(client)
    if provider is None:
        raise InvalidArgumentError(
            "instrument() takes an official OpenAI, Anthropic, Google GenAI or Cohere client",
            value=type(client).__qualname__,
            hint="Pass openai.OpenAI()/AsyncOpenAI(), anthropic.Anthropic()/AsyncAnthropic(), "
            "google.genai.Client() or cohere.Client()/ClientV2() (or their Async forms); "
            "for other clients "
            "use metered_call(...) or record_llm_usage(...)",
            docs="costs.md#capturing-calls",
        )
    warm_up(provider)
    if provider in ("google", "cohere"):
        if cache is not None or routing is not None:
            raise InvalidArgumentError(
                "cache= and routing= are available for OpenAI and Anthropic clients only",
                value=type(client).__qualname__,
                hint="Instrument the client without them",
                docs="costs.md#capturing-calls",
            )
        if provider == "google":
            instrument_google(client)
        else:
            instrument_cohere(client)
        return client
    instrument_stainless(client, Meter(provider, cache, routing))
    return client
