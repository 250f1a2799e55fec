"""A flow run a worker executes in another process joins the trace of the run that submitted it.

The trace context travels the way Prefect 3 carries it: the W3C `traceparent` in the
flow run's `__OTEL_TRACEPARENT` label. Both processes export to one real OTLP/HTTP
receiver on loopback; the child's spans must name the submitter's span as parent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.runner import Runner

from tests.integration.traced_child_flow import traced_child
from tests.support.otlp import OtlpReceiver, otlp_receiver
from wflo_prefect import governed_flow
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import tracing
from wflo_prefect.observability.propagation import LABEL, traceparent_labels


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """Every process of the test (this one, the runner's subprocesses) exports here."""
    with otlp_receiver() as server:
        monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
        monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", server.endpoint)
        tracing.reset_tracing()
        yield server
        monkeypatch.undo()
        tracing.reset_tracing()


@governed_flow(name="traced-parent")
async def submit(deployment_id: str) -> str:
    """Start the deployment's flow run (a worker runs it) and return its id."""
    flow_run = await run_deployment(UUID(deployment_id), parameters={"n": 2}, timeout=0)
    return str(flow_run.id)


def _hex(value: bytes) -> str:
    return value.hex()


@pytest.mark.parametrize("prefect_run_spans", ["true", "false"])
def test_a_deployment_run_from_a_governed_flow_joins_its_trace(
    receiver: OtlpReceiver,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    prefect_run_spans: str,
) -> None:
    """run_deployment inside a governed flow: the child run, executed by a runner in a
    subprocess, has its `wflo.flow` span under the parent's flow span, same trace; also
    with Prefect's own run spans (which carry the label's context when on) turned off."""
    monkeypatch.setenv("PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY", prefect_run_spans)

    async def scenario() -> tuple[str, dict[str, str]]:
        runner = Runner(name="wflo-trace-runner", query_seconds=1)
        deployment_id = await runner.add_flow(traced_child, name="traced-child")
        child_run_id = await submit(str(deployment_id))
        async with get_client() as client:
            labels = dict((await client.read_flow_run(UUID(child_run_id))).labels)
        await runner.start(run_once=True)
        async with get_client() as client:
            finished = await client.read_flow_run(UUID(child_run_id))
        assert finished.state is not None
        assert finished.state.is_completed(), finished.state
        return child_run_id, labels

    child_run_id, labels = asyncio.run(scenario())
    assert tracing.flush_tracing()
    parent = receiver.wait_for("wflo.flow traced-parent")
    child = receiver.wait_for("wflo.flow traced-child")
    step = receiver.wait_for("wflo.task child-step")
    parent_trace, parent_span = _hex(parent.trace_id), _hex(parent.span_id)
    assert labels[LABEL].startswith(f"00-{parent_trace}-{parent_span}-")
    assert _hex(child.trace_id) == parent_trace
    assert _hex(child.parent_span_id) == parent_span
    assert _hex(step.trace_id) == parent_trace
    assert _hex(step.parent_span_id) == _hex(child.span_id)
    attributes = {a.key: a.value.string_value for a in child.attributes}
    assert attributes["prefect.flow_run.id"] == child_run_id


def test_a_flow_run_created_with_traceparent_labels_joins_the_callers_trace(
    receiver: OtlpReceiver, ledger: Ledger
) -> None:
    """Outside any flow: create the run with traceparent_labels() and the worker's run
    joins the caller's current span."""
    tracer = tracing.get_tracer()

    async def scenario() -> tuple[str, str]:
        runner = Runner(name="wflo-trace-runner-2", query_seconds=1)
        deployment_id = await runner.add_flow(traced_child, name="traced-child-2")
        with tracer.start_as_current_span("release-pipeline") as span:
            async with get_client() as client:
                await client.create_flow_run_from_deployment(
                    deployment_id, parameters={"n": 5}, labels=traceparent_labels()
                )
            ids = span.get_span_context()
        await runner.start(run_once=True)
        return format(ids.trace_id, "032x"), format(ids.span_id, "016x")

    trace_id, span_id = asyncio.run(scenario())
    child = receiver.wait_for("wflo.flow traced-child")
    assert _hex(child.trace_id) == trace_id
    assert _hex(child.parent_span_id) == span_id
