"""A governed flow served as a Prefect deployment runs and is audited with its deployment id."""

from __future__ import annotations

import asyncio

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.runner import Runner

from wflo_prefect import governed_flow, governed_task
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail


@governed_task(operation="read")
def fetch(n: int) -> int:
    return n * 10


@governed_flow(name="served-flow")
def served_flow(n: int = 1) -> int:
    return fetch(n)


def test_deployed_run_is_governed(ledger: Ledger) -> None:
    """Runner.add_flow + run_deployment: the run executes in a subprocess and is audited."""

    async def scenario() -> str:
        runner = Runner(name="wflo-test-runner", query_seconds=1)
        deployment_id = await runner.add_flow(served_flow, name="served")
        flow_run = await run_deployment(deployment_id, parameters={"n": 4}, timeout=0)
        await runner.start(run_once=True)
        async with get_client() as client:
            finished = await client.read_flow_run(flow_run.id)
        assert finished.state is not None
        assert finished.state.is_completed(), finished.state
        return str(flow_run.id)

    run_id = asyncio.run(scenario())
    events = audit_trail(run_id)
    assert [e.event for e in events] == [
        "flow_run.started",
        "task_run.started",
        "task_run.completed",
        "flow_run.completed",
    ]
    assert events[0].deployment_id is not None
