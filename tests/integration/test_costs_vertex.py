"""Vertex AI calls (google-genai ``Client(vertexai=True)``): recorded under the provider
``google-vertex`` and priced at Vertex's list prices where they differ from the
Gemini API's; through the real client against the fake Google server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm: no network

import pytest
from fakes.google_server import FakeGemini
from fakes.llm_http import count_tokens
from google import genai
from google.genai import types as genai_types
from google.oauth2.credentials import Credentials
from langchain_core.language_models import LangSmithParams
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from pydantic_ai import Agent
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.providers.google import GoogleProvider
from typer.testing import CliRunner

from wflo_prefect import Budget, BudgetExceeded, instrument
from wflo_prefect.cli import app
from wflo_prefect.costs import (
    CustomPrice,
    clear_custom_prices,
    estimate_cost,
    flush_leases,
    register_price,
    use_budgets,
)
from wflo_prefect.costs.blocks import WfloCustomPrice
from wflo_prefect.costs.compare import Usage, compare_costs
from wflo_prefect.costs.prices import find_price
from wflo_prefect.integrations.langchain import WfloCallbackHandler
from wflo_prefect.integrations.litellm import price_provider
from wflo_prefect.integrations.pydantic_ai import WfloModel
from wflo_prefect.ledger import Ledger

PROMPT = "Summarise the quarterly report in three bullet points, please."
MILLION = Decimal(1_000_000)
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def server() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _no_custom_prices() -> Iterator[None]:
    clear_custom_prices()
    yield
    clear_custom_prices()


def _vertex(server: FakeGemini) -> genai.Client:
    """A Vertex AI client for a project and region (static OAuth token, no login)."""
    return instrument(  # type: ignore[no-any-return]
        genai.Client(
            vertexai=True,
            project="my-project",
            location="us-central1",
            credentials=Credentials(token="t"),  # type: ignore[no-untyped-call]
            http_options=genai_types.HttpOptions(base_url=server.url),
        )
    )


def _gemini_api(server: FakeGemini) -> genai.Client:
    options = genai_types.HttpOptions(base_url=server.url)
    return instrument(genai.Client(api_key="k", http_options=options))  # type: ignore[no-any-return]


def _cost(input_tokens: int, output_tokens: int, per_input: str, per_output: str) -> Decimal:
    return (input_tokens * Decimal(per_input) + output_tokens * Decimal(per_output)) / MILLION


def test_vertex_gemini_2_0_flash_is_recorded_under_google_vertex_at_vertex_prices(
    ledger: Ledger, server: FakeGemini
) -> None:
    """The same gemini-2.0-flash call: on Vertex AI $0.15 / $0.60 per million tokens
    under ``google-vertex``; on the Gemini API $0.10 / $0.40 under ``google``. The
    -001 version Vertex reports is priced the same."""
    vertex_client, api_client = _vertex(server), _gemini_api(server)
    vertex_client.models.generate_content(model="gemini-2.0-flash", contents=PROMPT)
    api_client.models.generate_content(model="gemini-2.0-flash", contents=PROMPT)
    vertex_client.models.generate_content(model="gemini-2.0-flash-001", contents=PROMPT)
    paths = server.paths()
    assert paths[0].endswith(
        "/projects/my-project/locations/us-central1/publishers/google/models/"
        "gemini-2.0-flash:generateContent"
    )
    assert paths[1].endswith("/models/gemini-2.0-flash:generateContent")
    vertex, api, dated = ledger.costs.entries()
    billed = count_tokens([[{"parts": [{"text": PROMPT}], "role": "user"}], {}])
    assert (vertex.input_tokens, vertex.output_tokens) == (billed, server.reply_tokens)
    assert (api.input_tokens, api.output_tokens) == (billed, server.reply_tokens)
    assert (vertex.provider, vertex.model) == ("google-vertex", "gemini-2.0-flash")
    assert vertex.cost_usd == _cost(billed, server.reply_tokens, "0.15", "0.60")
    assert (api.provider, api.model) == ("google", "gemini-2.0-flash")
    assert api.cost_usd == _cost(billed, server.reply_tokens, "0.10", "0.40")
    assert (dated.provider, dated.model) == ("google-vertex", "gemini-2.0-flash-001")
    assert dated.cost_usd == vertex.cost_usd
    assert estimate_cost(
        "google-vertex", "gemini-2.0-flash", input_tokens=billed, output_tokens=12
    ) == (vertex.cost_usd)
    by_model = runner.invoke(app, ["costs", "report", "--by", "model"])
    assert by_model.exit_code == 0, by_model.output
    assert "google-vertex/gemini-2.0-flash" in by_model.output
    assert "google/gemini-2.0-flash" in by_model.output


def test_vertex_models_priced_alike_fall_back_to_the_gemini_api_list(
    ledger: Ledger, server: FakeGemini
) -> None:
    """gemini-2.5-flash, gemini-2.5-pro and gemini-2.0-flash-lite have the same list
    prices on Vertex AI: recorded under google-vertex at the Gemini API's price."""
    client = _vertex(server)
    for model in ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash-lite"):
        client.models.generate_content(model=model, contents=PROMPT)
    flash, pro, lite = ledger.costs.entries()
    billed = count_tokens([[{"parts": [{"text": PROMPT}], "role": "user"}], {}])
    assert {e.provider for e in (flash, pro, lite)} == {"google-vertex"}
    assert flash.cost_usd == _cost(billed, 12, "0.30", "2.50")
    assert pro.cost_usd == _cost(billed, 12, "1.25", "10")
    assert lite.cost_usd == _cost(billed, 12, "0.075", "0.30")
    assert find_price("google-vertex", "gemini-2.5-pro").source == "genai-prices"
    assert find_price("google-vertex", "gemini-2.0-flash").source == "wflo"
    # Above 200k input tokens 2.5 Pro's higher tier applies on Vertex as on the API.
    tiered = find_price("google-vertex", "gemini-2.5-pro").cost(300_000, 1_000)
    assert tiered == find_price("google", "gemini-2.5-pro").cost(300_000, 1_000)
    assert tiered == _cost(300_000, 1_000, "2.50", "15")


