"""Helpers for testing code that uses wflo-prefect (yours and ours).

Like ``structlog.testing``, these are public and stable::

    from wflo_prefect.testing import temporary_ledger, audit_trail

    def test_my_flow_is_governed():
        with temporary_ledger():
            state = my_flow(return_state=True)
            events = audit_trail(state)
            assert [e.event for e in events][0] == "flow_run.started"
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wflo_prefect.ledger import AuditEvent, Ledger, get_ledger, reset_ledger_cache
from wflo_prefect.observability.logging import ROOT_LOGGER, configure_logging
from wflo_prefect.observability.tracing import set_tracer_provider

__all__ = [
    "audit_trail",
    "capture_logs",
    "capture_spans",
    "finished_span_names",
    "temporary_ledger",
]

_LEDGER_ENV = "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"


@contextmanager
def temporary_ledger(url: str | None = None) -> Iterator[Ledger]:
    """Point wflo at a fresh ledger for the duration of the block.

    Without ``url``, a SQLite file in a temporary directory, removed afterwards.
    With ``url`` (e.g. a PostgreSQL test database) that database is used as is.
    """
    previous = os.environ.get(_LEDGER_ENV)
    with tempfile.TemporaryDirectory(prefix="wflo-ledger-") as tmp:
        target = url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        os.environ[_LEDGER_ENV] = target
        reset_ledger_cache()
        try:
            yield get_ledger()
        finally:
            reset_ledger_cache()
            if previous is None:
                os.environ.pop(_LEDGER_ENV, None)
            else:
                os.environ[_LEDGER_ENV] = previous


def audit_trail(run: Any, ledger: Ledger | None = None) -> list[AuditEvent]:
    """The audit events of a flow run, given its id or a Prefect ``State`` of it."""
    state_details = getattr(run, "state_details", None)
    flow_run_id = str(state_details.flow_run_id) if state_details is not None else str(run)
    return (ledger or get_ledger()).audit.for_flow_run(flow_run_id)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(json.loads(record.getMessage()))
        except ValueError:
            self.records.append({"message": record.getMessage(), "logger": record.name})


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Collect wflo's structured log lines (as dicts) emitted inside the block."""
    configure_logging()
    handler = _ListHandler()
    logger = logging.getLogger(ROOT_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Record wflo's OpenTelemetry spans in memory inside the block."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        set_tracer_provider(None)
        provider.shutdown()


def finished_span_names(exporter: InMemorySpanExporter) -> list[str]:
    """Names of the spans an exporter from :func:`capture_spans` holds."""
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    return [s.name for s in spans]
