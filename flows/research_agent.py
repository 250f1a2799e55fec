"""An async pydantic-ai research agent, governed by wflo: run budget, approval, undo.

    python flows/research_agent.py

The agent searches (a local corpus standing in for a search API), drafts a brief
with an LLM under a per-run budget, and publishes it with a tool declared
``requires_approval=True``: the publish call is a wflo approval gate (the tool's
name and arguments are what approvers see and what the decision is bound to),
and the publish registers a compensation that unpublishes the brief if the run
is rolled back (``wflo compensate``).

With ``OPENAI_API_KEY`` set it talks to OpenAI. Without one it starts the local
fake OpenAI server the test suite uses (tests/fakes), scripted to search until
the $0.03 budget halts the run: the call that would overrun it is never sent, and
nothing is published.
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.models.openai import OpenAIChatModel

from wflo_prefect import ApprovalPolicy, Budget, governed_flow
from wflo_prefect.integrations.pydantic_ai import WfloModel, run_with_approvals

# The publish task and its compensation live in an importable module (flows.publishing).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flows.publishing import publish_brief

QUESTIONS = [
    "What changed in the EU AI Act in 2025?",
    "Summarise the main risks of autonomous agents in production.",
    "List three ways to cap LLM spend per workflow.",
    "Draft a one-page brief for the CTO.",
    "Translate the brief into German.",
]

#: The local "search index" (a stand-in for a search API).
CORPUS = {
    "eu ai act": "The EU AI Act's obligations for general-purpose models apply from August 2025.",
    "agent risks": "Agents in production fail by overspending, acting without review, and "
    "leaving half-done changes behind.",
    "llm spend": "Cap spend with per-run budgets, hold the worst case before each call, and "
    "route to cheaper models near the limit.",
}

INSTRUCTIONS = (
    "You are a research assistant. Search for each question, draft a short brief from "
    "what you found, then publish it with the publish tool."
)


def build_agent(model: Any = None) -> Agent[None, Any]:
    """The research agent; every model request held on the run's wflo budgets."""
    agent: Agent[None, Any] = Agent(
        WfloModel(model or OpenAIChatModel("gpt-4o")),
        instructions=INSTRUCTIONS,
        output_type=[str, DeferredToolRequests],
        model_settings={"max_tokens": 800},
        name="research-agent",
    )

    @agent.tool_plain
    def search(query: str) -> str:
        """Search the web for ``query``; returns the best snippet."""
        words = set(query.lower().split())
        best = max(CORPUS, key=lambda key: len(words & set(key.split())))
        return CORPUS[best]

    @agent.tool_plain(requires_approval=True)
    async def publish(slug: str, title: str, body: str) -> str:
        """Publish the brief under ``slug`` (a human approves first)."""
        return await publish_brief(slug, title, body)

    return agent


async def research(questions: list[str], user: str = "demo") -> str:
    """Research the questions, draft a brief, publish it once approved."""
    prompt = "Research these questions and publish one brief:\n" + "\n".join(
        f"- {q}" for q in questions
    )
    approval = ApprovalPolicy(action="publish the research brief", timeout=3600)
    result = await run_with_approvals(build_agent(), prompt, approval=approval)
    return str(result.output)


research_agent = governed_flow(
    research,
    name="research-agent",
    budget=Budget(Decimal("0.03"), scope="flow_run", name="research-run"),
)


def _offline_server(script: list[dict[str, Any]] | None = None) -> object | None:
    """The local OpenAI stand-in (when no API key is set), scripted to search and search."""
    if os.environ.get("OPENAI_API_KEY"):
        return None
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakes.openai_server import FakeOpenAI

    server = FakeOpenAI()
    server.reply_tokens = 800  # answers as long as allowed: every call costs its worst case
    server.script = script or [
        {
            "tool_calls": [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": "search", "arguments": json.dumps({"query": q})},
                }
            ]
        }
        for n, q in enumerate(QUESTIONS)
    ]
    server.start()
    os.environ["OPENAI_BASE_URL"] = f"{server.url}/v1"
    os.environ["OPENAI_API_KEY"] = "sk-offline-demo"
    return server


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    fake = _offline_server()
    state = asyncio.run(research_agent(QUESTIONS, return_state=True))
    print(f"final state: {state.name} ({state.type.value})")
    print(state.message)
    if fake is not None:
        print(f"requests the server received: {len(fake.requests)}")  # type: ignore[attr-defined]
