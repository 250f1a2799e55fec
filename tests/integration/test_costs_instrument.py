"""instrument(): the official openai and anthropic clients against local servers speaking
their wire protocols; usage settled from responses and streams, budgets held at the wire."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import anthropic
import cohere
import openai
import pytest
from fakes.anthropic_server import FakeAnthropic
from fakes.cohere_server import FakeCohere
from fakes.google_server import FakeGemini
from fakes.openai_server import FakeOpenAI
from google import genai
from google.genai import types as genai_types

from wflo_prefect import Budget, BudgetExceeded, InvalidArgumentError, UnknownModelPrice, instrument
from wflo_prefect.costs import (
    ModelRouting,
    ResponseCache,
    estimate_cost,
    flush_leases,
    record_llm_usage,
    use_budgets,
)
from wflo_prefect.ledger import Ledger

MSG = [{"role": "user", "content": "Say hello to the test suite, please."}]


@pytest.fixture
def oai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def ant_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def oai(oai_server: FakeOpenAI) -> openai.OpenAI:
    return instrument(
        openai.OpenAI(base_url=f"{oai_server.url}/v1", api_key="sk-test", max_retries=0)
    )


@pytest.fixture
def ant(ant_server: FakeAnthropic) -> anthropic.Anthropic:
    return instrument(anthropic.Anthropic(base_url=ant_server.url, api_key="k", max_retries=0))


def test_chat_completion_is_priced_from_its_usage(ledger: Ledger, oai: openai.OpenAI) -> None:
    """A chat completion's reported usage is priced and recorded with its request id."""
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50)
    assert reply.choices[0].message.content == "Hello!"
    [entry] = ledger.costs.entries()
    assert (entry.provider, entry.model) == ("openai", "gpt-4o-mini")
    assert entry.input_tokens == reply.usage.prompt_tokens  # type: ignore[union-attr]
    assert entry.output_tokens == 12
    assert entry.request_id == "req_" + entry.request_id.split("_")[1]  # type: ignore[union-attr]
    assert entry.cost_usd == estimate_cost(
        "openai", "gpt-4o-mini", input_tokens=entry.input_tokens, output_tokens=12
    )


def test_stream_asks_for_usage_and_hides_the_extra_chunk(
    ledger: Ledger, oai: openai.OpenAI, oai_server: FakeOpenAI
) -> None:
    """A stream gets include_usage added on the wire; the caller sees the chunks it asked for."""
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True, max_tokens=30
    )
    chunks = list(stream)
    assert [c.choices[0].delta.content for c in chunks] == ["", "Hel", "lo!", None]
    assert oai_server.requests[-1].body["stream_options"] == {"include_usage": True}
    [entry] = ledger.costs.entries()
    assert entry.output_tokens == 12
    assert entry.input_tokens > 0


def test_stream_that_asked_for_usage_keeps_its_usage_chunk(
    ledger: Ledger, oai: openai.OpenAI
) -> None:
    """When the caller asked for include_usage, the usage chunk is passed through."""
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert len(ledger.costs.entries()) == 1


def test_stream_closed_early_is_still_settled(ledger: Ledger, oai: openai.OpenAI) -> None:
    """A stream the caller closes after one chunk settles its hold (worst case: usage unseen)."""
    with use_budgets(Budget("1", scope="global")):
        with oai.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, max_tokens=30
        ) as stream:
            next(iter(stream))
        flush_leases()
        window = ledger.costs.windows()[0]
    assert window.reserved_usd == 0
    assert window.spent_usd == ledger.costs.entries()[0].cost_usd
    assert len(ledger.costs.entries()) == 1


