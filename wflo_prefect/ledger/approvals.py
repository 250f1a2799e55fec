"""Approval requests and decisions in the ledger (the only SQL of approval gates).

A decision is recorded in one transaction with the check that admits it and the
status change it causes, so two approvers answering at once can never both
settle a request, and the same approver or nonce is never counted twice.

Every later change is one targeted statement on its own column or row: the
waiter's heartbeat upserts its row in ``wflo_approval_waiters``, a channel's
delivery reference its row in ``wflo_approval_deliveries``, and the lifecycle
marks (``resumed_at``, ``closed_at``, ``applied_at``) are conditional
``UPDATE ... WHERE <mark> IS NULL`` statements whose row count says who won. No
writer rewrites what another one owns, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from wflo_prefect.ledger.approval_records import (
    PENDING,
    Admit,
    ApprovalRequestRecord,
    ApprovalVoteRecord,
    ApprovalWaiterRecord,
    RequestPolicy,
    Tally,
    VoteOutcome,
)
from wflo_prefect.ledger.models import (
    ApprovalDecisionRow,
    ApprovalDeliveryRow,
    ApprovalRequestRow,
    ApprovalWaiterRow,
    AuditEventRow,
    utcnow,
)
from wflo_prefect.ledger.statements import locked as _locked
from wflo_prefect.ledger.statements import upsert as _upsert

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database as Ledger

__all__ = [
    "Admit",
    "ApprovalRepository",
    "ApprovalRequestRecord",
    "ApprovalVoteRecord",
    "ApprovalWaiterRecord",
    "RequestPolicy",
    "Tally",
    "VoteOutcome",
]

_Request = ApprovalRequestRow


def _record(row: ApprovalRequestRow) -> ApprovalRequestRecord:
    return ApprovalRequestRecord.model_validate(row)


def _rowcount(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


class ApprovalRepository:
    """Approval requests, their decisions, waiters and deliveries."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    # --- requests -------------------------------------------------------------------

    def create(
        self, *, policy: RequestPolicy | Mapping[str, Any] | None = None, **fields: Any
    ) -> ApprovalRequestRecord:
        """Store a new request with its frozen ``policy``; ``fields`` are its other columns."""
        snapshot = RequestPolicy.model_validate(policy or {})
        with self._ledger.transaction() as session:
            row = ApprovalRequestRow(**fields, policy=snapshot.model_dump(mode="json"))
            session.add(row)
            session.flush()
            return _record(row)

    def get(self, request_id: str) -> ApprovalRequestRecord | None:
        """The request with this id (a unique id prefix of 8+ characters also works)."""
        with self._ledger.transaction() as session:
            row = session.get(ApprovalRequestRow, request_id)
            if row is None and len(request_id) >= 8:
                rows = session.scalars(
                    select(_Request).where(_Request.id.startswith(request_id)).limit(2)
                ).all()
                row = rows[0] if len(rows) == 1 else None
            return _record(row) if row else None

    def with_votes(
        self, request_id: str
    ) -> tuple[ApprovalRequestRecord, list[ApprovalVoteRecord]] | None:
        """The request and its votes (oldest first), read in one transaction."""
        with self._ledger.transaction() as session:
            row = session.get(ApprovalRequestRow, request_id)
            if row is None:
                return None
            return _record(row), self._votes(session, request_id)

    def find_open(
        self, flow_run_id: str, task_run_id: str | None, digest: str
    ) -> ApprovalRequestRecord | None:
        """The newest request of this run and digest whose outcome was not yet applied."""
        query = select(_Request).where(
            _Request.flow_run_id == flow_run_id,
            _Request.digest == digest,
            _Request.applied_at.is_(None),
        )
        if task_run_id is not None:
            query = query.where(
                or_(_Request.task_run_id.is_(None), _Request.task_run_id == task_run_id)
            )
        with self._ledger.transaction() as session:
            row = session.scalars(query.order_by(_Request.created_at.desc()).limit(1)).first()
            return _record(row) if row else None

    def list_requests(
        self, *, status: str | None = None, limit: int = 50
    ) -> list[ApprovalRequestRecord]:
        """Requests, newest first, optionally of one status."""
        with self._ledger.transaction() as session:
            query = select(_Request)
            if status:
                query = query.where(_Request.status == status)
            rows = session.scalars(query.order_by(_Request.created_at.desc()).limit(limit)).all()
            return [_record(r) for r in rows]

    def due(self, now: datetime) -> list[ApprovalRequestRecord]:
        """Pending requests whose current deadline has passed."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(_Request).where(
                    _Request.status == PENDING,
                    _Request.deadline_at.is_not(None),
                    _Request.deadline_at <= now,
                )
            ).all()
            return [_record(r) for r in rows]

    def unapplied(self) -> list[ApprovalRequestRecord]:
        """Requests decided or timed out whose outcome no waiting run has applied yet."""
        with self._ledger.transaction() as session:
            rows = session.scalars(
                select(_Request).where(_Request.applied_at.is_(None), _Request.status != PENDING)
            ).all()
            return [_record(r) for r in rows]

    # --- votes ----------------------------------------------------------------------

    @staticmethod
    def _votes(session: Session, request_id: str) -> list[ApprovalVoteRecord]:
        rows = session.scalars(
            select(ApprovalDecisionRow)
            .where(ApprovalDecisionRow.request_id == request_id)
            .order_by(ApprovalDecisionRow.decided_at, ApprovalDecisionRow.id)
        ).all()
        return [ApprovalVoteRecord.model_validate(r) for r in rows]

    def votes(self, request_id: str) -> list[ApprovalVoteRecord]:
        """Every decision recorded for a request, oldest first."""
        with self._ledger.transaction() as session:
            return self._votes(session, request_id)

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
        resumed: bool = False,
    ) -> VoteOutcome:
        """Admit, store and count one vote atomically.

        Returns the request after the vote, the vote and every vote so far (what
        the decision is built from), read once under the request's row lock.
        ``resumed`` says the run already runs again (the vote came with the resume,
        as a Prefect UI answer does): a vote that settles the request then also
        claims the resume (``resumed_at``) in the same transaction, so nobody else
        resumes it and no second write is needed.
        """
        with self._ledger.transaction() as session:
            query = select(_Request).where(_Request.id == request_id)
            row = session.scalars(_locked(session, query)).one()
            votes = self._votes(session, request_id)
            nonce_seen = nonce is not None and (
                session.scalar(
                    select(ApprovalDecisionRow.id).where(ApprovalDecisionRow.nonce == nonce)
                )
                is not None
            )
            before = _record(row)
            admit(before, votes, nonce_seen)
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
            every = [*votes, vote]
            status = tally(before, every)
            if status is not None:
                settled: dict[str, Any] = {"status": status, "decided_at": vote.decided_at}
                if resumed and row.resumed_at is None:
                    settled["resumed_at"] = vote.decided_at
                session.execute(update(_Request).where(_Request.id == request_id).values(settled))
                session.refresh(row)
            return VoteOutcome(request=_record(row), vote=vote, votes=every)

    # --- lifecycle ------------------------------------------------------------------

    def transition(
        self,
        request_id: str,
        *,
        from_statuses: Sequence[str],
        to_status: str | None = None,
        **columns: Any,
    ) -> ApprovalRequestRecord | None:
        """Change a request only if its status is one of ``from_statuses``.

        ``columns`` are other columns to set in the same statement. Returns the
        changed request, or ``None`` when its status had moved on (someone else won).
        """
        values = dict(columns)
        if to_status is not None:
            values["status"] = to_status
            values["decided_at"] = utcnow()
        with self._ledger.transaction() as session:
            row = session.scalars(
                _locked(
                    session,
                    select(_Request).where(
                        _Request.id == request_id, _Request.status.in_(list(from_statuses))
                    ),
                )
            ).one_or_none()
            if row is None:
                return None
            if to_status == row.status:
                del values["status"]
                del values["decided_at"]
            if values:
                session.execute(update(_Request).where(_Request.id == request_id).values(**values))
                session.refresh(row)
            return _record(row)

    def _mark(self, request_id: str, column: str, **extra: Any) -> bool:
        """Set ``column`` to now where it is still NULL; True for the one caller that did."""
        mark = getattr(_Request, column)
        with self._ledger.transaction() as session:
            result = session.execute(
                update(_Request)
                .where(_Request.id == request_id, mark.is_(None), _Request.status != PENDING)
                .values({column: utcnow(), **extra})
            )
            return _rowcount(result) == 1

    def claim_resume(self, request_id: str) -> bool:
        """Claim resuming the settled request's paused run; True for exactly one caller."""
        return self._mark(request_id, "resumed_at")

    def release_resume(self, request_id: str) -> None:
        """Give a resume claim back (the claimer found the run not paused, or failed)."""
        with self._ledger.transaction() as session:
            session.execute(
                update(_Request).where(_Request.id == request_id).values(resumed_at=None)
            )

    def claim_close(self, request_id: str) -> bool:
        """Claim telling the channels the request is settled; True for exactly one caller."""
        return self._mark(request_id, "closed_at")

    def mark_applied(self, request_id: str, by: str) -> bool:
        """Record that the outcome was applied to the run (by ``gate`` or ``sweep``)."""
        return self._mark(request_id, "applied_at", applied_by=by)

    # --- the waiter -----------------------------------------------------------------

    def beat(self, request_id: str, *, wake: str | None, host: str, pid: int, token: str) -> None:
        """The waiting process says it is alive (and where to wake it): its own row only."""
        values = {
            "request_id": request_id,
            "wake": wake,
            "host": host,
            "pid": pid,
            "token": token,
            "heartbeat_at": utcnow(),
        }
        with self._ledger.transaction() as session:
            _upsert(
                session,
                ApprovalWaiterRow.__table__,  # type: ignore[arg-type]
                values,
                ["request_id"],
                ["wake", "host", "pid", "token", "heartbeat_at"],
            )

    def waiter(self, request_id: str) -> ApprovalWaiterRecord | None:
        """The process waiting at the request's gate, as it last reported (None: none)."""
        with self._ledger.transaction() as session:
            row = session.get(ApprovalWaiterRow, request_id)
            return ApprovalWaiterRecord.model_validate(row) if row else None

    # --- deliveries -----------------------------------------------------------------

    def record_delivery(
        self, request_id: str, tier: int, position: int, ref: Mapping[str, Any]
    ) -> None:
        """Store what the channel at ``position`` of ``tier`` returned: its own row only."""
        with self._ledger.transaction() as session:
            _upsert(
                session,
                ApprovalDeliveryRow.__table__,  # type: ignore[arg-type]
                {
                    "request_id": request_id,
                    "tier": tier,
                    "position": position,
                    "ref": dict(ref),
                    "delivered_at": utcnow(),
                },
                ["request_id", "tier", "position"],
                ["ref", "delivered_at"],
            )

    def deliveries(self, request_id: str) -> dict[tuple[int, int], dict[str, Any]]:
        """Every stored delivery reference of a request, by (tier, position)."""
        with self._ledger.transaction() as session:
            rows = session.execute(
                select(
                    ApprovalDeliveryRow.tier, ApprovalDeliveryRow.position, ApprovalDeliveryRow.ref
                ).where(ApprovalDeliveryRow.request_id == request_id)
            ).all()
            return {(tier, position): dict(ref) for tier, position, ref in rows}

    # --- the audit log --------------------------------------------------------------

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
