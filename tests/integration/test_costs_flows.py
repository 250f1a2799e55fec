"""Budgets on governed flows and tasks, on the real Prefect API (session test harness)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest
from fakes.openai_server import FakeOpenAI
from prefect import tags, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

from wflo_prefect import (
    Budget,
    BudgetExceeded,
    ConfigurationError,
    InvalidArgumentError,
    WfloBudget,
    governed_flow,
    governed_task,
    instrument,
)
from wflo_prefect.cli import app
from wflo_prefect.costs import estimate_cost
from wflo_prefect.ledger import Ledger

runner = CliRunner(env={"COLUMNS": "200"})
MSG = [{"role": "user", "content": "Summarise the quarterly report in one line."}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def _client(base_url: str) -> openai.OpenAI:
    return instrument(openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0))


@governed_task
def ask(base_url: str, max_tokens: int = 100) -> str:
    reply = _client(base_url).chat.completions.create(
        model="gpt-4o-mini",
        messages=MSG,
        max_tokens=max_tokens,  # type: ignore[arg-type]
    )
    return reply.choices[0].message.content or ""


@task
def plain_ask(base_url: str, max_tokens: int) -> str:
    return ask.fn(base_url, max_tokens)


@governed_flow(budget=Budget("1.00", scope="flow_run"))
def research(base_url: str, calls: int = 2, user: str = "ann") -> int:
    for _ in range(calls):
        ask(base_url)
    ask.submit(base_url).result()
    return calls


TINY = estimate_cost("openai", "gpt-4o-mini", input_tokens=20, output_tokens=100)


@governed_flow(budget=Budget(TINY * 2, scope="flow_run", name="tiny-run"))
def greedy(base_url: str, max_tokens: int) -> None:
    for _ in range(5):
        plain_ask.submit(base_url, max_tokens).result()


def test_calls_are_attributed_to_flow_task_user_and_tags(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """Each call records flow, flow run, task run, user (from a user: tag) and tags."""
    with tags("user:bob", "team-a"):
        state = research(server.url, calls=2, return_state=True)
    assert state.is_completed()
    run_id = str(state.state_details.flow_run_id)
    entries = ledger.costs.entries(flow_run_id=run_id)
    assert len(entries) == 3
    assert {e.flow_name for e in entries} == {"research"}
    assert all(e.task_run_id for e in entries)
    assert len({e.task_run_id for e in entries}) == 3
    assert {e.user for e in entries} == {"bob"}
    assert {"user:bob", "team-a"} <= set(entries[0].tags)
    assert all(e.latency_ms is not None and e.request_id for e in entries)


def test_user_comes_from_the_flow_parameter(ledger: Ledger, server: FakeOpenAI) -> None:
    """Without a user: tag, the flow's `user` parameter names the user."""
    state = research(server.url, calls=0, user="carol", return_state=True)
    entries = ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    assert [e.user for e in entries] == ["carol"]


def test_run_publishes_a_cost_table_artifact(ledger: Ledger, server: FakeOpenAI) -> None:
    """A governed flow run with a budget gets a table artifact, one row per call plus totals."""
    state = research(server.url, calls=1, return_state=True)
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    by_key = {a.key: a for a in artifacts}
    table = by_key["wflo-llm-costs"]
    assert table.type == "table"
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    assert len(rows) == 3
    assert rows[-1]["time"] == "total"
    total = sum(e.cost_usd for e in ledger.costs.entries(flow_run_id=str(run_id)))
    assert Decimal(rows[-1]["cost_usd"]) == total
    assert "LLM cost of this run" in str(by_key["wflo-llm-cost-summary"].data)


