"""instrument() on the Cohere v1 client, Cohere and Gemini embeddings and Gemini
streams: the official client libraries against local servers speaking their wire
protocols; usage settled from the responses, budgets held before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import cohere
import pytest
from fakes.cohere_server import FakeCohere
from fakes.google_server import FakeGemini
from fakes.llm_http import count_tokens
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from wflo_prefect import Budget, BudgetExceeded, InvalidArgumentError, instrument
from wflo_prefect.costs import (
    CustomPrice,
    clear_custom_prices,
    estimate_cost,
    flush_leases,
    register_price,
    use_budgets,
)
from wflo_prefect.ledger import Ledger

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Budgets hold before the wire."]


@pytest.fixture
def cohere_server() -> Iterator[FakeCohere]:
    with FakeCohere() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server  # type: ignore[misc]


def _settled(ledger: Ledger) -> tuple[Decimal, Decimal]:
    """(reserved, spent) of the global budget window, after the leases are flushed."""
    flush_leases()
    window = ledger.costs.windows()[0]
    return window.reserved_usd, window.spent_usd


async def test_cohere_v1_chat_and_stream_are_metered(
    ledger: Ledger, cohere_server: FakeCohere
) -> None:
    """cohere.Client (v1) chat and chat_stream, sync and async, priced from meta.billed_units."""
    client = instrument(cohere.Client(api_key="k", base_url=cohere_server.url))
    reply = client.chat(model="command-r", message="Say hello, please.", max_tokens=50)
    assert reply.text == "Hello!"
    events = [e.event_type for e in client.chat_stream(model="command-r", message="Hi there.")]
    assert events == ["stream-start", "text-generation", "text-generation", "stream-end"]
    aclient = instrument(cohere.AsyncClient(api_key="k", base_url=cohere_server.url))
    await aclient.chat(model="command-r", message="Say hello, please.")
    streamed = [e async for e in aclient.chat_stream(model="command-r", message="Hi there.")]
    assert len(streamed) == 4
    entries = ledger.costs.entries()
    billed = [count_tokens(m) for m in ("Say hello, please.", "Hi there.")] * 2
    assert [(e.provider, e.model, e.input_tokens, e.output_tokens) for e in entries] == [
        ("cohere", "command-r", tokens, 12) for tokens in billed
    ]
    assert entries[0].request_id == reply.response_id
    assert all((e.request_id or "").startswith("resp-") for e in entries)  # stream-end's id
    assert entries[0].cost_usd == estimate_cost(
        "cohere", "command-r", input_tokens=billed[0], output_tokens=12
    )
    assert entries[0].cost_usd > 0


def test_cohere_streams_stopped_early_settle_their_hold(
    ledger: Ledger, cohere_server: FakeCohere
) -> None:
    """A v1 or v2 stream left after its first event was sent and is billed: it is settled
    (on the usage read so far, else its worst case), not released, and holds nothing."""
    v1 = instrument(cohere.Client(api_key="k", base_url=cohere_server.url))
    v2 = instrument(cohere.ClientV2(api_key="k", base_url=cohere_server.url))
    with use_budgets(Budget("1", scope="global")):
        stream = v1.chat_stream(model="command-r", message="Hi there.", max_tokens=40)
        assert next(stream).event_type == "stream-start"
        stream.close()  # type: ignore[attr-defined]
        messages = [{"role": "user", "content": "Hi there."}]
        stream2 = v2.chat_stream(model="command-r", messages=messages, max_tokens=40)  # type: ignore[arg-type]
        assert next(stream2).type == "message-start"
        stream2.close()  # type: ignore[attr-defined]
        reserved, spent = _settled(ledger)
    entries = ledger.costs.entries()
    assert len(entries) == 2
    assert reserved == 0
    assert spent == sum(e.cost_usd for e in entries) > 0


def test_cohere_v1_is_halted_at_the_wire(ledger: Ledger, cohere_server: FakeCohere) -> None:
    """A v1 chat, stream or embed (and a v2 embed) whose worst case would overrun a halt
    budget is never sent."""
    client = instrument(cohere.Client(api_key="k", base_url=cohere_server.url))
    with use_budgets(Budget("0.0001", scope="global")):
        with pytest.raises(BudgetExceeded):
            client.chat(model="command-r-plus", message="Hi", max_tokens=100_000)
        with pytest.raises(BudgetExceeded):
            list(client.chat_stream(model="command-r-plus", message="Hi", max_tokens=100_000))
        with pytest.raises(BudgetExceeded):  # sent from cohere's thread pool, still governed
            client.embed(model="embed-english-v3.0", texts=["x" * 4000] * 300)
        v2 = instrument(cohere.ClientV2(api_key="k", base_url=cohere_server.url))
        with pytest.raises(BudgetExceeded):
            v2.embed(model="embed-v4.0", texts=["x" * 4000] * 96, input_type="search_document")
    assert cohere_server.requests == []


def test_cohere_call_without_a_model_is_refused(cohere_server: FakeCohere) -> None:
    """v1 lets Cohere pick a default model wflo cannot price: refused before sending."""
    client = instrument(cohere.Client(api_key="k", base_url=cohere_server.url))
    with pytest.raises(InvalidArgumentError, match="must name its model"):
        client.chat(message="Hi")
    assert cohere_server.requests == []


async def test_cohere_embeddings_are_metered(ledger: Ledger, cohere_server: FakeCohere) -> None:
    """embed on v1 (batched in cohere's thread pool, or gathered) and v2, sync and async, priced
    from meta.billed_units at the embed model's input rate."""
    v1 = instrument(cohere.Client(api_key="k", base_url=cohere_server.url))
    v1.embed(model="embed-english-v3.0", texts=TEXTS, input_type="search_document")
    av1 = instrument(cohere.AsyncClient(api_key="k", base_url=cohere_server.url))
    await av1.embed(model="embed-english-v3.0", texts=TEXTS, input_type="search_document")
    v2 = instrument(cohere.ClientV2(api_key="k", base_url=cohere_server.url))
    v2.embed(model="embed-v4.0", texts=TEXTS, input_type="search_query", embedding_types=["float"])
    av2 = instrument(cohere.AsyncClientV2(api_key="k", base_url=cohere_server.url))
    await av2.embed(
        model="embed-v4.0", texts=TEXTS, input_type="search_query", embedding_types=["float"]
    )
    billed = sum(count_tokens(t) for t in TEXTS)
    entries = ledger.costs.entries()
    assert [(e.model, e.input_tokens, e.output_tokens) for e in entries] == [
        ("embed-english-v3.0", billed, 0),
        ("embed-english-v3.0", billed, 0),
        ("embed-v4.0", billed, 0),
        ("embed-v4.0", billed, 0),
    ]
    # Embed 3 at $0.10, Embed 4 at $0.12 per million tokens.
    assert entries[0].cost_usd == Decimal("0.10") * billed / 1_000_000
    assert entries[2].cost_usd == Decimal("0.12") * billed / 1_000_000
    assert entries[0].request_id is not None


def test_cohere_v1_embed_batches_are_each_metered(
    ledger: Ledger, cohere_server: FakeCohere
) -> None:
    """cohere.Client.embed splits 100 texts into batches of 96 sent from threads: one
    entry per request, attributed to the caller's budget, nothing left held."""
    client = instrument(cohere.Client(api_key="k", base_url=cohere_server.url))
    texts = [f"document number {i}" for i in range(100)]
    with use_budgets(Budget("1", scope="global")):
        client.embed(model="embed-english-v3.0", texts=texts, input_type="search_document")
        reserved, spent = _settled(ledger)
    entries = ledger.costs.entries()
    assert len(cohere_server.requests) == len(entries) == 2
    assert sum(e.input_tokens for e in entries) == sum(count_tokens(t) for t in texts)
    assert reserved == 0
    assert spent == sum(e.cost_usd for e in entries)


def _gemini(server: FakeGemini, **kwargs: object) -> genai.Client:
    options = genai_types.HttpOptions(base_url=server.url)
    return instrument(genai.Client(api_key="k", http_options=options, **kwargs))  # type: ignore[arg-type]


async def test_gemini_embeddings_are_metered(ledger: Ledger, gemini_server: FakeGemini) -> None:
    """embed_content, sync and async: the Gemini API reports no counts, so the hold's
    offline count (never below the billed tokens) is recorded; reported counts win."""
    client = _gemini(gemini_server)
    client.models.embed_content(model="gemini-embedding-001", contents=TEXTS)
    await client.aio.models.embed_content(model="gemini-embedding-001", contents=TEXTS)
    gemini_server.embed_usage = True
    client.models.embed_content(model="gemini-embedding-001", contents=TEXTS)
    billed = sum(count_tokens({"parts": [{"text": t}]}) for t in TEXTS)
    first, second, reported = ledger.costs.entries()
    assert first.model == "gemini-embedding-001"
    assert first.output_tokens == 0
    assert first.input_tokens == second.input_tokens >= billed
    assert reported.input_tokens == billed
    assert reported.cost_usd == Decimal("0.15") * billed / 1_000_000  # $0.15 / M tokens
    assert first.cost_usd == estimate_cost(
        "google", "gemini-embedding-001", input_tokens=first.input_tokens
    )


def test_vertex_embeddings_are_metered_from_their_statistics(
    ledger: Ledger, gemini_server: FakeGemini
) -> None:
    """On Vertex, text-embedding models are called with ``:predict``; each embedding's
    statistics.token_count is billed under google-vertex (the model priced here by a
    custom price for that provider)."""
    client = _gemini(gemini_server, vertexai=True)
    price = CustomPrice(
        provider="google-vertex",
        model="text-embedding-005",
        input_per_mtok=Decimal("0.1"),
        output_per_mtok=Decimal(0),
    )
    register_price(price)
    try:
        client.models.embed_content(model="text-embedding-005", contents=TEXTS)
    finally:
        clear_custom_prices()
    assert gemini_server.paths()[-1].endswith("text-embedding-005:predict")
    [entry] = ledger.costs.entries()
    assert entry.provider == "google-vertex"
    assert entry.input_tokens == sum(count_tokens(t) for t in TEXTS)
    assert entry.cost_usd == Decimal("0.1") * entry.input_tokens / 1_000_000


def test_gemini_embeddings_are_halted_at_the_wire(
    ledger: Ledger, gemini_server: FakeGemini
) -> None:
    """An embedding batch whose input would overrun a halt budget is never sent."""
    client = _gemini(gemini_server)
    with use_budgets(Budget("0.0001", scope="global")), pytest.raises(BudgetExceeded):
        client.models.embed_content(model="gemini-embedding-001", contents=["x" * 8000] * 100)
    assert gemini_server.requests == []


def test_gemini_stream_is_halted_at_the_wire(ledger: Ledger, gemini_server: FakeGemini) -> None:
    """A stream whose worst case would overrun a halt budget is refused, sync and async."""
    client = _gemini(gemini_server)
    config = genai_types.GenerateContentConfig(max_output_tokens=1_000_000)
    with use_budgets(Budget("0.01", scope="global")):
        with pytest.raises(BudgetExceeded):
            list(
                client.models.generate_content_stream(
                    model="gemini-2.5-pro", contents="hi", config=config
                )
            )

        async def astream() -> None:
            stream = await client.aio.models.generate_content_stream(
                model="gemini-2.5-pro", contents="hi", config=config
            )
            async for _ in stream:
                pass

        with pytest.raises(BudgetExceeded):
            asyncio.run(astream())
    assert gemini_server.requests == []


def test_gemini_stream_settles_from_its_last_chunk(
    ledger: Ledger, gemini_server: FakeGemini
) -> None:
    """A complete stream is settled on the last chunk's usageMetadata, its hold released."""
    client = _gemini(gemini_server)
    config = genai_types.GenerateContentConfig(max_output_tokens=500)
    with use_budgets(Budget("1", scope="global")):
        chunks = list(
            client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Say hello.", config=config
            )
        )
        reserved, spent = _settled(ledger)
    [entry] = ledger.costs.entries()
    last = chunks[-1].usage_metadata
    assert last is not None
    assert (entry.input_tokens, entry.output_tokens) == (
        last.prompt_token_count,
        last.candidates_token_count,
    )
    assert entry.output_tokens == 12  # the last chunk's, not the first (6)
    assert reserved == 0
    assert spent == entry.cost_usd