def test_vertex_audio_input_is_priced_at_the_audio_rate(ledger: Ledger, server: FakeGemini) -> None:
    """Inline audio reported in promptTokensDetails: $1.00 per million on Vertex's
    gemini-2.0-flash, $0.70 on the Gemini API. The hold prices the audio at the
    audio rate too: under a halting budget of 1.5 bills, the second call is refused
    (a hold at the text rate, below half the bill, would let it through)."""
    audio = genai_types.Part.from_bytes(data=b"\x01" * 20_000, mime_type="audio/wav")
    contents: list[genai_types.PartUnionDict] = [PROMPT, audio]
    config = genai_types.GenerateContentConfig(max_output_tokens=12)
    text_tokens = count_tokens([[{"parts": [{"text": PROMPT}], "role": "user"}], {}])
    audio_tokens = 20_000 // 100  # the fake bills one token per 100 bytes
    vertex_bill = (
        text_tokens * Decimal("0.15") + audio_tokens * Decimal("1.00") + 12 * Decimal("0.60")
    ) / MILLION
    api_bill = (
        text_tokens * Decimal("0.10") + audio_tokens * Decimal("0.70") + 12 * Decimal("0.40")
    ) / MILLION
    vertex_client, api_client = _vertex(server), _gemini_api(server)
    api_client.models.generate_content(model="gemini-2.0-flash", contents=contents, config=config)
    with use_budgets(Budget(vertex_bill * Decimal("1.5"), scope="global", name="audio")):
        vertex_client.models.generate_content(
            model="gemini-2.0-flash", contents=contents, config=config
        )
        with pytest.raises(BudgetExceeded):
            vertex_client.models.generate_content(
                model="gemini-2.0-flash", contents=contents, config=config
            )
    assert len(server.requests) == 2
    flush_leases()
    api, vertex = ledger.costs.entries()
    assert api.input_tokens == vertex.input_tokens == text_tokens + audio_tokens
    assert api.cost_usd == api_bill
    assert vertex.cost_usd == vertex_bill