def test_responses_and_embeddings_are_priced(ledger: Ledger, oai: openai.OpenAI) -> None:
    """The Responses API (plain and streamed) and embeddings are recorded with their usage."""
    assert (
        oai.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=20).output_text
        == "Hello!"
    )
    with oai.responses.create(model="gpt-4o-mini", input="hi", stream=True) as stream:
        assert [e.type for e in stream][-1] == "response.completed"
    embedded = oai.embeddings.create(model="text-embedding-3-small", input=["a b c d", "e"])
    assert len(embedded.data) == 2
    entries = ledger.costs.entries()
    assert [e.model for e in entries] == ["gpt-4o-mini", "gpt-4o-mini", "text-embedding-3-small"]
    assert [e.output_tokens for e in entries] == [12, 12, 0]
    assert all(e.cost_usd > 0 for e in entries)


def test_raw_response_and_copies_are_metered(ledger: Ledger, oai: openai.OpenAI) -> None:
    """with_raw_response and with_options() clients are metered like the original."""
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG)
    assert raw.parse().choices[0].message.content == "Hello!"
    oai.with_options(timeout=5).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert len(ledger.costs.entries()) == 2
    assert isinstance(oai, openai.OpenAI)


def test_anthropic_messages_and_stream_count_cached_input(
    ledger: Ledger, ant: anthropic.Anthropic, ant_server: FakeAnthropic
) -> None:
    """Anthropic usage (cache reads reported apart) is recorded as total input incl. cached."""
    ant_server.cache_read_tokens = 3
    reply = ant.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MSG)
    assert reply.content[0].text == "Hello!"  # type: ignore[union-attr]
    with ant.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MSG) as stream:
        assert stream.get_final_text() == "Hello!"
    plain, streamed = ledger.costs.entries()
    expected_input = reply.usage.input_tokens + 3
    for entry in (plain, streamed):
        assert (entry.input_tokens, entry.cached_input_tokens, entry.output_tokens) == (
            expected_input,
            3,
            12,
        )
        assert entry.request_id is not None
        assert entry.request_id.startswith("req_")
    assert plain.cost_usd == streamed.cost_usd > 0


async def test_async_clients_are_metered(
    ledger: Ledger, oai_server: FakeOpenAI, ant_server: FakeAnthropic
) -> None:
    """AsyncOpenAI and AsyncAnthropic calls and streams are recorded."""
    aoai = instrument(
        openai.AsyncOpenAI(base_url=f"{oai_server.url}/v1", api_key="k", max_retries=0)
    )
    aant = instrument(anthropic.AsyncAnthropic(base_url=ant_server.url, api_key="k", max_retries=0))
    await aoai.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]
    stream = await aoai.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)  # type: ignore[arg-type]
    assert len([c async for c in stream]) == 4
    await aant.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MSG)  # type: ignore[arg-type]
    async with aant.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MSG) as s:  # type: ignore[arg-type]
        assert await s.get_final_text() == "Hello!"
    assert [e.provider for e in ledger.costs.entries()] == ["openai"] * 2 + ["anthropic"] * 2


def test_budget_halts_at_the_wire(
    ledger: Ledger, oai: openai.OpenAI, oai_server: FakeOpenAI
) -> None:
    """Once a call's worst case would overrun the budget it raises; the server never sees it."""
    oai_server.reply_tokens = 1000  # answers use all of max_tokens: actual == worst case
    # The worst case counts 3 tokens for the request, and "user" and "x" one o200k token
    # each plus 4 for their framing (13); the server bills 1 + 1000.
    per_call = estimate_cost("openai", "gpt-4o", input_tokens=13, output_tokens=1000)

    def call() -> None:
        oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=1000
        )

    with use_budgets(Budget(per_call * 3, scope="global", name="wire")):
        for _ in range(3):
            call()
        with pytest.raises(BudgetExceeded) as info:
            call()
    assert len(oai_server.requests) == 3, "the refused call never reached the server"
    error = info.value
    assert error.budget_name == "wire"
    assert error.limit_usd == per_call * 3
    assert error.spent_usd + error.attempted_usd > error.limit_usd
    assert "was not sent" in str(error)


