"""Every wflo metric is exported, and moves when the thing it counts happens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from wflo_prefect import Budget, governed_flow, governed_task, record_llm_usage
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.ledger.models import ApprovalRequestRow, BudgetWindowRow, CompensationRow
from wflo_prefect.observability.exporter import exported_registry
from wflo_prefect.observability.metrics import REGISTRY
from wflo_prefect.testing import temporary_ledger


def _value(name: str, registry: CollectorRegistry = REGISTRY, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_flow_and_task_runs_move_run_metrics(ledger: Ledger) -> None:
    """A completed and a failed flow run count by status, with durations and task runs."""
    name = f"moves-{uuid.uuid4().hex[:6]}"

    @governed_task(name=f"{name}-step")
    def step() -> int:
        return 1

    @governed_flow(name=name)
    def run(fail: bool) -> int:
        step()
        if fail:
            raise ValueError("no")
        return 1

    run(False)
    run(True, return_state=True)
    runs = "wflo_workflow_executions_total"
    assert _value(runs, workflow_name=name, status="completed") == 1
    assert _value(runs, workflow_name=name, status="failed") == 1
    assert _value("wflo_workflow_duration_seconds_count", workflow_name=name) == 2
    tasks = "wflo_task_executions_total"
    assert _value(tasks, task_name=f"{name}-step", status="completed") == 2


def test_llm_usage_moves_call_token_and_cost_metrics(ledger: Ledger) -> None:
    """A recorded LLM call counts one call, its tokens by type and its cost for the flow."""
    name = f"llm-{uuid.uuid4().hex[:6]}"
    labels = {"provider": "openai", "model": "gpt-4o"}
    calls = _value("wflo_llm_api_calls_total", **labels)
    tokens = {t: _value("wflo_llm_tokens_total", **labels, type=t) for t in ("input", "output")}
    cached = _value("wflo_llm_tokens_total", **labels, type="cached_input")

    @governed_flow(name=name)
    def spend() -> None:
        record_llm_usage("openai", "gpt-4o", 1000, 200, cached_input_tokens=300)

    spend()
    assert _value("wflo_llm_api_calls_total", **labels) == calls + 1
    assert _value("wflo_llm_tokens_total", **labels, type="input") == tokens["input"] + 1000
    assert _value("wflo_llm_tokens_total", **labels, type="output") == tokens["output"] + 200
    assert _value("wflo_llm_tokens_total", **labels, type="cached_input") == cached + 300
    assert _value("wflo_workflow_cost_usd", workflow_name=name) > 0


def test_a_refused_call_moves_budget_exceeded_and_budget_use(ledger: Ledger) -> None:
    """A halt budget refusing a call counts wflo_budget_exceeded and shows its window's use."""
    name = f"greedy-{uuid.uuid4().hex[:6]}"

    @governed_flow(name=name, budget=Budget(Decimal("0.005"), name=name))
    def greedy() -> None:
        from wflo_prefect.costs import metered_call

        for _ in range(10):
            with metered_call("openai", "gpt-4o", input_tokens=100, max_output_tokens=100) as c:
                c.settle(input_tokens=100, output_tokens=100)

    assert greedy(return_state=True).name == "BudgetExceeded"
    assert _value("wflo_budget_exceeded_total", workflow_name=name) == 1
    exported = exported_registry(ledger=True)
    used = [
        s
        for family in exported.collect()
        if family.name == "wflo_budget_utilization_ratio"
        for s in family.samples
        if name in s.labels["budget"]
    ]
    assert used
    assert 0.5 < used[0].value <= 1


def _request(**changes: object) -> ApprovalRequestRecord:
    created = datetime.now(UTC) - timedelta(seconds=30)
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "action": "deploy",
        "digest": "0" * 64,
        "created_at": created,
    }
    fields.update(changes)
    return ApprovalRequestRecord.model_validate(fields)


