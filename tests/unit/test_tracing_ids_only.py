"""Spans that go nowhere keep their ids and record nothing (no exporter configured)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wflo_prefect.observability import tracing
from wflo_prefect.observability.correlation import current_correlation

SETTINGS = (
    "PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER",
    "PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER",
    "PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.fixture
def no_exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    tracing.set_tracer_provider(None)
    tracing.reset_tracing()
    yield
    monkeypatch.undo()
    tracing.reset_tracing()


def test_spans_that_go_nowhere_have_real_ids_and_record_nothing(no_exporter: None) -> None:
    assert not tracing.spans_leave_process()
    tracer = tracing.get_tracer()
    with tracer.start_as_current_span("wflo.flow f") as outer:
        with tracer.start_as_current_span("wflo.task t") as inner:
            ids = current_correlation()
            assert not inner.is_recording()
        assert trace.get_current_span() is outer
        assert not outer.is_recording()
    assert trace.get_current_span() is not outer
    flow_ctx, task_ctx = outer.get_span_context(), inner.get_span_context()
    assert flow_ctx.is_valid
    assert task_ctx.is_valid
    assert task_ctx.trace_id == flow_ctx.trace_id
    assert task_ctx.span_id != flow_ctx.span_id
    assert task_ctx.trace_flags.sampled
    assert ids.trace_id == format(task_ctx.trace_id, "032x")
    assert ids.span_id == format(task_ctx.span_id, "016x")


def test_their_sampling_decision_is_the_one_an_exporting_process_follows(
    no_exporter: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new trace is sampled by the configured rate; a process that exports and continues
    the trace (a worker's flow run) records its spans under this one's ids."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE", "0")
    tracing.reset_tracing()
    with tracing.get_tracer().start_as_current_span("unsampled") as span:
        assert not span.get_span_context().trace_flags.sampled
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE", "1")
    tracing.reset_tracing()
    exported = InMemorySpanExporter()
    elsewhere = TracerProvider()
    elsewhere.add_span_processor(SimpleSpanProcessor(exported))
    with (
        tracing.get_tracer().start_as_current_span("submitter") as submitter,
        elsewhere.get_tracer("worker").start_as_current_span("wflo.flow child"),
    ):
        pass
    [child] = exported.get_finished_spans()
    assert child.parent is not None
    assert child.parent.span_id == submitter.get_span_context().span_id
    assert child.context is not None
    assert child.context.trace_id == submitter.get_span_context().trace_id