def test_budget_halts_the_run_before_sending(ledger: Ledger, server: FakeOpenAI) -> None:
    """Over budget, the run ends Failed named BudgetExceeded and the server got no more calls."""
    server.reply_tokens = 100  # answers use all of max_tokens: actual == worst case
    state = greedy(server.url, 100, return_state=True)
    assert state.is_failed()
    assert state.name == "BudgetExceeded"
    assert "tiny-run" in (state.message or "")
    sent = len(server.requests)
    assert sent == 2, "two worst cases fit in the budget, the third was never sent"
    assert len(ledger.costs.entries(flow_run_id=str(state.state_details.flow_run_id))) == sent
    refused = ledger.audit.recent(event_prefix="budget.refused")
    assert refused
    assert refused[0].payload["budget"] == "tiny-run"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    [table] = [a for a in artifacts if a.key == "wflo-llm-costs"]
    assert "2 calls" in str(table.data), "a halted run still gets its cost table"


def test_plain_tasks_inherit_the_flow_budget_and_the_error_is_raised(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """A plain Prefect task submitted in a governed flow is held to the flow's budget."""
    with pytest.raises(BudgetExceeded) as info:
        greedy(server.url, 10_000)
    assert server.requests == []
    assert info.value.budget_name == "tiny-run"
    assert info.value.attempted_usd > info.value.limit_usd


@governed_flow(
    budget=[
        Budget("10", scope="flow_run"),
        Budget(TINY, scope="user", scope_value="dave", name="dave-daily", period="daily"),
    ]
)
def two_budgets(base_url: str, user: str) -> None:
    ask(base_url)
    ask(base_url)


def test_every_applicable_budget_is_checked(ledger: Ledger, server: FakeOpenAI) -> None:
    """With a run budget and a user budget, the user's halts dave but not erin."""
    state = two_budgets(server.url, "dave", return_state=True)
    assert state.name == "BudgetExceeded"
    assert "dave-daily" in (state.message or "")
    assert two_budgets(server.url, "erin", return_state=True).is_completed()
    names = {b.name for b in ledger.costs.budgets()}
    assert "dave-daily" in names


@governed_flow(
    budget=Budget(
        TINY * 3,
        scope="flow",
        period="daily",
        on_exceeded="alert",
        name="alerting",
        alert_thresholds=(0.25, 0.5),
    )
)
def chatty(base_url: str, calls: int) -> None:
    for _ in range(calls):
        ask(base_url)


def test_alert_budget_sends_and_alerts_once_per_threshold(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """on_exceeded=alert never refuses; each threshold and the overrun alert once per window."""
    assert chatty(server.url, 25, return_state=True).is_completed()
    assert chatty(server.url, 25, return_state=True).is_completed()
    assert len(server.requests) == 50
    events = ledger.audit.recent(200, event_prefix="budget.")
    kinds = sorted((e.event, e.outcome) for e in events)
    assert kinds == [
        ("budget.exceeded", "exceeded"),
        ("budget.threshold", "0.25"),
        ("budget.threshold", "0.5"),
    ]
    _wait_for_events(["wflo.budget.threshold", "wflo.budget.exceeded"])


def _wait_for_events(names: list[str], timeout: float = 20) -> None:
    """The budget events reached the Prefect API (where automations can route them)."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            response = client._client.post(
                "/events/filter",
                json={"filter": {"event": {"prefix": ["wflo.budget."]}}, "limit": 50},
            )
            response.raise_for_status()
            seen = {e["event"] for e in response.json()["events"]}
            if set(names) <= seen:
                return
            time.sleep(0.5)
    raise AssertionError(f"events {names} not in the Prefect API; saw {sorted(seen)}")


def test_budget_block_is_loaded_by_name_at_each_run(ledger: Ledger, server: FakeOpenAI) -> None:
    """A WfloBudget block named on the flow is re-read every run: lowering it halts the next."""
    name = f"team-{uuid.uuid4().hex[:8]}"
    WfloBudget(max_usd=Decimal("5"), scope="flow_run", period="none").save(name)

    @governed_flow(budget=name, name=f"blocked-{name}")
    def uses_block(base_url: str) -> None:
        ask(base_url)

    assert uses_block(server.url, return_state=True).is_completed()
    WfloBudget(max_usd=TINY / 10, scope="flow_run", period="none").save(name, overwrite=True)
    state = uses_block(server.url, return_state=True)
    assert state.name == "BudgetExceeded"
    assert name in (state.message or "")
    assert len(server.requests) == 1


def test_custom_price_block_is_loaded_and_used(ledger: Ledger) -> None:
    """A saved WfloCustomPrice block, loaded by name and registered, prices its model."""
    from wflo_prefect import WfloCustomPrice, record_llm_usage
    from wflo_prefect.costs import clear_custom_prices

    name = f"price-{uuid.uuid4().hex[:8]}"
    WfloCustomPrice(
        provider="acme",
        model="acme-large",
        input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("8"),
    ).save(name)
    try:
        WfloCustomPrice.load(name).register()
        entry = record_llm_usage("acme", "acme-large", 1_000_000, 500_000)
        assert entry.cost_usd == Decimal("6")
    finally:
        clear_custom_prices()


def test_missing_budget_block_fails_the_run_with_a_fix(ledger: Ledger) -> None:
    """A flow naming a WfloBudget block that does not exist fails, saying how to create it."""
    name = f"missing-{uuid.uuid4().hex[:8]}"

    @governed_flow(budget=name, name=f"no-block-{name}")
    def orphan() -> None:
        return None

    with pytest.raises(ConfigurationError, match=name) as info:
        orphan()
    assert "WfloBudget(max_usd=...).save" in str(info.value)


def test_budget_keyword_refuses_other_values() -> None:
    """budget= takes Budgets, WfloBudget blocks or block names, checked at decoration."""
    with pytest.raises(InvalidArgumentError, match="budget="):

        @governed_flow(budget=5)
        def wrong() -> None:
            return None


@governed_flow(budget=Budget("0.0001", scope="deployment", name="per-deployment"))
def deployed(base_url: str) -> None:
    ask(base_url)
    ask(base_url, max_tokens=100_000)


def test_deployment_runs_are_attributed_and_held_to_deployment_budgets(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """A run of a deployment records its deployment and work pool; its budget applies."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.flow_engine import run_flow

    pool = f"pool-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        deployment_id = deployed.to_deployment(name="nightly", work_pool_name=pool).apply()
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"base_url": server.url}
        )
    state = run_flow(deployed, flow_run=flow_run, return_type="state")
    assert state.name == "BudgetExceeded"  # type: ignore[union-attr]
    [entry] = ledger.costs.entries()
    assert entry.deployment_id == str(deployment_id)
    assert entry.work_pool == pool
    [window] = ledger.costs.windows("per-deployment|")
    assert window.budget_key == f"per-deployment|deployment={deployment_id}"
    report = runner.invoke(app, ["costs", "report", "--by", "deployment"])
    assert str(deployment_id) in report.output


