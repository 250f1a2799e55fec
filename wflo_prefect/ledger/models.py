"""The governance ledger's tables (SQLAlchemy 2 declarative models).

One schema serves every capability: cost entries, budgets with their windows and
reservations, approval requests and decisions, policy decisions, compensations,
snapshots, and one audit-event log keyed by flow run id and trace id. Money is
``Numeric(20, 10)`` and comes back as :class:`~decimal.Decimal`. The schema is
created and changed only by the Alembic migrations in ``ledger/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from wflo_prefect.ledger.ids import new_id

__all__ = [
    "ApprovalDecisionRow",
    "ApprovalDeliveryRow",
    "ApprovalRequestRow",
    "ApprovalWaiterRow",
    "AuditEventRow",
    "Base",
    "BudgetReservationRow",
    "BudgetRow",
    "BudgetWindowRow",
    "CompensationRow",
    "CostEntryRow",
    "PolicyDecisionRow",
    "SnapshotRow",
]

Money = Numeric(20, 10, asdecimal=True)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, so values read back are marked UTC here; a naive value
    written is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} written to the ledger; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of the ledger's tables."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class AuditEventRow(Base):
    """One thing that happened under governance, with its correlation ids."""

    __tablename__ = "wflo_audit_events"
    __table_args__ = (
        Index("ix_wflo_audit_flow_run", "flow_run_id", "occurred_at"),
        Index("ix_wflo_audit_trace", "trace_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    event: Mapped[str] = mapped_column(String(100))
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(16))
    flow_name: Mapped[str | None] = mapped_column(String(255))
    task_name: Mapped[str | None] = mapped_column(String(255))
    deployment_id: Mapped[str | None] = mapped_column(String(36))
    actor: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CostEntryRow(Base):
    """One priced LLM call, attributed to the run that made it."""

    __tablename__ = "wflo_cost_entries"
    __table_args__ = (
        Index("ix_wflo_cost_flow_run", "flow_run_id"),
        Index("ix_wflo_cost_time", "occurred_at"),
        Index("ix_wflo_cost_lease", "lease_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    flow_name: Mapped[str | None] = mapped_column(String(255))
    deployment_id: Mapped[str | None] = mapped_column(String(36))
    work_pool: Mapped[str | None] = mapped_column(String(255))
    user: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    requested_model: Mapped[str | None] = mapped_column(String(255))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    saved_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    priced: Mapped[bool] = mapped_column(Boolean, default=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float | None] = mapped_column()
    request_id: Mapped[str | None] = mapped_column(String(255))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    #: The budget lease the call was charged to (its cost counts on the lease until it syncs).
    lease_id: Mapped[str | None] = mapped_column(String(36))


class BudgetRow(Base):
    """A named budget: a limit in USD over a scope and a period."""

    __tablename__ = "wflo_budgets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    scope: Mapped[str] = mapped_column(String(32))
    scope_value: Mapped[str | None] = mapped_column(String(255))
    max_usd: Mapped[Decimal] = mapped_column(Money)
    period: Mapped[str] = mapped_column(String(16), default="none")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    alert_thresholds: Mapped[list[Any]] = mapped_column(default=list)
    on_exceeded: Mapped[str] = mapped_column(String(16), default="halt")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BudgetWindowRow(Base):
    """Spend and held reservations of one budget key in one period window.

    Reservations are taken with one conditional ``UPDATE`` on this row, so the
    check and the hold are atomic on every backend.
    """

    __tablename__ = "wflo_budget_windows"
    __table_args__ = (UniqueConstraint("budget_key", "window_start", name="uq_wflo_budget_window"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    budget_key: Mapped[str] = mapped_column(String(512))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    limit_usd: Mapped[Decimal] = mapped_column(Money)
    spent_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    reserved_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    alerts_fired: Mapped[list[Any]] = mapped_column(default=list)
    exceeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BudgetReservationRow(Base):
    """Money held against a budget window: for one call, or a process's lease.

    A ``call`` hold covers one call in flight. A ``lease`` is a slice of the window
    one process holds and spends call by call: a settled call's cost entry names
    the lease (``lease_id``), or, for a call's further budgets, adds its cost to
    ``pending_usd``; the lease moves that spend to the window when it syncs
    (``entries_usd``: the entries' cost moved so far). ``amount_usd`` is what the
    hold still keeps reserved on the window.
    """

    __tablename__ = "wflo_budget_reservations"
    __table_args__ = (
        Index("ix_wflo_reservation_status", "status", "created_at"),
        Index("ix_wflo_reservation_window", "window_id", "kind", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    window_id: Mapped[str] = mapped_column(ForeignKey("wflo_budget_windows.id"))
    amount_usd: Mapped[Decimal] = mapped_column(Money)
    settled_usd: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="held")
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    cost_entry_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(8), default="call", server_default="call")
    pending_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    entries_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    #: When a lease last synced or charged a call (a lease not touched for long is stale).
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The process holding a lease (host and pid), for ``wflo budgets status``.
    owner: Mapped[str | None] = mapped_column(String(255))


class ApprovalRequestRow(Base):
    """A request for a human decision, bound to a digest of what is approved.

    ``policy`` is the gate's policy as it was when the request was made, written
    once and never changed. What happens to the request afterwards lives in its
    own columns (``status``, ``tier``, ``timeout_outcome``, ``closed_at``,
    ``resumed_at``, ``applied_at``...), each written by a targeted ``UPDATE``, so
    concurrent writers (delivery thread, waiter, decider, sweep) never overwrite
    each other. The waiter's heartbeat and the channels' delivery references have
    their own tables.
    """

    __tablename__ = "wflo_approval_requests"
    __table_args__ = (
        Index("ix_wflo_approval_status", "status", "created_at"),
        Index("ix_wflo_approval_due", "status", "deadline_at"),
        Index("ix_wflo_approval_unapplied", "applied_at", "status"),
        Index("ix_wflo_approval_run", "flow_run_id", "digest"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    digest: Mapped[str] = mapped_column(String(64))
    approvers: Mapped[list[Any]] = mapped_column(default=list)
    quorum: Mapped[int] = mapped_column(Integer, default=1)
    requested_by: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    tier: Mapped[int] = mapped_column(Integer, default=0)
    keyset: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The frozen policy snapshot (``RequestPolicy``), written at creation only.
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    #: What a deadline decided: approve, reject or fail (set with timed_out/expired).
    timeout_outcome: Mapped[str | None] = mapped_column(String(16))
    #: Attempt number of a ``suspend=True`` gate (0: not suspended yet).
    suspend_attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When the channels were told the request is settled.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When one party claimed resuming the paused run (exactly one does).
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the outcome was applied to the run, and by whom (``gate`` or ``sweep``).
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_by: Mapped[str | None] = mapped_column(String(16))


class ApprovalWaiterRow(Base):
    """The process waiting at a gate: where to wake it, and when it last said it is alive."""

    __tablename__ = "wflo_approval_waiters"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("wflo_approval_requests.id"), primary_key=True
    )
    wake: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApprovalDeliveryRow(Base):
    """What one channel returned for one delivery (e.g. a Slack message to update later)."""

    __tablename__ = "wflo_approval_deliveries"
    __table_args__ = (
        UniqueConstraint("request_id", "tier", "position", name="uq_wflo_approval_delivery"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("wflo_approval_requests.id"))
    tier: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    ref: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApprovalDecisionRow(Base):
    """One approver's answer to an approval request."""

    __tablename__ = "wflo_approval_decisions"
    __table_args__ = (
        UniqueConstraint("request_id", "approver", name="uq_wflo_decision_approver"),
        UniqueConstraint("nonce", name="uq_wflo_decision_nonce"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("wflo_approval_requests.id"))
    approver: Mapped[str] = mapped_column(String(255))
    approved: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PolicyDecisionRow(Base):
    """The outcome of evaluating one policy against one governed call."""

    __tablename__ = "wflo_policy_decisions"
    __table_args__ = (Index("ix_wflo_policy_flow_run", "flow_run_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    policy_name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)
    condition: Mapped[str] = mapped_column(Text)
    matched: Mapped[bool] = mapped_column(Boolean)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CompensationRow(Base):
    """A durable compensating action, run in reverse order when its run fails."""

    __tablename__ = "wflo_compensations"
    __table_args__ = (
        Index("ix_wflo_compensation_run", "flow_run_id", "seq"),
        UniqueConstraint("idempotency_key", name="uq_wflo_compensation_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_run_id: Mapped[str] = mapped_column(String(36))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))
    handler: Mapped[str] = mapped_column(String(512))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_delay_s: Mapped[float] = mapped_column(Float, default=1.0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SnapshotRow(Base):
    """A named snapshot of run state, restorable later."""

    __tablename__ = "wflo_snapshots"
    __table_args__ = (Index("ix_wflo_snapshot_run", "flow_run_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    task_run_id: Mapped[str | None] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
