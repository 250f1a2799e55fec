"""The ledger span sink: finished spans stored in the ledger, for ``wflo trace RUN_ID``.

Opt in with ``PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER=true``: wflo's own tracer
provider then also writes its (scrubbed) spans to the ``wflo_spans`` table, in
batches, besides any OTLP or console exporter. With your own provider, add
``BatchSpanProcessor(ScrubbingSpanExporter(LedgerSpanExporter()))`` to it.
For production volumes prefer a collector (Jaeger, Tempo): the sink is for teams
with no tracing backend, and for one run's story in the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from wflo_prefect.observability.logging import get_logger

__all__ = ["LedgerSpanExporter", "span_row"]

_log = get_logger("tracing")


def _when(nanos: int | None) -> datetime:
    return datetime.fromtimestamp((nanos or 0) / 1e9, UTC)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def span_row(span: ReadableSpan) -> dict[str, Any]:
    """The ``wflo_spans`` row of one finished span."""
    context = span.get_span_context()
    assert context is not None
    attributes = {k: _plain(v) for k, v in (span.attributes or {}).items()}
    flow_run_id = attributes.get("prefect.flow_run.id")
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name[:255],
        "kind": span.kind.name,
        "start_time": _when(span.start_time),
        "end_time": _when(span.end_time),
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "flow_run_id": flow_run_id if isinstance(flow_run_id, str) else None,
        "attributes": attributes,
        "events": [
            {
                "name": e.name,
                "time": _when(e.timestamp).isoformat(),
                "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()},
            }
            for e in span.events
        ],
    }


class LedgerSpanExporter(SpanExporter):
    """Writes finished spans to the ledger's ``wflo_spans`` table."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store one batch in one transaction; a ledger error drops the batch (logged)."""
        from wflo_prefect.ledger import get_ledger

        try:
            get_ledger().spans.record_many([span_row(s) for s in spans])
        except Exception as exc:
            _log.warning("tracing.ledger_export_failed", spans=len(spans), error=str(exc))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release (the ledger is shared)."""
