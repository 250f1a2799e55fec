"""The durable compensation log and the snapshots, in the ledger.

A compensation moves ``pending`` → ``running`` (claimed by one process with a
conditional update, so two processes never run it at once) → ``done`` or back to
``pending`` (retry) or ``failed`` (attempts used up). When its run succeeds,
pending compensations become ``released`` and never run. A ``running`` row whose
process died is claimable again once its lease has run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from wflo_prefect.errors import LedgerError
from wflo_prefect.ledger.models import CompensationRow, SnapshotRow, utcnow

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["CompensationRecord", "CompensationRepository", "SnapshotRecord"]


class CompensationRecord(BaseModel):
    """One registered compensating action."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    flow_run_id: str
    task_run_id: str | None
    seq: int
    name: str
    handler: str
    arguments: dict[str, Any]
    idempotency_key: str
    status: str
    attempts: int
    max_attempts: int
    retry_delay_s: float
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SnapshotRecord(BaseModel):
    """A named snapshot of run state."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    flow_run_id: str | None
    task_run_id: str | None
    name: str
    data: dict[str, Any]
    created_at: datetime


class CompensationRepository:
    """Reads and writes ``wflo_compensations`` and ``wflo_snapshots``."""

    def __init__(self, ledger: Database) -> None:
        self._ledger = ledger

    def register(self, **fields: Any) -> tuple[CompensationRecord, bool]:
        """Store a compensation; with a known idempotency key, return the stored one.

        Returns the record and whether it is new.
        """
        try:
            with self._ledger.transaction() as session:
                row = CompensationRow(**fields)
                session.add(row)
                session.flush()
                return CompensationRecord.model_validate(row), True
        except LedgerError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        existing = self.by_key(fields["idempotency_key"])
        assert existing is not None
        return existing, False

    def get(self, compensation_id: str) -> CompensationRecord | None:
        """The compensation with this id."""
        with self._ledger.transaction() as session:
            row = session.get(CompensationRow, compensation_id)
            return None if row is None else CompensationRecord.model_validate(row)

    def by_key(self, idempotency_key: str) -> CompensationRecord | None:
        """The compensation with this idempotency key."""
        with self._ledger.transaction() as session:
            row = session.scalars(
                select(CompensationRow).where(CompensationRow.idempotency_key == idempotency_key)
            ).one_or_none()
            return None if row is None else CompensationRecord.model_validate(row)

    def for_flow_run(self, flow_run_id: str) -> list[CompensationRecord]:
        """A run's compensations in registration order."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(CompensationRow)
                .where(CompensationRow.flow_run_id == flow_run_id)
                .order_by(CompensationRow.seq)
            ).all()
            return [CompensationRecord.model_validate(r) for r in rows]

    def claim(self, compensation_id: str, *, lease: timedelta) -> bool:
        """Take a compensation to run it now; False if another process has it or it is over."""
        now = utcnow()
        with self._ledger.transaction() as session:
            result = session.execute(
                update(CompensationRow)
                .where(
                    CompensationRow.id == compensation_id,
                    or_(
                        CompensationRow.status == "pending",
                        and_(
                            CompensationRow.status == "running",
                            CompensationRow.updated_at < now - lease,
                        ),
                    ),
                    CompensationRow.attempts < CompensationRow.max_attempts,
                )
                .values(status="running", attempts=CompensationRow.attempts + 1, updated_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish(self, compensation_id: str, *, status: str, error: str | None = None) -> None:
        """Record the end of an attempt: ``done``, ``pending`` (to retry) or ``failed``."""
        with self._ledger.transaction() as session:
            session.execute(
                update(CompensationRow)
                .where(CompensationRow.id == compensation_id)
                .values(status=status, last_error=error, updated_at=utcnow())
            )

    def release_run(self, flow_run_id: str) -> int:
        """Mark a successful run's pending compensations ``released``; return how many."""
        with self._ledger.transaction() as session:
            result = session.execute(
                update(CompensationRow)
                .where(
                    CompensationRow.flow_run_id == flow_run_id,
                    CompensationRow.status == "pending",
                )
                .values(status="released", updated_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def runs_with_pending(self) -> list[str]:
        """Flow runs that still have compensations to run."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(CompensationRow.flow_run_id)
                .where(CompensationRow.status.in_(("pending", "running")))
                .distinct()
            ).all()
            return list(rows)

    # -- snapshots ------------------------------------------------------------------

    def save_snapshot(
        self, *, flow_run_id: str | None, task_run_id: str | None, name: str, data: dict[str, Any]
    ) -> SnapshotRecord:
        """Store a snapshot."""
        with self._ledger.transaction() as session:
            row = SnapshotRow(
                flow_run_id=flow_run_id, task_run_id=task_run_id, name=name, data=data
            )
            session.add(row)
            session.flush()
            return SnapshotRecord.model_validate(row)

    def snapshots(
        self,
        *,
        flow_run_id: str | None = None,
        name: str | None = None,
        snapshot_id: str | None = None,
        at_or_before: datetime | None = None,
    ) -> list[SnapshotRecord]:
        """Snapshots matching every filter given, newest first."""
        with self._ledger.transaction() as session:
            query = select(SnapshotRow)
            if flow_run_id is not None:
                query = query.where(SnapshotRow.flow_run_id == flow_run_id)
            if name is not None:
                query = query.where(SnapshotRow.name == name)
            if snapshot_id is not None:
                query = query.where(SnapshotRow.id == snapshot_id)
            if at_or_before is not None:
                query = query.where(SnapshotRow.created_at <= at_or_before)
            rows = session.scalars(
                query.order_by(SnapshotRow.created_at.desc(), SnapshotRow.id)
            ).all()
            return [SnapshotRecord.model_validate(r) for r in rows]
