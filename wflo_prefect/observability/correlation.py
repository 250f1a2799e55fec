"""Correlation ids of the code running now: Prefect run ids and the OTel trace."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from prefect.context import FlowRunContext, TaskRunContext

__all__ = ["Correlation", "current_correlation"]


@dataclass(frozen=True, slots=True)
class Correlation:
    """The ids that tie a log line, a span, a ledger row and a Prefect run together."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_name: str | None = None
    task_name: str | None = None
    deployment_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The ids that are set, by name."""
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}


def current_correlation() -> Correlation:
    """Read the ids from Prefect's run context and the current OTel span."""
    flow_run_id = task_run_id = flow_name = task_name = deployment_id = None
    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        task_run_id = str(task_ctx.task_run.id)
        task_name = task_ctx.task.name
        if task_ctx.task_run.flow_run_id is not None:
            flow_run_id = str(task_ctx.task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        flow_run_id = flow_run_id or str(flow_ctx.flow_run.id)
        if flow_ctx.flow is not None:
            flow_name = flow_ctx.flow.name
        if flow_ctx.flow_run.deployment_id is not None:
            deployment_id = str(flow_ctx.flow_run.deployment_id)
    trace_id = span_id = None
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        trace_id = format(span_context.trace_id, "032x")
        span_id = format(span_context.span_id, "016x")
    return Correlation(
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        flow_name=flow_name,
        task_name=task_name,
        deployment_id=deployment_id,
        trace_id=trace_id,
        span_id=span_id,
    )