def test_approval_steps_move_request_and_latency_metrics(ledger: Ledger) -> None:
    """A request counts as requested; its decision by outcome, with its latency."""
    from wflo_prefect.approvals.events import announce

    requested = _value("wflo_approval_requests_total", status="requested")
    approved = _value("wflo_approval_requests_total", status="approved")
    latencies = _value("wflo_approval_latency_seconds_count")
    latency_sum = _value("wflo_approval_latency_seconds_sum")
    announce("requested", _request())
    decided = _request(status="approved")
    decided = decided.model_copy(update={"decided_at": decided.created_at + timedelta(seconds=30)})
    announce("decided", decided, outcome="approved")
    assert _value("wflo_approval_requests_total", status="requested") == requested + 1
    assert _value("wflo_approval_requests_total", status="approved") == approved + 1
    assert _value("wflo_approval_latency_seconds_count") == latencies + 1
    assert _value("wflo_approval_latency_seconds_sum") - latency_sum == pytest.approx(30)


def test_sandbox_runs_move_sandbox_metrics_and_gauges_go_with_the_sandbox(ledger: Ledger) -> None:
    """Creation time, runs by outcome (oom), and per-sandbox gauges until it is forgotten."""
    from wflo_prefect.observability.correlation import Correlation
    from wflo_prefect.sandbox.observe import forget_sandbox, record_creation, record_run
    from wflo_prefect.sandbox.result import SandboxResult

    box = f"sbx-{uuid.uuid4().hex[:8]}"
    created = _value("wflo_sandbox_creation_duration_seconds_count", runtime="runc", warm="false")
    ooms = _value("wflo_sandbox_runs_total", runtime="runc", outcome="oom")
    record_creation(box, "runc", 0.2, warm=False)
    result = SandboxResult(
        sandbox_id=box,
        exit_code=137,
        stdout="",
        stderr="",
        duration_seconds=2.0,
        oom_killed=True,
        peak_memory_bytes=64 * 2**20,
        cpu_time_seconds=1.0,
    )
    record_run(result, command="python big.py", correlation=Correlation(), image="img")
    count = "wflo_sandbox_creation_duration_seconds_count"
    assert _value(count, runtime="runc", warm="false") == created + 1
    assert _value("wflo_sandbox_runs_total", runtime="runc", outcome="oom") == ooms + 1
    assert _value("wflo_sandbox_memory_usage_bytes", sandbox_id=box) == 64 * 2**20
    assert _value("wflo_sandbox_cpu_usage_percent", sandbox_id=box) == 50.0
    forget_sandbox(box)
    assert REGISTRY.get_sample_value("wflo_sandbox_memory_usage_bytes", {"sandbox_id": box}) is None


def test_ledger_gauges_show_overdue_approvals_failed_compensations_and_budget_use(
    ledger: Ledger,
) -> None:
    """Rows in the ledger appear in the scrape: overdue approvals, failed compensations, 90 %."""
    now = datetime.now(UTC)
    with ledger.transaction() as session:
        session.add_all(
            [
                ApprovalRequestRow(
                    action="deploy", digest="0" * 64, deadline_at=now - timedelta(minutes=5)
                ),
                ApprovalRequestRow(
                    action="deploy", digest="1" * 64, deadline_at=now + timedelta(hours=1)
                ),
                CompensationRow(
                    flow_run_id=str(uuid.uuid4()),
                    seq=1,
                    name="undo",
                    handler="mod:undo",
                    idempotency_key=str(uuid.uuid4()),
                    status="failed",
                ),
                BudgetWindowRow(
                    budget_key="team-a",
                    window_start=now - timedelta(hours=1),
                    window_end=now + timedelta(hours=1),
                    limit_usd=Decimal("10"),
                    spent_usd=Decimal("9"),
                ),
            ]
        )
    exported = exported_registry(ledger=True)
    assert _value("wflo_ledger_up", exported) == 1
    assert _value("wflo_approval_pending", exported, overdue="true") == 1
    assert _value("wflo_approval_pending", exported, overdue="false") == 1
    assert _value("wflo_compensations", exported, status="failed") == 1
    assert _value("wflo_budget_utilization_ratio", exported, budget="team-a") == 0.9
    assert _value("wflo_budget_spent_usd", exported, budget="team-a") == 9
    assert _value("wflo_budget_limit_usd", exported, budget="team-a") == 10


def test_an_unreachable_ledger_reports_ledger_down(tmp_path: object) -> None:
    """A scrape still answers when the ledger cannot be read, with wflo_ledger_up 0."""
    with temporary_ledger("postgresql+psycopg://nobody:x@127.0.0.1:1/none?connect_timeout=2"):
        exported = exported_registry(ledger=True)
        assert _value("wflo_ledger_up", exported) == 0
