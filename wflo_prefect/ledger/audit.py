"""The audit-event log: what happened under governance, keyed by run and trace ids."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from wflo_prefect.ledger.audit_buffer import AuditBuffer
from wflo_prefect.ledger.ids import new_id
from wflo_prefect.ledger.models import AuditEventRow, utcnow
from wflo_prefect.ledger.records import AuditEvent
from wflo_prefect.observability.correlation import Correlation

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["AuditRepository"]


class AuditRepository:
    """The audit-event log, keyed by flow run id and trace id."""

    def __init__(self, ledger: Database) -> None:
        self._ledger = ledger
        self._buffer = AuditBuffer(self._insert, name=ledger.engine.dialect.name)

    @staticmethod
    def _values(
        event: str,
        correlation: Correlation | None,
        actor: str | None,
        outcome: str | None,
        payload: dict[str, Any] | None,
        occurred_at: datetime | None,
    ) -> dict[str, Any]:
        ids = correlation or Correlation()
        return {
            "id": new_id(),
            "event": event,
            "occurred_at": occurred_at or utcnow(),
            "flow_run_id": ids.flow_run_id,
            "task_run_id": ids.task_run_id,
            "trace_id": ids.trace_id,
            "span_id": ids.span_id,
            "flow_name": ids.flow_name,
            "task_name": ids.task_name,
            "deployment_id": ids.deployment_id,
            "actor": actor,
            "outcome": outcome,
            "payload": payload or {},
        }

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._ledger.begin() as connection:
            connection.execute(insert(AuditEventRow), rows)

    def record(
        self,
        event: str,
        *,
        correlation: Correlation | None = None,
        actor: str | None = None,
        outcome: str | None = None,
        payload: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
    ) -> AuditEvent:
        """Append one event to the log and commit it before returning; return it as stored."""
        values = self._values(event, correlation, actor, outcome, payload, occurred_at)
        with self._ledger.single_statement() as connection:
            connection.execute(insert(AuditEventRow), values)
        return AuditEvent.model_validate(values)

    def append(
        self,
        event: str,
        *,
        correlation: Correlation | None = None,
        outcome: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Append one event, committed off the caller's path within a few tens of ms.

        For the high-volume events on the path of every governed task (its start and
        end); see :mod:`wflo_prefect.ledger.audit_buffer` for what a crash may lose.
        Reads through this repository, and :meth:`flush`, see every appended event.
        """
        self._ledger.ensure_schema()  # a ledger that cannot be opened fails the caller
        self._buffer.append(self._values(event, correlation, None, outcome, payload, None))

    def flush(self) -> None:
        """Commit every event appended so far."""
        self._buffer.flush()

    def close(self) -> None:
        """Commit what is appended and stop the writer (the ledger is being disposed)."""
        self._buffer.close()

    def _rows(self, query: Any) -> list[AuditEvent]:
        self._buffer.flush()
        with self._ledger.transaction() as session:
            return [AuditEvent.model_validate(r) for r in session.scalars(query).all()]

    def for_flow_run(self, flow_run_id: str) -> list[AuditEvent]:
        """Every event of one flow run (its tasks included), oldest first."""
        return self._rows(
            select(AuditEventRow)
            .where(AuditEventRow.flow_run_id == flow_run_id)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )

    def for_trace(self, trace_id: str) -> list[AuditEvent]:
        """Every event sharing one trace id, oldest first."""
        return self._rows(
            select(AuditEventRow)
            .where(AuditEventRow.trace_id == trace_id)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )

    def recent(self, limit: int = 50, *, event_prefix: str | None = None) -> list[AuditEvent]:
        """The newest ``limit`` events, newest first, optionally of one kind."""
        query = select(AuditEventRow)
        if event_prefix:
            query = query.where(AuditEventRow.event.startswith(event_prefix))
        return self._rows(
            query.order_by(AuditEventRow.occurred_at.desc(), AuditEventRow.id).limit(limit)
        )