def test_failed_request_releases_its_hold(
    ledger: Ledger, oai: openai.OpenAI, oai_server: FakeOpenAI
) -> None:
    """A provider error (HTTP 500) releases the hold and records no cost."""
    oai_server.fail_next = [500]
    with use_budgets(Budget("1", scope="global")), pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    flush_leases()
    [window] = ledger.costs.windows()
    assert window.reserved_usd == 0
    assert window.spent_usd == 0
    assert ledger.costs.entries() == []


def test_unknown_model_is_refused_before_sending(
    oai: openai.OpenAI, oai_server: FakeOpenAI, ledger: Ledger
) -> None:
    """A model with no price raises UnknownModelPrice and the request is not sent."""
    with pytest.raises(UnknownModelPrice, match="my-private-model"):
        oai.chat.completions.create(model="my-private-model", messages=MSG)
    assert oai_server.requests == []


def test_instrument_refuses_other_objects() -> None:
    """instrument() on something that is not a supported client says what it takes."""
    with pytest.raises(InvalidArgumentError, match="OpenAI, Anthropic, Google GenAI or Cohere"):
        instrument(object())


def test_settled_total_never_exceeds_reservations(ledger: Ledger, oai: openai.OpenAI) -> None:
    """Every settled call leaves nothing reserved, and spent equals the sum of its entries."""
    with use_budgets(Budget(Decimal("0.5"), scope="global")):
        for _ in range(3):
            oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=100)
    flush_leases()
    [window] = ledger.costs.windows()
    assert window.reserved_usd == 0
    assert window.spent_usd == sum(e.cost_usd for e in ledger.costs.entries())


def test_cache_answers_identical_requests_and_records_savings(
    ledger: Ledger, oai_server: FakeOpenAI
) -> None:
    """With a cache, an identical request within the TTL is not sent; it is recorded as saved."""
    now = [1000.0]
    cache = ResponseCache(ttl_seconds=60, clock=lambda: now[0])
    client = instrument(
        openai.OpenAI(base_url=f"{oai_server.url}/v1", api_key="k", max_retries=0), cache=cache
    )
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50)
    other = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=51)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert isinstance(second, type(first))
    assert len(oai_server.requests) == 2, "the identical request was answered from the cache"
    paid, cached, _ = ledger.costs.entries()
    assert cached.cached
    assert cached.cost_usd == 0
    assert cached.saved_usd == paid.cost_usd > 0
    assert other is not None
    now[0] += 61  # past the TTL: sent again
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50)
    assert len(oai_server.requests) == 3


def test_routing_sends_to_the_cheaper_model_when_the_budget_runs_low(
    ledger: Ledger, oai_server: FakeOpenAI
) -> None:
    """Below the remaining share, gpt-4o requests go to gpt-4o-mini; both names are recorded."""
    routing = ModelRouting(routes={"gpt-4o": "gpt-4o-mini"}, below_remaining=0.25)
    client = instrument(
        openai.OpenAI(base_url=f"{oai_server.url}/v1", api_key="k", max_retries=0),
        routing=routing,
    )
    budget = Budget("1.00", scope="global", name="routed")
    with use_budgets(budget):
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=20)
        record_llm_usage("openai", "gpt-4o", 300_000, 0, budgets=[budget])  # $0.75 spent
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=20)
    assert [r.body["model"] for r in oai_server.requests] == ["gpt-4o", "gpt-4o-mini"]
    routed = ledger.costs.entries()[-1]
    assert routed.model == "gpt-4o-mini"
    assert routed.requested_model == "gpt-4o"


@pytest.fixture
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server  # type: ignore[misc]


