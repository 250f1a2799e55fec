"""Approval requests and decisions in the ledger (the only SQL of approval gates).

A decision is recorded in one transaction with the check that admits it and the
status change it causes, so two approvers answering at once can never both
settle a request, and the same approver or nonce is never counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from wflo_prefect.ledger.models import (
    ApprovalDecisionRow,
    ApprovalRequestRow,
    AuditEventRow,
    utcnow,
)

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database as Ledger

__all__ = ["Admit", "ApprovalRepository", "ApprovalRequestRecord", "ApprovalVoteRecord", "Tally"]

PENDING = "pending"


class ApprovalRequestRecord(BaseModel):
    """An approval request as stored."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    flow_run_id: str | None = None
    task_run_id: str | None = None
    action: str
    details: dict[str, Any] = Field(default_factory=dict)
    digest: str
    approvers: list[Any] = Field(default_factory=list)
    quorum: int = 1
    requested_by: str | None = None
    status: str = PENDING
    tier: int = 0
    keyset: str | None = None
    created_at: datetime
    deadline_at: datetime | None = None
    expires_at: datetime | None = None
    decided_at: datetime | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class ApprovalVoteRecord(BaseModel):
    """One approver's recorded answer."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    request_id: str
    approver: str
    approved: bool
    comment: str | None = None
    channel: str
    digest: str
    nonce: str | None = None
    decided_at: datetime


#: Called inside the decision's transaction with the request, its votes and whether
#: the vote's nonce was already used: raise to refuse the vote.
Admit = Callable[[ApprovalRequestRecord, list[ApprovalVoteRecord], bool], None]
#: Called with every vote (the new one last): the new status, or None to stay pending.
Tally = Callable[[ApprovalRequestRecord, list[ApprovalVoteRecord]], str | None]


class ApprovalRepository:
    """Approval requests and their decisions."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def create(self, **fields: Any) -> ApprovalRequestRecord:
        """Store a new request; ``fields`` are the columns of ``wflo_approval_requests``."""
        with self._ledger.transaction() as session:
            row = ApprovalRequestRow(**fields)
            session.add(row)
            session.flush()
            return ApprovalRequestRecord.model_validate(row)

    def get(self, request_id: str) -> ApprovalRequestRecord | None:
        """The request with this id (a unique id prefix of 8+ characters also works)."""
        with self._ledger.transaction() as session:
            row = session.get(ApprovalRequestRow, request_id)
            if row is None and len(request_id) >= 8:
                rows = session.scalars(
                    select(ApprovalRequestRow)
                    .where(ApprovalRequestRow.id.startswith(request_id))
                    .limit(2)
                ).all()
                row = rows[0] if len(rows) == 1 else None
            return ApprovalRequestRecord.model_validate(row) if row else None

    def find_open(
        self, flow_run_id: str, task_run_id: str | None, digest: str
    ) -> ApprovalRequestRecord | None:
        """The newest request of this run and digest whose outcome was not yet applied."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(ApprovalRequestRow)
                .where(
                    ApprovalRequestRow.flow_run_id == flow_run_id,
                    ApprovalRequestRow.digest == digest,
                )
                .order_by(ApprovalRequestRow.created_at.desc())
            ).all()
            for row in rows:
                same_task = task_run_id is None or row.task_run_id in (None, task_run_id)
                if same_task and not row.settings.get("applied"):
                    return ApprovalRequestRecord.model_validate(row)
            return None

    def list_requests(
        self, *, status: str | None = None, limit: int = 50
    ) -> list[ApprovalRequestRecord]:
        """Requests, newest first, optionally of one status."""
        with self._ledger.transaction() as session:
            query = select(ApprovalRequestRow)
            if status:
                query = query.where(ApprovalRequestRow.status == status)
            rows = session.scalars(
                query.order_by(ApprovalRequestRow.created_at.desc()).limit(limit)
            ).all()
            return [ApprovalRequestRecord.model_validate(r) for r in rows]

    def votes(self, request_id: str) -> list[ApprovalVoteRecord]:
        """Every decision recorded for a request, oldest first."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(ApprovalDecisionRow)
                .where(ApprovalDecisionRow.request_id == request_id)
                .order_by(ApprovalDecisionRow.decided_at, ApprovalDecisionRow.id)
            ).all()
            return [ApprovalVoteRecord.model_validate(r) for r in rows]

    def nonce_used(self, nonce: str) -> bool:
        """Whether a decision with this nonce was already recorded."""
        with self._ledger.transaction() as session:
            found = session.scalar(
                select(ApprovalDecisionRow.id).where(ApprovalDecisionRow.nonce == nonce)
            )
            return found is not None

    def record_vote(
        self,
        request_id: str,
        *,
        approver: str,
        approved: bool,
        comment: str | None,
        channel: str,
        digest: str,
        nonce: str | None,
        admit: Admit,
        tally: Tally,
    ) -> tuple[ApprovalRequestRecord, ApprovalVoteRecord]:
        """Admit, store and count one vote atomically; return the request after it."""
        with self._ledger.transaction() as session:
            query = select(ApprovalRequestRow).where(ApprovalRequestRow.id == request_id)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                query = query.with_for_update()
            row = session.scalars(query).one()
            existing = session.scalars(
                select(ApprovalDecisionRow)
                .where(ApprovalDecisionRow.request_id == request_id)
                .order_by(ApprovalDecisionRow.decided_at, ApprovalDecisionRow.id)
            ).all()
            votes = [ApprovalVoteRecord.model_validate(v) for v in existing]
            nonce_seen = nonce is not None and (
                session.scalar(
                    select(ApprovalDecisionRow.id).where(ApprovalDecisionRow.nonce == nonce)
                )
                is not None
            )
            admit(ApprovalRequestRecord.model_validate(row), votes, nonce_seen)
            vote_row = ApprovalDecisionRow(
                request_id=request_id,
                approver=approver,
                approved=approved,
                comment=comment,
                channel=channel,
                digest=digest,
                nonce=nonce,
                decided_at=utcnow(),
            )
            session.add(vote_row)
            session.flush()
            vote = ApprovalVoteRecord.model_validate(vote_row)
            status = tally(ApprovalRequestRecord.model_validate(row), [*votes, vote])
            if status is not None:
                row.status = status
                row.decided_at = vote.decided_at
            session.flush()
            return ApprovalRequestRecord.model_validate(row), vote

    def transition(
        self,
        request_id: str,
        *,
        from_statuses: Sequence[str],
        to_status: str | None = None,
        settings: dict[str, Any] | None = None,
        **columns: Any,
    ) -> ApprovalRequestRecord | None:
        """Change a request only if its status is one of ``from_statuses``.

        ``settings`` is merged into the stored settings. Returns the changed
        request, or ``None`` when its status had moved on (someone else won).
        """
        with self._ledger.transaction() as session:
            query = select(ApprovalRequestRow).where(
                ApprovalRequestRow.id == request_id,
                ApprovalRequestRow.status.in_(list(from_statuses)),
            )
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                query = query.with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                return None
            if to_status is not None and to_status != row.status:
                row.status = to_status
                row.decided_at = utcnow()
            for name, value in columns.items():
                setattr(row, name, value)
            if settings:
                row.settings = {**row.settings, **settings}
            session.flush()
            return ApprovalRequestRecord.model_validate(row)

    def due(self, now: datetime) -> list[ApprovalRequestRecord]:
        """Pending requests whose current deadline has passed."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(ApprovalRequestRow).where(
                    ApprovalRequestRow.status == PENDING,
                    ApprovalRequestRow.deadline_at.is_not(None),
                    ApprovalRequestRow.deadline_at <= now,
                )
            ).all()
            return [ApprovalRequestRecord.model_validate(r) for r in rows]

    def unapplied(self) -> list[ApprovalRequestRecord]:
        """Requests decided or timed out whose outcome no waiting run has applied yet."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(ApprovalRequestRow).where(ApprovalRequestRow.status != PENDING)
            ).all()
            return [
                ApprovalRequestRecord.model_validate(r)
                for r in rows
                if not r.settings.get("applied")
            ]

    def touch(self, request_id: str, **settings: Any) -> None:
        """Merge ``settings`` into a request's settings, whatever its status."""
        with self._ledger.transaction() as session:
            row = session.get(ApprovalRequestRow, request_id)
            if row is not None:
                row.settings = {**row.settings, **settings}

    def refusals(
        self, request: ApprovalRequestRecord, *, actor: str, outcome: str, channel: str
    ) -> int:
        """How many ``approval.refused`` entries the audit log holds for this answerer.

        The audit log is append-only, so counts derived from it (the Prefect UI
        form's lock-out after wrong codes) cannot be lost by a concurrent writer.
        """
        with self._ledger.transaction() as session:
            query = select(AuditEventRow.payload).where(
                AuditEventRow.event == "approval.refused",
                AuditEventRow.actor == actor,
                AuditEventRow.outcome == outcome,
            )
            if request.flow_run_id:
                query = query.where(AuditEventRow.flow_run_id == request.flow_run_id)
            payloads = session.scalars(query).all()
            return sum(
                1
                for p in payloads
                if p.get("request_id") == request.id and p.get("channel") == channel
            )
