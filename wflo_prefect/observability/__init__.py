"""Observability: correlation ids, structured logs, OpenTelemetry spans, Prometheus metrics."""

from wflo_prefect.observability.correlation import Correlation, current_correlation
from wflo_prefect.observability.logging import configure_logging, get_logger
from wflo_prefect.observability.tracing import get_tracer, set_tracer_provider

__all__ = [
    "Correlation",
    "configure_logging",
    "current_correlation",
    "get_logger",
    "get_tracer",
    "set_tracer_provider",
]
