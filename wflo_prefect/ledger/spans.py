"""Finished OpenTelemetry spans in the ledger: written by the ledger span sink, read by
``wflo trace``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from wflo_prefect.ledger.ids import new_id
from wflo_prefect.ledger.models import Base, UTCDateTime

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["SpanRecord", "SpanRepository", "SpanRow"]


class SpanRow(Base):
    """One finished OpenTelemetry span, kept when the ledger span sink is on."""

    __tablename__ = "wflo_spans"
    __table_args__ = (
        Index("ix_wflo_span_trace", "trace_id"),
        Index("ix_wflo_span_flow_run", "flow_run_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    events: Mapped[list[Any]] = mapped_column(default=list)


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