async def test_google_genai_calls_and_streams_are_metered(
    ledger: Ledger, gemini_server: FakeGemini
) -> None:
    """google.genai generate_content and its stream, sync and async, priced from usageMetadata."""
    client = instrument(
        genai.Client(api_key="k", http_options=genai_types.HttpOptions(base_url=gemini_server.url))
    )
    config = genai_types.GenerateContentConfig(max_output_tokens=100)
    reply = client.models.generate_content(model="gemini-2.0-flash", contents="hi", config=config)
    assert reply.text == "Hello!"
    streamed = client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
    assert "".join(c.text or "" for c in streamed) == "Hello!"
    await client.aio.models.generate_content(model="gemini-2.0-flash", contents="hi")
    chunks = [
        c
        async for c in await client.aio.models.generate_content_stream(
            model="gemini-2.0-flash", contents="hi"
        )
    ]
    assert len(chunks) == 2
    entries = ledger.costs.entries()
    assert [(e.provider, e.model, e.output_tokens) for e in entries] == [
        ("google", "gemini-2.0-flash", 12)
    ] * 4
    assert entries[0].request_id == f"resp-{entries[0].request_id.split('-')[1]}"  # type: ignore[union-attr]
    assert entries[0].cost_usd == estimate_cost(
        "google", "gemini-2.0-flash", input_tokens=entries[0].input_tokens, output_tokens=12
    )


def test_google_genai_is_halted_at_the_wire(ledger: Ledger, gemini_server: FakeGemini) -> None:
    """A Gemini call whose worst case would overrun a halt budget is never sent."""
    client = instrument(
        genai.Client(api_key="k", http_options=genai_types.HttpOptions(base_url=gemini_server.url))
    )
    config = genai_types.GenerateContentConfig(max_output_tokens=1_000_000)
    with use_budgets(Budget("0.01", scope="global")), pytest.raises(BudgetExceeded):
        client.models.generate_content(model="gemini-2.0-flash", contents="hi", config=config)
    assert gemini_server.requests == []


@pytest.fixture
def cohere_server() -> Iterator[FakeCohere]:
    with FakeCohere() as server:
        yield server  # type: ignore[misc]


async def test_cohere_chat_and_streams_are_metered(
    ledger: Ledger, cohere_server: FakeCohere
) -> None:
    """cohere ClientV2/AsyncClientV2 chat and chat_stream are priced from billed units."""
    client = instrument(cohere.ClientV2(api_key="k", base_url=cohere_server.url))
    reply = client.chat(model="command-r", messages=MSG, max_tokens=50)  # type: ignore[arg-type]
    assert reply.message.content[0].text == "Hello!"  # type: ignore[index,union-attr]
    events = [e.type for e in client.chat_stream(model="command-r", messages=MSG)]  # type: ignore[arg-type]
    assert events[-1] == "message-end"
    aclient = instrument(cohere.AsyncClientV2(api_key="k", base_url=cohere_server.url))
    await aclient.chat(model="command-r", messages=MSG)  # type: ignore[arg-type]
    streamed = [e async for e in aclient.chat_stream(model="command-r", messages=MSG)]  # type: ignore[arg-type]
    assert len(streamed) == 5
    entries = ledger.costs.entries()
    assert [(e.provider, e.model, e.output_tokens) for e in entries] == [
        ("cohere", "command-r", 12)
    ] * 4
    billed_input = entries[0].input_tokens
    assert entries[0].cost_usd == estimate_cost(
        "cohere", "command-r", input_tokens=billed_input, output_tokens=12
    )
    assert entries[0].request_id is not None


def test_cohere_is_halted_at_the_wire(ledger: Ledger, cohere_server: FakeCohere) -> None:
    """A Cohere chat whose worst case would overrun a halt budget is never sent."""
    client = instrument(cohere.ClientV2(api_key="k", base_url=cohere_server.url))
    with use_budgets(Budget("0.0001", scope="global")), pytest.raises(BudgetExceeded):
        client.chat(model="command-r-plus", messages=MSG, max_tokens=100_000)  # type: ignore[arg-type]
    assert cohere_server.requests == []