def test_a_custom_price_for_google_vertex_takes_precedence(
    ledger: Ledger, server: FakeGemini
) -> None:
    """A contract price registered for google-vertex (in code, or from a
    WfloCustomPrice block) wins over the shipped Vertex list; a custom price for
    ``google`` does not change Vertex calls."""
    register_price(
        CustomPrice(
            provider="google",
            model="gemini-2.0-flash",
            input_per_mtok=Decimal("9"),
            output_per_mtok=Decimal("9"),
        )
    )
    client = _vertex(server)
    client.models.generate_content(model="gemini-2.0-flash", contents=PROMPT)
    register_price(
        CustomPrice(
            provider="google-vertex",
            model="gemini-2.0-flash",
            input_per_mtok=Decimal("0.12"),
            output_per_mtok=Decimal("0.48"),
        )
    )
    client.models.generate_content(model="gemini-2.0-flash", contents=PROMPT)
    clear_custom_prices()
    block = WfloCustomPrice(
        provider="google-vertex",
        model="gemini-2.5-flash",
        input_per_mtok=Decimal("0.2"),
        output_per_mtok=Decimal("2"),
    )
    block.register()
    client.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    flush_leases()
    listed, contract, blocked = ledger.costs.entries()
    tokens = listed.input_tokens
    assert listed.cost_usd == _cost(tokens, 12, "0.15", "0.60")
    assert contract.cost_usd == _cost(tokens, 12, "0.12", "0.48")
    assert blocked.cost_usd == _cost(tokens, 12, "0.2", "2")
    assert find_price("google-vertex", "gemini-2.5-flash").source == "custom"


def test_prices_show_names_the_vertex_source() -> None:
    """`wflo costs prices show google-vertex gemini-2.0-flash` shows the shipped
    Vertex rates and where they come from."""
    shown = runner.invoke(app, ["costs", "prices", "show", "google-vertex", "gemini-2.0-flash"])
    assert shown.exit_code == 0, shown.output
    assert "$0.15/input MTok, $0.60/output MTok" in shown.output
    assert "$1.00/input audio MTok" in shown.output
    assert "Vertex AI generative AI pricing page, 2025" in shown.output
    fallback = runner.invoke(app, ["costs", "prices", "show", "google-vertex", "gemini-2.5-flash"])
    assert fallback.exit_code == 0, fallback.output
    assert "$0.3/input MTok" in fallback.output


def test_pydantic_ai_google_models_are_priced_by_their_clients_endpoint(
    ledger: Ledger, server: FakeGemini
) -> None:
    """pydantic-ai names a Google model ``google`` whichever endpoint its client uses;
    WfloModel prices a Vertex AI client's requests as google-vertex."""
    vertex_client = genai.Client(
        vertexai=True,
        project="my-project",
        location="us-central1",
        credentials=Credentials(token="t"),  # type: ignore[no-untyped-call]
        http_options=genai_types.HttpOptions(base_url=server.url),
    )
    api_client = genai.Client(
        api_key="k", http_options=genai_types.HttpOptions(base_url=server.url)
    )
    for client in (vertex_client, api_client):
        model = WfloModel(GoogleModel("gemini-2.0-flash", provider=GoogleProvider(client=client)))
        assert Agent(model).run_sync(PROMPT).output == "Hello!"
    vertex, api = ledger.costs.entries()
    assert (vertex.provider, api.provider) == ("google-vertex", "google")
    assert vertex.cost_usd == _cost(vertex.input_tokens, 12, "0.15", "0.60")
    assert api.cost_usd == _cost(api.input_tokens, 12, "0.10", "0.40")