async def _until_recorded(ledger: Ledger, count: int) -> None:
    """Wait for ``count`` entries: the inner async generators are closed by the event loop."""
    for _ in range(500):
        if len(ledger.costs.entries()) == count:
            return
        await asyncio.sleep(0.02)


async def test_gemini_stream_stopped_early_settles_and_releases(
    ledger: Ledger, gemini_server: FakeGemini
) -> None:
    """A stream the caller leaves after its first chunk (sync or async) was sent and
    billed: charged its worst case, nothing left held; none is lost."""
    client = _gemini(gemini_server)
    config = genai_types.GenerateContentConfig(max_output_tokens=500)
    with use_budgets(Budget("1", scope="global")):
        stream = client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Say hello.", config=config
        )
        next(stream)
        stream.close()  # type: ignore[attr-defined]
        astream = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Say hello.", config=config
        )
        await astream.__anext__()
        await astream.aclose()  # type: ignore[attr-defined]
        await _until_recorded(ledger, 2)
        reserved, spent = _settled(ledger)
    entries = ledger.costs.entries()
    held_output = estimate_cost("google", "gemini-2.5-flash", input_tokens=0, output_tokens=500)
    assert len(entries) == 2
    assert all(e.cost_usd > held_output for e in entries)  # all 500 held, not the 6 seen
    assert entries[0].cost_usd == entries[1].cost_usd
    assert reserved == 0
    assert spent == sum(e.cost_usd for e in entries)


async def test_gemini_stream_that_errors_is_charged_its_hold(
    ledger: Ledger, gemini_server: FakeGemini
) -> None:
    """A stream failing after its first chunk (an error event) raises to the caller and is
    charged its hold, sync and async: nothing lost, nothing left held."""
    gemini_server.stream_error = True
    client = _gemini(gemini_server)
    config = genai_types.GenerateContentConfig(max_output_tokens=500)
    with use_budgets(Budget("1", scope="global")):
        with pytest.raises(genai_errors.APIError):
            for _ in client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Say hello.", config=config
            ):
                pass
        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Say hello.", config=config
        )
        with pytest.raises(genai_errors.APIError):
            async for _ in stream:
                pass
        await _until_recorded(ledger, 2)
        reserved, spent = _settled(ledger)
    entries = ledger.costs.entries()
    held_output = estimate_cost("google", "gemini-2.5-flash", input_tokens=0, output_tokens=500)
    assert len(entries) == 2
    assert all(e.cost_usd > held_output for e in entries)
    assert reserved == 0
    assert spent == sum(e.cost_usd for e in entries)