def test_budget_alerts_reach_notification_blocks_once(ledger: Ledger, server: FakeOpenAI) -> None:
    """A budget's notify= targets get each threshold alert once, and delivery is audited."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    received: list[dict[str, str]] = []

    class Inbox(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    inbox = ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
    threading.Thread(target=inbox.serve_forever, daemon=True).start()
    try:
        CustomWebhookNotificationBlock(
            name="finops",
            url=f"http://127.0.0.1:{inbox.server_port}/hook",
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
        ).save("finops-inbox", overwrite=True)

        @governed_flow(
            budget=Budget(
                TINY * 2,
                scope="flow_run",
                alert_thresholds=(0.1,),
                notify=["custom-webhook/finops-inbox"],
                name="watched",
            )
        )
        def watched(base_url: str) -> None:
            for _ in range(3):
                ask(base_url)

        state = watched(server.url, return_state=True)
    finally:
        inbox.shutdown()
    assert state.is_completed()
    assert len(received) == 1, received
    assert "watched" in received[0]["subject"]
    assert "threshold 0.1" in received[0]["subject"]
    notified = ledger.audit.recent(50, event_prefix="budget.notified")
    assert [e.outcome for e in notified] == ["sent"]


def test_budget_notify_target_is_checked_when_built() -> None:
    """A notify target that is neither a saved block's slug nor a known URL scheme is
    refused when the Budget is built."""
    with pytest.raises(InvalidArgumentError, match="sms://finops"):
        Budget("1", notify=["sms://finops"])
