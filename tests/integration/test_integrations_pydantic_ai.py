"""pydantic-ai under wflo, against the local OpenAI-protocol server and the real Prefect API.

Model requests are held on wflo budgets before they are sent (a halt budget stops
the agent with nothing sent), priced from the reported usage and attributed to the
Prefect run; tools with ``requires_approval=True`` are answered through wflo gates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from approval_support import paused_request, start_flow
from fakes.openai_server import FakeOpenAI
from prefect import flow
from prefect.client.orchestration import get_client
from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.durable_exec.prefect import PrefectAgent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from wflo_prefect import ApprovalPolicy, Budget, BudgetExceeded, governed_flow
from wflo_prefect.approvals import Vote, decide
from wflo_prefect.costs import estimate_cost
from wflo_prefect.integrations.pydantic_ai import WfloModel, run_with_approvals
from wflo_prefect.ledger import Ledger


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def model(server: FakeOpenAI) -> WfloModel:
    provider = OpenAIProvider(base_url=f"{server.url}/v1", api_key="sk-test")
    return WfloModel(OpenAIChatModel("gpt-4o-mini", provider=provider))


def tool_call(name: str, args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ]
    }


def run_async(fn: Any, *args: Any) -> Any:
    return start_flow(lambda return_state: asyncio.run(fn(*args, return_state=return_state)))


def test_model_requests_are_priced_and_attributed_to_the_flow_run(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """Each request is settled with the usage the server reported, in the flow run."""
    agent = Agent(model(server), instructions="Be brief.")

    @governed_flow(budget=Budget("1.00", scope="flow_run"))
    async def brief() -> str:
        result = await agent.run("Summarise the quarterly report.")
        return str(result.output)

    state = asyncio.run(brief(return_state=True))
    assert state.result() == "Hello!"
    entries = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert len(entries) == 1 == len(server.requests)
    entry = entries[0]
    assert (entry.provider, entry.model) == ("openai", "gpt-4o-mini")
    assert entry.output_tokens == server.reply_tokens
    assert entry.request_id
    assert entry.request_id.startswith("chatcmpl-")
    assert entry.cost_usd == estimate_cost(
        "openai", "gpt-4o-mini", input_tokens=entry.input_tokens, output_tokens=entry.output_tokens
    )
    assert entry.flow_name == "brief"


def test_halt_budget_stops_the_agent_before_the_request_is_sent(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """A worst case over a halt budget raises BudgetExceeded; the server gets nothing."""
    tiny = estimate_cost("openai", "gpt-4o-mini", input_tokens=10, output_tokens=10)
    agent = Agent(model(server))

    @governed_flow(budget=Budget(tiny, scope="flow_run", name="agent-run"))
    async def spend() -> str:
        result = await agent.run("Write a long essay.", model_settings={"max_tokens": 4000})
        return str(result.output)

    with pytest.raises(BudgetExceeded) as caught:
        asyncio.run(spend())
    assert "agent-run" in str(caught.value)
    assert server.requests == []
    assert ledger.costs.entries() == []


def publishing_agent(server: FakeOpenAI, published: list[str]) -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(
        model(server), output_type=[str, DeferredToolRequests], name="publisher"
    )

    @agent.tool_plain(requires_approval=True)
    def publish(title: str, audience: int) -> str:
        """Publish the post to the audience."""
        published.append(title)
        return f"published {title!r} to {audience} readers"

    return agent


def test_tool_approval_is_a_wflo_gate_and_the_agent_continues(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """The tool call's name and arguments are the gate's details; approved, it runs."""
    published: list[str] = []
    agent = publishing_agent(server, published)
    server.script.append(tool_call("publish", {"title": "Q3 results", "audience": 5000}))

    @flow
    async def post() -> str:
        result = await run_with_approvals(agent, "Publish the Q3 post.")
        return str(result.output)

    future = run_async(post)
    request = paused_request("call tool publish")
    assert request.details == {"tool": "publish", "args": {"title": "Q3 results", "audience": 5000}}
    assert published == []
    decide(request.id, Vote("erin", True, request.digest, "api"))
    assert future.result(timeout=120).result() == "Hello!"
    assert published == ["Q3 results"]
    # The model saw the tool's result in its second request.
    last = server.requests[-1].body["messages"]
    assert any(m["role"] == "tool" and "published 'Q3 results'" in m["content"] for m in last)


def test_denied_tool_call_reaches_the_model_as_a_denial(ledger: Ledger, server: FakeOpenAI) -> None:
    """Rejected with a comment: the tool never runs; the model reads who denied it and why."""
    published: list[str] = []
    agent = publishing_agent(server, published)
    server.script.append(tool_call("publish", {"title": "Leaked numbers", "audience": 10}))

    @flow
    async def post() -> str:
        result = await run_with_approvals(agent, "Publish it.")
        return str(result.output)

    future = run_async(post)
    request = paused_request("call tool publish")
    decide(request.id, Vote("erin", False, request.digest, "api", comment="not public yet"))
    assert future.result(timeout=120).result() == "Hello!"
    assert published == []
    last = server.requests[-1].body["messages"]
    denial = next(m for m in last if m["role"] == "tool")
    assert "denied by erin" in denial["content"]
    assert "not public yet" in denial["content"]


def test_prefect_agent_with_wflo_model_and_approvals(ledger: Ledger, server: FakeOpenAI) -> None:
    """PrefectAgent: model requests are Prefect tasks, metered in the run; the gate works."""
    published: list[str] = []
    agent = PrefectAgent(publishing_agent(server, published))
    server.script.append(tool_call("publish", {"title": "Launch", "audience": 42}))

    @governed_flow(budget=Budget(Decimal("1.00"), scope="flow_run"))
    async def launch() -> str:
        result = await run_with_approvals(agent, "Announce the launch.")
        return str(result.output)

    future = run_async(launch)
    request = paused_request("call tool publish")
    decide(request.id, Vote("erin", True, request.digest, "api"))
    state = future.result(timeout=120)
    assert state.result() == "Hello!"
    assert published == ["Launch"]
    outer = str(state.state_details.flow_run_id)
    entries = ledger.costs.entries()
    assert len(server.requests) == 2
    assert len(entries) == 2
    # PrefectAgent runs the agent as a subflow of `launch` and each model request as a
    # Prefect task in it: the entries are attributed to those runs.
    assert len({e.task_run_id for e in entries}) == 2
    with get_client(sync_client=True) as client:
        for entry in entries:
            assert entry.flow_run_id
            assert entry.task_run_id
            assert entry.flow_name == "publisher Run"
            subflow = client.read_flow_run(UUID(entry.flow_run_id))
            assert subflow.parent_task_run_id is not None
            parent = client.read_task_run(subflow.parent_task_run_id)
            assert str(parent.flow_run_id) == outer


def test_approval_policy_of_the_gate_is_used(ledger: Ledger, server: FakeOpenAI) -> None:
    """approval= sets the gate's action and deadline."""
    agent = publishing_agent(server, [])
    server.script.append(tool_call("publish", {"title": "x", "audience": 1}))

    @flow
    async def post() -> str:
        policy = ApprovalPolicy(action="publish a post", timeout=600)
        result = await run_with_approvals(agent, "Go.", approval=policy)
        return str(result.output)

    future = run_async(post)
    request = paused_request("publish a post")
    assert request.deadline_at is not None
    assert 590 < (request.deadline_at - request.created_at).total_seconds() <= 600
    decide(request.id, Vote("erin", True, request.digest, "api"))
    assert future.result(timeout=120).result() == "Hello!"


def test_streamed_requests_are_settled_with_the_stream_usage(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """run_stream: held before, settled with the usage of the stream's last event."""
    agent = Agent(model(server))

    @governed_flow(budget=Budget("1.00", scope="flow_run"))
    async def stream() -> str:
        async with agent.run_stream("Say hello.") as result:
            return str(await result.get_output())

    state = asyncio.run(stream(return_state=True))
    assert state.result() == "Hello!"
    assert server.requests[0].body["stream"] is True
    (entry,) = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert entry.output_tokens == server.reply_tokens
    assert entry.input_tokens > 0
