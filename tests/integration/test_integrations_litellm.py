"""LiteLLM's SDK under wflo budgets, against the local OpenAI-protocol server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

# LiteLLM fetches its own price list from the network when imported; use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from fakes.openai_server import FakeOpenAI

from wflo_prefect import Budget, BudgetExceeded, governed_flow
from wflo_prefect.costs import estimate_cost, use_budgets
from wflo_prefect.integrations import litellm as wlitellm
from wflo_prefect.ledger import Ledger

MSG = [{"role": "user", "content": "Summarise the quarterly report in one line."}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def test_completion_is_priced_from_the_response_usage(ledger: Ledger, server: FakeOpenAI) -> None:
    """The usage the server reported is settled, attributed to the flow run."""

    @governed_flow(budget=Budget("1.00", scope="flow_run"))
    def ask(base: str) -> str:
        response = wlitellm.completion(
            model="openai/gpt-4o-mini", messages=MSG, api_base=base, api_key="sk-test"
        )
        return str(response.choices[0].message.content)

    state = ask(f"{server.url}/v1", return_state=True)
    assert state.result() == "Hello!"
    (entry,) = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert (entry.provider, entry.model) == ("openai", "gpt-4o-mini")
    assert entry.output_tokens == server.reply_tokens
    assert entry.input_tokens > 0
    assert entry.cost_usd == estimate_cost(
        "openai", "gpt-4o-mini", input_tokens=entry.input_tokens, output_tokens=entry.output_tokens
    )
    assert entry.request_id
    assert entry.request_id.startswith("chatcmpl-")


TINY = estimate_cost("openai", "gpt-4o-mini", input_tokens=10, output_tokens=10)


def test_halt_budget_refuses_before_the_request_is_sent(ledger: Ledger, server: FakeOpenAI) -> None:
    """Over a halt budget: BudgetExceeded, and the server never hears of it."""

    @governed_flow(budget=Budget(TINY, scope="flow_run", name="litellm-run"))
    def essay(base: str) -> None:
        wlitellm.completion(
            model="openai/gpt-4o-mini", messages=MSG, max_tokens=4000, api_base=base, api_key="k"
        )

    with pytest.raises(BudgetExceeded) as caught:
        essay(f"{server.url}/v1")
    assert "litellm-run" in str(caught.value)
    assert server.requests == []
    assert ledger.costs.entries() == []


def test_acompletion_and_its_halt(ledger: Ledger, server: FakeOpenAI) -> None:
    """The async call is metered the same way, and halted the same way."""

    @governed_flow(budget=Budget("0.01", scope="flow_run"))
    async def both(base: str) -> str:
        ok = await wlitellm.acompletion(
            model="openai/gpt-4o-mini", messages=MSG, api_base=base, api_key="sk-test"
        )
        with use_budgets(Budget(TINY, scope="flow_run")), pytest.raises(BudgetExceeded):
            await wlitellm.acompletion(
                model="openai/gpt-4o-mini",
                messages=MSG,
                max_tokens=4000,
                api_base=base,
                api_key="sk-test",
            )
        return str(ok.choices[0].message.content)

    assert asyncio.run(both(f"{server.url}/v1")) == "Hello!"
    assert len(server.requests) == 1
    (entry,) = ledger.costs.entries()
    assert entry.output_tokens == server.reply_tokens


def test_streamed_completion_is_settled_with_its_final_usage(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """wflo asks for the stream's usage chunk and settles it when the stream ends."""
    stream = wlitellm.completion(
        model="openai/gpt-4o-mini",
        messages=MSG,
        stream=True,
        api_base=f"{server.url}/v1",
        api_key="sk-test",
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello!"
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    (entry,) = ledger.costs.entries()
    assert entry.output_tokens == server.reply_tokens
