"""W3C trace context carried in a flow run's labels, the way Prefect itself carries it.

Prefect 3 keeps a run's ``traceparent`` in the flow run label ``__OTEL_TRACEPARENT``:
``run_deployment`` sets it from the calling flow run's label (or, outside a flow run,
from the current span when OpenTelemetry instrumentation is installed), and Prefect's
engine starts the run's span under it. Without a global SDK tracer provider that span
is not recorded and the context is lost at the worker. wflo closes the gap:

- a governed flow run that starts with no active span takes the label as the parent
  of its ``wflo.flow`` span, so a run a worker executes joins the submitter's trace;
- a governed flow run with no label writes its own span's ``traceparent`` into its
  (in-memory) labels, so ``run_deployment`` calls from inside it carry it on;
- :func:`traceparent_labels` gives the labels to pass when creating a flow run
  yourself (``PrefectClient.create_flow_run_from_deployment(..., labels=...)``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["LABEL", "flow_run_parent_context", "remember_traceparent", "traceparent_labels"]

#: The flow run label Prefect keeps the W3C ``traceparent`` in.
LABEL = "__OTEL_TRACEPARENT"

_w3c = TraceContextTextMapPropagator()


def _flow_run() -> Any:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context.flow_run if context is not None else None


def flow_run_parent_context() -> Context | None:
    """The context a governed flow's span starts in: the label's, when no span is active."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    flow_run = _flow_run()
    labels = getattr(flow_run, "labels", None) or {}
    traceparent = labels.get(LABEL)
    if not isinstance(traceparent, str):
        return None
    context = _w3c.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def remember_traceparent(span: Span) -> None:
    """Keep ``span``'s traceparent in the current flow run's labels (if it has none)."""
    flow_run = _flow_run()
    labels = getattr(flow_run, "labels", None)
    if labels is None or LABEL in labels or not span.get_span_context().is_valid:
        return
    carrier: dict[str, str] = {}
    _w3c.inject(carrier, context=trace.set_span_in_context(span))
    if "traceparent" in carrier:
        labels[LABEL] = carrier["traceparent"]


def traceparent_labels(span: Span | None = None) -> dict[str, str]:
    """``{"__OTEL_TRACEPARENT": ...}`` for ``span`` (default: the current span), or ``{}``."""
    carrier: dict[str, str] = {}
    current = span if span is not None else trace.get_current_span()
    if current.get_span_context().is_valid:
        _w3c.inject(carrier, context=trace.set_span_in_context(current))
    return {LABEL: carrier["traceparent"]} if "traceparent" in carrier else {}
