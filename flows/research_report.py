"""A research agent under a budget that asks an editor before it publishes.

Deployed by prefect.yaml to the ``wflo-process`` pool. Each question is one LLM
call through an instrumented OpenAI client (priced, attributed, and refused
before it is sent if it would overrun the run's budget). The report is published
only after an editor approves it (``require_approval``, verified against the
saved ``Approvers`` block named by ``principals``), answered from Slack, an
e-mailed link, the approval service's REST API or ``wflo approvals approve``.

Offline (no ``OPENAI_API_KEY``) point ``OPENAI_BASE_URL`` at any server speaking
OpenAI's chat-completions protocol, e.g. the test suite's fake in tests/fakes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai

from wflo_prefect import Budget, governed_flow, governed_task, instrument, require_approval

BUDGET = Budget(Decimal("0.50"), scope="flow_run", name="research-report-run")
QUESTIONS = [
    "What changed in the EU AI Act in 2025?",
    "Summarise the main risks of autonomous agents in production.",
    "List three ways to cap LLM spend per workflow.",
]


@governed_task
def research(question: str, model: str = "gpt-4o-mini") -> str:
    """One LLM call; the budget refuses it before sending if it could overrun."""
    client = instrument(openai.OpenAI(max_retries=0))
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=400
    )
    return reply.choices[0].message.content or ""


@governed_task(operation="publish")
def publish(topic: str, report: str, directory: str) -> str:
    """Write the approved report where readers find it; return its path."""
    target = Path(directory) / f"{topic.replace(' ', '-')}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"# {topic}\n\n{report}\n")
    return str(target)


@governed_flow(name="research-report", budget=BUDGET, log_prints=True)
def research_report(
    topic: str = "agents in production",
    questions: list[str] | None = None,
    publish_dir: str = ".wflo-out/reports",
    principals: str = "wflo-approvers",
    approvers: list[str] | None = None,
) -> dict[str, object]:
    """Research each question within the budget, then publish once an editor approved."""
    asked = questions or QUESTIONS
    answers = [research(q) for q in asked]
    report = "\n\n".join(f"## {q}\n\n{a}" for q, a in zip(asked, answers, strict=True))
    decision = require_approval(
        "publish research report",
        details={"topic": topic, "sections": len(answers), "preview": report[:400]},
        approvers=approvers or ["editors"],
        principals=principals,
        timeout=3600,
    )
    path = publish(topic, report, publish_dir)
    print(f"published {path}, approved by {', '.join(decision.approvers)}")
    return {"published": path, "sections": len(answers), "approved_by": decision.approvers}
