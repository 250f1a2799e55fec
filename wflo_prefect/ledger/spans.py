"""Finished OpenTelemetry spans in the ledger: written by the ledger span sink, read by
``wflo trace``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from wflo_prefect.ledger.models import SpanRow

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["SpanRecord", "SpanRepository"]


class SpanRecord(BaseModel):
    """One stored span."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_time: datetime
    end_time: datetime
    status: str
    status_message: str | None
    flow_run_id: str | None
    attributes: dict[str, Any]
    events: list[Any]


class SpanRepository:
    """Reads and writes ``wflo_spans``."""

    def __init__(self, ledger: Database) -> None:
        self._ledger = ledger

    def record_many(self, spans: list[dict[str, Any]]) -> None:
        """Store several spans in one transaction."""
        if not spans:
            return
        with self._ledger.transaction() as session:
            session.add_all(SpanRow(**s) for s in spans)

    def for_traces(self, trace_ids: list[str]) -> list[SpanRecord]:
        """Every stored span of these traces, by start time."""
        if not trace_ids:
            return []
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(SpanRow)
                .where(SpanRow.trace_id.in_(trace_ids))
                .order_by(SpanRow.start_time, SpanRow.id)
            ).all()
            return [SpanRecord.model_validate(r) for r in rows]

    def trace_ids_of_run(self, flow_run_id: str) -> list[str]:
        """The traces spans tagged with this flow run belong to."""
        with self._ledger.transaction() as session:
            found = session.scalars(
                select(SpanRow.trace_id).where(SpanRow.flow_run_id == flow_run_id).distinct()
            ).all()
            return sorted(found)
