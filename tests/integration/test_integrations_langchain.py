"""LangChain chat models under wflo budgets, against the local OpenAI-protocol server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fakes.openai_server import FakeOpenAI
from langchain_openai import ChatOpenAI

from wflo_prefect import Budget, BudgetExceeded, governed_flow
from wflo_prefect.costs import estimate_cost
from wflo_prefect.integrations.langchain import WfloCallbackHandler
from wflo_prefect.ledger import Ledger

TINY = estimate_cost("openai", "gpt-4o-mini", input_tokens=10, output_tokens=10)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def chat(server: FakeOpenAI, max_tokens: int | None = None) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini",
        base_url=f"{server.url}/v1",
        api_key="sk-test",  # type: ignore[arg-type]
        max_tokens=max_tokens,  # type: ignore[call-arg]
        max_retries=0,
        callbacks=[WfloCallbackHandler()],
    )


def test_invoke_is_settled_with_the_reported_usage(ledger: Ledger, server: FakeOpenAI) -> None:
    """One call, one entry in the flow run, priced from the usage the server sent."""

    @governed_flow(budget=Budget("1.00", scope="flow_run"))
    def ask() -> str:
        return str(chat(server).invoke("Summarise the quarterly report.").content)

    state = ask(return_state=True)
    assert state.result() == "Hello!"
    (entry,) = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert (entry.provider, entry.model) == ("openai", "gpt-4o-mini")
    assert entry.output_tokens == server.reply_tokens
    assert entry.cost_usd == estimate_cost(
        "openai", "gpt-4o-mini", input_tokens=entry.input_tokens, output_tokens=entry.output_tokens
    )
    assert entry.request_id == "chatcmpl-" + entry.request_id.split("-", 1)[1]


def test_halt_budget_refuses_before_the_call_is_sent(ledger: Ledger, server: FakeOpenAI) -> None:
    """Over budget the handler raises BudgetExceeded and LangChain sends nothing."""

    @governed_flow(budget=Budget(TINY, scope="flow_run", name="chain-run"))
    def essay() -> None:
        chat(server, max_tokens=4000).invoke("Write a long essay.")

    with pytest.raises(BudgetExceeded) as caught:
        essay()
    assert "chain-run" in str(caught.value)
    assert server.requests == []
    assert ledger.costs.entries() == []


def test_ainvoke_is_metered_and_halted(ledger: Ledger, server: FakeOpenAI) -> None:
    """Async calls: same hold, same settle, same refusal."""

    @governed_flow(budget=Budget("0.01", scope="flow_run"))
    async def both() -> str:
        ok = await chat(server).ainvoke("Hi")
        return str(ok.content)

    @governed_flow(budget=Budget(TINY, scope="flow_run"))
    async def over() -> None:
        await chat(server, max_tokens=4000).ainvoke("Write a long essay.")

    assert asyncio.run(both()) == "Hello!"
    with pytest.raises(BudgetExceeded):
        asyncio.run(over())
    assert len(server.requests) == 1
    (entry,) = ledger.costs.entries()
    assert entry.output_tokens == server.reply_tokens


def test_failed_call_releases_its_hold(ledger: Ledger, server: FakeOpenAI) -> None:
    """A provider error gives the hold back: the budget fits one call, and the retry fits."""
    server.fail_next.append(500)
    one_call = estimate_cost("openai", "gpt-4o-mini", input_tokens=10, output_tokens=100)

    @governed_flow(budget=Budget(one_call * 3 / 2, scope="flow_run"))
    def retry() -> str:
        with pytest.raises(Exception, match="fake error 500"):
            chat(server, max_tokens=100).invoke("Hi")
        return str(chat(server, max_tokens=100).invoke("Hi").content)

    assert retry() == "Hello!"
    assert len(server.requests) == 2
    (entry,) = ledger.costs.entries()
    assert entry.output_tokens == server.reply_tokens
