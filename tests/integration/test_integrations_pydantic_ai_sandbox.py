"""A pydantic-ai tool that runs in wflo's sandbox: the tool calls a sandboxed governed task."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.openai_server import FakeOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from wflo_prefect import Budget, governed_flow, governed_task
from wflo_prefect.integrations.pydantic_ai import WfloModel
from wflo_prefect.ledger import Ledger
from wflo_prefect.sandbox import SandboxConfig

pytestmark = pytest.mark.docker


@governed_task(sandbox=SandboxConfig(memory_limit="128m", timeout_seconds=60))
async def run_snippet(a: int, b: int) -> dict[str, int]:
    """The tool's work, in a locked-down container."""
    import os

    return {"uid": os.getuid(), "sum": a + b}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def test_tool_runs_in_the_sandbox(ledger: Ledger, server: FakeOpenAI) -> None:
    """The model calls the tool; the tool's work runs as uid 1000 in a container."""
    provider = OpenAIProvider(base_url=f"{server.url}/v1", api_key="sk-test")
    agent = Agent(WfloModel(OpenAIChatModel("gpt-4o-mini", provider=provider)))
    seen: list[dict[str, Any]] = []

    @agent.tool_plain
    async def add(a: int, b: int) -> str:
        """Add two numbers (in the sandbox)."""
        result = await run_snippet(a, b)  # a governed task: the container runs off the loop
        seen.append(result)
        return str(result["sum"])

    arguments = json.dumps({"a": 2, "b": 3})
    server.script.append(
        {
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": arguments},
                }
            ]
        }
    )

    @governed_flow(budget=Budget("1.00", scope="flow_run"))
    async def compute() -> str:
        return str((await agent.run("What is 2 + 3?")).output)

    assert asyncio.run(compute()) == "Hello!"
    assert seen == [{"uid": 1000, "sum": 5}]
    tool_reply = next(m for m in server.requests[-1].body["messages"] if m["role"] == "tool")
    assert tool_reply["content"] == "5"
    assert len(ledger.costs.entries()) == 2
