"""`wflo costs` and `wflo budgets` on a ledger with recorded calls; metrics and estimates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import generate_latest
from typer.testing import CliRunner

from wflo_prefect import Budget, InvalidArgumentError, governed_flow, record_llm_usage
from wflo_prefect.cli import app
from wflo_prefect.cli.costs import parse_since
from wflo_prefect.costs import attribute_to, flush_leases, metered_call, use_budgets
from wflo_prefect.costs.estimates import estimate_run_cost
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability.metrics import REGISTRY

runner = CliRunner(env={"COLUMNS": "200"})  # wide enough that tables are not cut


@governed_flow(budget=Budget("5", scope="flow", name="summariser-budget"))
def summariser(tokens: int, user: str = "ann") -> None:
    record_llm_usage("openai", "gpt-4o-mini", tokens, tokens // 2)
    record_llm_usage("anthropic", "claude-haiku-4-5", tokens, 100)


def test_report_groups_spend_by_flow_user_model_and_day(ledger: Ledger) -> None:
    """`wflo costs report --by ...` shows each group with its calls and total."""
    summariser(1000)
    with attribute_to("zoe"):
        record_llm_usage("openai", "gpt-4o-mini", 10, 10)
    by_flow = runner.invoke(app, ["costs", "report", "--by", "flow", "--since", "1h"])
    assert by_flow.exit_code == 0, by_flow.output
    assert "summariser" in by_flow.output
    assert "(no flow)" in by_flow.output
    by_user = runner.invoke(app, ["costs", "report", "--by", "user"])
    assert "ann" in by_user.output
    assert "zoe" in by_user.output
    by_model = runner.invoke(app, ["costs", "report", "--by", "model"])
    assert "anthropic/claude-haiku-4-5" in by_model.output
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert today in runner.invoke(app, ["costs", "report", "--by", "day"]).output
    total = sum(e.cost_usd for e in ledger.costs.entries())
    assert str(total) in by_flow.output


def test_costs_run_lists_a_runs_calls(ledger: Ledger) -> None:
    """`wflo costs run RUN_ID` lists the run's calls and their total; a bad id is refused."""
    state = summariser(2000, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    result = runner.invoke(app, ["costs", "run", run_id])
    assert result.exit_code == 0, result.output
    assert "openai/gpt-4o-mini" in result.output
    assert "total: 2 calls" in result.output
    bad = runner.invoke(app, ["costs", "run", "not-a-uuid"])
    assert bad.exit_code == 1
    assert "not-a-uuid" in bad.output
    assert runner.invoke(app, ["costs", "run", str(uuid.uuid4())]).exit_code == 1


def test_budgets_list_and_status(ledger: Ledger) -> None:
    """`wflo budgets list` shows registered budgets; `status` their spend and held money."""
    summariser(1000)
    listed = runner.invoke(app, ["budgets", "list"])
    assert listed.exit_code == 0
    assert "summariser-budget" in listed.output
    status = runner.invoke(app, ["budgets", "status", "summariser-budget"])
    assert status.exit_code == 0, status.output
    [window] = ledger.costs.windows("summariser-budget|")
    assert str(window.spent_usd) in status.output
    assert runner.invoke(app, ["budgets", "status", "nope"]).exit_code == 1
    # A process holding a lease on the budget shows as held money with its lease.
    budget = Budget(Decimal(5), scope="global", name="leased-budget")
    with metered_call(
        "openai", "gpt-4o-mini", input_tokens=10, max_output_tokens=10, budgets=[budget]
    ) as call:
        call.settle(input_tokens=10, output_tokens=10)
    leased = runner.invoke(app, ["budgets", "status", "leased-budget"])
    assert leased.exit_code == 0, leased.output
    assert "(1 lease)" in leased.output
    flush_leases()
    assert "(1 lease)" not in runner.invoke(app, ["budgets", "status", "leased-budget"]).output


def test_estimates_per_call_and_per_flow(ledger: Ledger) -> None:
    """`wflo costs estimate` prices one call, or gives a flow's p50/p95 from past runs."""
    for tokens in (1000, 2000, 3000, 40000):
        summariser(tokens)
    estimate = estimate_run_cost(flow_name="summariser")
    assert estimate.runs == 4
    assert estimate.p50_usd < estimate.p95_usd == estimate.max_usd
    result = runner.invoke(app, ["costs", "estimate", "--flow", "summariser"])
    assert result.exit_code == 0
    assert f"p50 ${estimate.p50_usd}" in result.output
    one = runner.invoke(
        app,
        [
            "costs",
            "estimate",
            "--provider",
            "openai",
            "--model",
            "gpt-4o-mini",
            "--input-tokens",
            "1000000",
            "--output-tokens",
            "1000000",
        ],
    )
    assert "$0.75" in one.output
    unknown = runner.invoke(app, ["costs", "estimate", "--provider", "openai", "--model", "zzz"])
    assert unknown.exit_code == 1
    assert "custom price" in unknown.output


def test_since_accepts_durations_and_dates() -> None:
    """--since takes 7d / 24h / 30m / 2w or an ISO date; anything else is refused."""
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(InvalidArgumentError, match="yesterday"):
        parse_since("yesterday")


def test_prometheus_counters_follow_recorded_calls(ledger: Ledger) -> None:
    """Calls, tokens, per-flow cost and exceeded budgets are exported under the seed names."""
    summariser(1000)
    with use_budgets(Budget("0.000001", scope="global", on_exceeded="alert")):
        record_llm_usage("openai", "gpt-4o-mini", 10_000, 0)
    text = generate_latest(REGISTRY).decode()
    assert 'wflo_llm_api_calls_total{model="gpt-4o-mini",provider="openai"}' in text
    assert (
        'wflo_llm_tokens_total{model="claude-haiku-4-5",provider="anthropic",type="output"}' in text
    )
    assert 'wflo_workflow_cost_usd{workflow_name="summariser"}' in text
    assert 'wflo_budget_exceeded_total{workflow_name=""}' in text


def test_record_llm_usage_validates_its_counts(ledger: Ledger) -> None:
    """Negative or inconsistent token counts are refused with the bad value."""
    with pytest.raises(InvalidArgumentError, match="input_tokens"):
        record_llm_usage("openai", "gpt-4o-mini", -1, 0)
    with pytest.raises(InvalidArgumentError, match="cached_input_tokens"):
        record_llm_usage("openai", "gpt-4o-mini", 10, 0, cached_input_tokens=11)
    entry = record_llm_usage("openai", "gpt-4o-mini", 10, 5, cached_input_tokens=4)
    assert entry.cost_usd == Decimal("0.0000042")  # (6*0.15 + 4*0.075 + 5*0.6) per million


def test_budgets_reclaim_gives_back_abandoned_holds(ledger: Ledger) -> None:
    """`wflo budgets reclaim` expires holds older than --older-than, and only those."""
    from wflo_prefect.ledger.costs import HoldRequest

    request = HoldRequest(
        "r|global=*", datetime(2026, 1, 1, tzinfo=UTC), None, Decimal(1), Decimal("0.5")
    )
    assert isinstance(ledger.costs.reserve([request]), list)
    kept = runner.invoke(app, ["budgets", "reclaim", "--older-than", "1h"])
    assert kept.exit_code == 0
    assert "Gave back 0" in kept.output
    # A cut-off date in the future: every open hold counts as abandoned.
    result = runner.invoke(app, ["budgets", "reclaim", "--older-than", "2999-01-01"])
    assert result.exit_code == 0
    assert "Gave back 1" in result.output
