"""A research agent held to a per-run budget: the call that would overrun it is never sent.

    python flows/budgeted_research.py

With ``OPENAI_API_KEY`` set it talks to OpenAI. Without one it starts the local
fake OpenAI server the test suite uses (tests/fakes), so the demo runs offline.
The run ends ``Failed`` with the state name ``BudgetExceeded`` after the calls
that fit in its $0.03 budget; the refused call never reaches the server.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

import openai

from wflo_prefect import Budget, governed_flow, governed_task, instrument

QUESTIONS = [
    "What changed in the EU AI Act in 2025?",
    "Summarise the main risks of autonomous agents in production.",
    "List three ways to cap LLM spend per workflow.",
    "Draft a one-page brief for the CTO.",
    "Translate the brief into German.",
]


@governed_task
def ask(question: str) -> str:
    """One LLM call through an instrumented client (priced, attributed, budgeted)."""
    client = instrument(openai.OpenAI(max_retries=0))
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": question}],
        max_tokens=800,
    )
    return reply.choices[0].message.content or ""


@governed_flow(budget=Budget(Decimal("0.03"), scope="flow_run", name="research-run"))
def budgeted_research(questions: list[str], user: str = "demo") -> list[str]:
    """Ask each question in turn; the budget halts the run before it overspends."""
    return [ask(q) for q in questions]


def _offline_server() -> object | None:
    if os.environ.get("OPENAI_API_KEY"):
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakes.openai_server import FakeOpenAI

    server = FakeOpenAI()
    server.reply_tokens = 800  # answers as long as allowed: every call costs its worst case
    server.start()
    os.environ["OPENAI_BASE_URL"] = f"{server.url}/v1"
    os.environ["OPENAI_API_KEY"] = "sk-offline-demo"
    return server


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    fake = _offline_server()
    state = budgeted_research(QUESTIONS, return_state=True)
    print(f"final state: {state.name} ({state.type.value})")
    print(state.message)
    if fake is not None:
        print(f"requests the server received: {len(fake.requests)} of {len(QUESTIONS)} questions")
