"""The OpenAI Agents SDK with an instrumented client: no integration needed.

``set_default_openai_client(instrument(AsyncOpenAI(...)))`` makes every model call
of every agent go through wflo's metering (docs/integrations/openai-agents.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest
from agents import Agent, Runner, set_default_openai_client, set_tracing_disabled
from fakes.openai_server import FakeOpenAI

from wflo_prefect import Budget, BudgetExceeded, governed_flow, instrument
from wflo_prefect.costs import estimate_cost
from wflo_prefect.ledger import Ledger


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        set_tracing_disabled(True)  # the SDK's trace export would go to OpenAI
        client = openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
        set_default_openai_client(instrument(client), use_for_tracing=False)
        yield fake  # type: ignore[misc]


def test_agent_runs_are_metered_through_the_instrumented_client(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """Runner.run's model call (Responses API) is priced and attributed to the flow run."""
    agent = Agent(name="assistant", instructions="Be brief.", model="gpt-4o-mini")

    @governed_flow(budget=Budget("1.00", scope="flow_run"))
    async def ask() -> str:
        result = await Runner.run(agent, "Say hello.")
        return str(result.final_output)

    state = asyncio.run(ask(return_state=True))
    assert state.result() == "Hello!"
    assert server.paths() == ["/v1/responses"]
    (entry,) = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert (entry.provider, entry.model) == ("openai", "gpt-4o-mini")
    assert entry.output_tokens == server.reply_tokens


def test_agent_run_is_halted_before_sending_over_budget(ledger: Ledger, server: FakeOpenAI) -> None:
    """A halt budget stops the agent with BudgetExceeded; nothing reaches the server."""
    from agents import ModelSettings

    tiny = estimate_cost("openai", "gpt-4o-mini", input_tokens=10, output_tokens=10)
    agent = Agent(
        name="writer",
        model="gpt-4o-mini",
        model_settings=ModelSettings(max_tokens=4000),
    )

    @governed_flow(budget=Budget(tiny, scope="flow_run"))
    async def write() -> None:
        await Runner.run(agent, "Write a long essay.")

    with pytest.raises(BudgetExceeded):
        asyncio.run(write())
    assert server.requests == []
