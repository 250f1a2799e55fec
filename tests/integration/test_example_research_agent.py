"""The async pydantic-ai research agent example (flows/research_agent.py), end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from approval_support import paused_request, start_flow

from flows import research_agent as example
from wflo_prefect import Budget, governed_flow
from wflo_prefect.approvals import Vote, decide
from wflo_prefect.ledger import Ledger


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The example's local OpenAI stand-in; the site in a temporary directory."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.setenv(name, "x")  # restored (removed) after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("WFLO_DEMO_SITE", str(tmp_path / "site"))
    servers: list[Any] = []

    def start(script: list[dict[str, Any]] | None = None) -> Any:
        server = example._offline_server(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(args)}
    return {"tool_calls": [{"id": f"call_{name}", "type": "function", "function": function}]}


def test_the_budget_halts_the_agent_before_it_overspends(ledger: Ledger, offline: Any) -> None:
    """$0.03 covers three worst-case requests; the fourth is never sent; nothing published."""
    server = offline()
    state = asyncio.run(example.research_agent(example.QUESTIONS, return_state=True))
    assert state.name == "BudgetExceeded"
    assert len(server.requests) == 3
    spent = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert len(spent) == 3
    assert not (Path(example.os.environ["WFLO_DEMO_SITE"])).exists()


def _publish_run(offline: Any, fail_after_publish: bool) -> tuple[Any, Any, dict[str, Any]]:
    brief = {"slug": "ai-brief", "title": "AI brief", "body": "Budgets, gates, undo."}
    server = offline([call("search", {"query": "llm spend"}), call("publish", brief)])
    roomy = governed_flow(example.research, name="research-agent", budget=Budget("1.00"))
    future = start_flow(lambda return_state: asyncio.run(roomy(["q"], return_state=return_state)))
    request = paused_request("publish the research brief", timeout=60)
    assert request.details == {"tool": "publish", "args": brief}
    if fail_after_publish:
        server.fail_next.append(500)  # the model request after the publish fails
    return future, request, brief


def test_publish_waits_for_approval_and_registers_its_undo(
    ledger: Ledger, offline: Any, tmp_path: Path
) -> None:
    """search -> publish (a wflo gate) -> published; the run succeeded, so the undo is released."""
    future, request, _ = _publish_run(offline, fail_after_publish=False)
    page = tmp_path / "site" / "ai-brief.md"
    assert not page.exists()
    decide(request.id, Vote("erin", True, request.digest, "api"))
    state = future.result(timeout=120)
    assert state.is_completed()
    assert page.read_text().startswith("# AI brief")
    (undo,) = ledger.compensations.for_flow_run(str(state.state_details.flow_run_id))
    assert undo.name == "undo publish_brief"
    assert undo.status == "released"


def test_a_failure_after_publishing_unpublishes(
    ledger: Ledger, offline: Any, tmp_path: Path
) -> None:
    """The run fails after the approved publish: its compensation takes the brief down."""
    future, request, _ = _publish_run(offline, fail_after_publish=True)
    decide(request.id, Vote("erin", True, request.digest, "api"))
    state = future.result(timeout=120)
    assert state.is_failed()
    assert not (tmp_path / "site" / "ai-brief.md").exists()
    (undo,) = ledger.compensations.for_flow_run(str(state.state_details.flow_run_id))
    assert undo.status == "done"
