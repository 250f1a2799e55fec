"""The cost view in the Prefect UI: one artifact per flow, stable key, updated per run."""

from __future__ import annotations

import uuid
from decimal import Decimal

from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from wflo_prefect import Budget, governed_flow, governed_task, record_llm_usage
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability.cost_view import cost_view_key


def _latest(key: str) -> tuple[str, int]:
    """The newest markdown stored under ``key`` and how many versions there are."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, f"no artifact with key {key}"
    newest = max(found, key=lambda a: a.created)
    return str(newest.data), len(found)


def test_each_run_updates_the_flows_cost_view_by_day_model_and_user(ledger: Ledger) -> None:
    """Two runs by two users: the latest version sums both, grouped by day, model, user."""
    name = f"Support Agent {uuid.uuid4().hex[:6]}"

    @governed_task
    def think(model: str) -> None:
        record_llm_usage("openai", model, input_tokens=1000, output_tokens=200)

    @governed_flow(name=name)
    def agent(model: str) -> None:
        think(model)

    @governed_flow(name=f"quiet-{name}")
    def quiet() -> None:
        pass

    with tags("user:alice"):
        agent("gpt-4o-mini")
    key = cost_view_key(name)
    assert key.startswith("wflo-costs-support-agent-")
    first, _ = _latest(key)
    assert "| user:alice" not in first
    assert "| alice | 1 | 1000 | 200 |" in first
    with tags("user:bob"):
        agent("gpt-4o")
    second, versions = _latest(key)
    assert versions == 2
    entries = ledger.costs.entries(flow_name=name)
    total = sum((e.cost_usd for e in entries), Decimal(0))
    assert (
        f"**${total.quantize(Decimal('0.000001')).normalize():f}** in 2 calls over 2 runs" in second
    )
    assert "| openai/gpt-4o | 1 | 1000 | 200 |" in second
    assert "| openai/gpt-4o-mini | 1 | 1000 | 200 |" in second
    assert "| bob | 1 |" in second
    assert "| alice | 1 |" in second
    days = [e.occurred_at.strftime("%Y-%m-%d") for e in entries]
    for day in set(days):  # one day, unless the runs straddled midnight UTC
        calls = days.count(day)
        assert f"| {day} | {calls} | {1000 * calls} | {200 * calls} |" in second
    quiet()
    with get_client(sync_client=True) as client:
        none = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[cost_view_key(f"quiet-{name}")])
            )
        )
    assert none == []  # a run without LLM calls leaves no view behind


def test_an_async_flow_gets_its_cost_artifacts_too(ledger: Ledger) -> None:
    """In an async flow Prefect's create_*_artifact return un-awaited coroutines; wflo's do not."""
    import asyncio

    name = f"async-agent-{uuid.uuid4().hex[:6]}"

    @governed_flow(name=name, budget=Budget(Decimal("1"), scope="flow_run"))
    async def agent() -> str:
        record_llm_usage("openai", "gpt-4o-mini", input_tokens=500, output_tokens=50)
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        assert context is not None
        assert context.flow_run is not None
        return str(context.flow_run.id)

    run_id = asyncio.run(agent())
    view, _ = _latest(cost_view_key(name))
    assert "| openai/gpt-4o-mini | 1 | 500 | 50 |" in view
    with get_client(sync_client=True) as client:
        run_artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["wflo-llm-costs", "wflo-llm-cost-summary"])
            )
        )
    assert {str(a.flow_run_id) for a in run_artifacts if str(a.flow_run_id) == run_id}, (
        "the run's cost table and summary are attached to it"
    )