class _VertexChat(GenericFakeChatModel):
    """A chat model reporting LangChain's Vertex AI provider name, with usage."""

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider="google_vertexai", ls_model_name="gemini-2.0-flash")


def test_langchain_and_litellm_vertex_names_are_priced_as_google_vertex(ledger: Ledger) -> None:
    """LangChain's ``google_vertexai`` and LiteLLM's ``vertex_ai`` providers are
    priced as google-vertex; their Gemini API names as google."""
    usage = UsageMetadata(input_tokens=1_000, output_tokens=100, total_tokens=1_100)
    chat = _VertexChat(
        messages=iter([AIMessage(content="Hello!", usage_metadata=usage)]),
        callbacks=[WfloCallbackHandler()],
    )
    chat.invoke(PROMPT)
    [entry] = ledger.costs.entries()
    assert (entry.provider, entry.model) == ("google-vertex", "gemini-2.0-flash")
    assert entry.cost_usd == _cost(1_000, 100, "0.15", "0.60")
    assert price_provider("vertex_ai/gemini-2.0-flash") == ("google-vertex", "gemini-2.0-flash")
    assert price_provider("gemini/gemini-2.0-flash") == ("google", "gemini-2.0-flash")


def test_compare_prices_a_vertex_model_in_its_gemini_class() -> None:
    """`wflo costs compare google-vertex/gemini-2.0-flash` finds its class (small), and
    lists the same model on the Gemini API beside it at the API's price."""
    result = compare_costs(
        "google-vertex",
        "gemini-2.0-flash",
        [Usage(input_tokens=1_000_000, output_tokens=1_000_000)],
    )
    assert result.comparable_class == "small"
    costs = {(r.provider, r.model): (r.cost_usd, r.source, r.yours) for r in result.rows}
    assert costs[("google-vertex", "gemini-2.0-flash")] == (Decimal("0.75"), "wflo", True)
    assert costs[("google", "gemini-2.0-flash")] == (Decimal("0.5"), "genai-prices", False)
    shown = runner.invoke(
        app,
        [
            "costs",
            "compare",
            "google-vertex/gemini-2.0-flash",
            "--input-tokens",
            "1000000",
            "--output-tokens",
            "1000000",
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert "priced on the small class" in shown.output


def test_audio_with_cached_context_is_priced_on_both_endpoints(
    ledger: Ledger, server: FakeGemini
) -> None:
    """A response reporting cached tokens and audio (cacheTokensDetails: text only)
    was refused by genai-prices' calculation; the cached text is billed at the cache
    rate ($0.025 on the Gemini API; Vertex's shipped entry has no cache rate, so its
    input rate), the audio at the audio rate."""
    server.cached_text_tokens = 5
    audio = genai_types.Part.from_bytes(data=b"\x01" * 20_000, mime_type="audio/wav")
    contents: list[genai_types.PartUnionDict] = [PROMPT, audio]
    vertex_client, api_client = _vertex(server), _gemini_api(server)
    api_client.models.generate_content(model="gemini-2.0-flash", contents=contents)
    vertex_client.models.generate_content(model="gemini-2.0-flash", contents=contents)
    api, vertex = ledger.costs.entries()
    text = count_tokens([[{"parts": [{"text": PROMPT}], "role": "user"}], {}])
    assert api.cached_input_tokens == vertex.cached_input_tokens == 5
    assert (
        api.cost_usd
        == (
            (text - 5) * Decimal("0.10")
            + 5 * Decimal("0.025")
            + 200 * Decimal("0.70")
            + 12 * Decimal("0.40")
        )
        / MILLION
    )
    assert (
        vertex.cost_usd
        == (text * Decimal("0.15") + 200 * Decimal("1.00") + 12 * Decimal("0.60")) / MILLION
    )
