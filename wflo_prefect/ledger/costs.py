"""Cost entries, budgets, budget windows and reservations: the cost ledger's SQL.

A call's worst case is *reserved* on every budget window it counts against in one
transaction; each hold is one conditional ``UPDATE`` of the window row
(``spent + reserved + amount <= limit``), which PostgreSQL re-checks after a
concurrent writer commits and SQLite serialises with ``BEGIN IMMEDIATE``, so no
two processes can both take the last dollar. Windows are locked in key order, so
calls holding several budgets cannot deadlock. *Settling* moves the actual cost
from reserved to spent and writes the cost entry in the same transaction;
*releasing* gives the hold back. Both act only on a reservation still ``held``,
so a call is recorded once even when settle or release is repeated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, cast, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from wflo_prefect.ledger.models import (
    BudgetReservationRow,
    BudgetRow,
    BudgetWindowRow,
    CostEntryRow,
    utcnow,
)

if TYPE_CHECKING:
    from wflo_prefect.ledger.repository import Ledger

__all__ = [
    "BudgetRecord",
    "CostEntry",
    "CostRepository",
    "HoldRequest",
    "NewCostEntry",
    "Refusal",
    "WindowState",
]


class CostEntry(BaseModel):
    """One priced (or unpriced) LLM call as stored."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    occurred_at: datetime
    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_name: str | None = None
    deployment_id: str | None = None
    work_pool: str | None = None
    user: str | None = None
    tags: list[Any] = []
    provider: str
    model: str
    requested_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    saved_usd: Decimal = Decimal(0)
    priced: bool = True
    cached: bool = False
    latency_ms: float | None = None
    request_id: str | None = None
    trace_id: str | None = None


class NewCostEntry(BaseModel):
    """What :meth:`CostRepository.settle` and :meth:`CostRepository.record` write."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_name: str | None = None
    deployment_id: str | None = None
    work_pool: str | None = None
    user: str | None = None
    tags: list[str] = []
    provider: str
    model: str
    requested_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    saved_usd: Decimal = Decimal(0)
    priced: bool = True
    cached: bool = False
    latency_ms: float | None = None
    request_id: str | None = None
    trace_id: str | None = None
    occurred_at: datetime | None = None


class BudgetRecord(BaseModel):
    """A budget as registered in the ledger (for ``wflo budgets``)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    name: str
    scope: str
    scope_value: str | None = None
    max_usd: Decimal
    period: str
    timezone: str
    alert_thresholds: list[Any]
    on_exceeded: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Hold ``amount_usd`` on the window of ``budget_key`` starting at ``window_start``."""

    budget_key: str
    window_start: datetime
    window_end: datetime | None
    limit_usd: Decimal
    amount_usd: Decimal
    enforce: bool = True


@dataclass(frozen=True, slots=True)
class WindowState:
    """Spend of one budget key in one window."""

    id: str
    budget_key: str
    window_start: datetime
    window_end: datetime | None
    limit_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal
    alerts_fired: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A hold that did not fit: the window's state when it was refused."""

    request: HoldRequest
    spent_usd: Decimal
    reserved_usd: Decimal


class _Refused(Exception):
    def __init__(self, request: HoldRequest) -> None:
        self.request = request


def _state(row: BudgetWindowRow) -> WindowState:
    return WindowState(
        id=row.id,
        budget_key=row.budget_key,
        window_start=row.window_start,
        window_end=row.window_end,
        limit_usd=row.limit_usd,
        spent_usd=row.spent_usd,
        reserved_usd=row.reserved_usd,
        alerts_fired=tuple(str(a) for a in row.alerts_fired or ()),
    )


class CostRepository:
    """Cost entries, budgets, windows and reservations (``ledger.costs``)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._window_ids: dict[tuple[str, datetime], str] = {}
        self._lock = threading.Lock()

    # -- windows -----------------------------------------------------------------

    def _window_id(self, session: Session, request: HoldRequest) -> str:
        cache_key = (request.budget_key, request.window_start)
        with self._lock:
            cached = self._window_ids.get(cache_key)
        if cached is not None:
            return cached
        values = {
            "id": _new_id(),
            "budget_key": request.budget_key,
            "window_start": request.window_start,
            "window_end": request.window_end,
            "limit_usd": request.limit_usd,
            "spent_usd": Decimal(0),
            "reserved_usd": Decimal(0),
            "alerts_fired": [],
        }
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(BudgetWindowRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["budget_key", "window_start"])
        )
        window_id = session.scalars(
            select(BudgetWindowRow.id).where(
                BudgetWindowRow.budget_key == request.budget_key,
                BudgetWindowRow.window_start == request.window_start,
            )
        ).one()
        with self._lock:
            self._window_ids[cache_key] = window_id
        return window_id

    def window(self, budget_key: str, window_start: datetime) -> WindowState | None:
        """The state of one window, or ``None`` when nothing was spent in it yet."""
        with self._ledger.transaction() as session:
            row = session.scalars(
                select(BudgetWindowRow).where(
                    BudgetWindowRow.budget_key == budget_key,
                    BudgetWindowRow.window_start == window_start,
                )
            ).one_or_none()
            return _state(row) if row is not None else None

    def windows(self, key_prefix: str | None = None) -> list[WindowState]:
        """Every window (optionally of keys starting with ``key_prefix``), newest first."""
        with self._ledger.transaction() as session:
            query = select(BudgetWindowRow)
            if key_prefix:
                query = query.where(BudgetWindowRow.budget_key.startswith(key_prefix))
            rows = session.scalars(
                query.order_by(BudgetWindowRow.window_start.desc(), BudgetWindowRow.budget_key)
            ).all()
            return [_state(r) for r in rows]

    # -- reservations ------------------------------------------------------------

    def reserve(
        self, requests: Sequence[HoldRequest], *, flow_run_id: str | None = None
    ) -> list[str] | Refusal:
        """Hold every request atomically: all fit (reservation ids) or none (a Refusal)."""
        ordered = sorted(requests, key=lambda r: (r.budget_key, r.window_start))
        try:
            with self._ledger.transaction() as session:
                ids: list[str] = []
                for request in ordered:
                    window_id = self._window_id(session, request)
                    W = BudgetWindowRow
                    statement = (
                        update(W)
                        .where(W.id == window_id)
                        .values(reserved_usd=W.reserved_usd + request.amount_usd)
                    )
                    if request.enforce:
                        statement = statement.where(
                            W.spent_usd + W.reserved_usd + request.amount_usd <= request.limit_usd
                        ).values(limit_usd=request.limit_usd)
                    if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
                        raise _Refused(request)
                    reservation_id = _new_id()
                    session.add(
                        BudgetReservationRow(
                            id=reservation_id,
                            window_id=window_id,
                            amount_usd=request.amount_usd,
                            status="held",
                            flow_run_id=flow_run_id,
                            created_at=utcnow(),
                        )
                    )
                    ids.append(reservation_id)
                return ids
        except _Refused as refused:
            state = self.window(refused.request.budget_key, refused.request.window_start)
            return Refusal(
                request=refused.request,
                spent_usd=state.spent_usd if state else Decimal(0),
                reserved_usd=state.reserved_usd if state else Decimal(0),
            )

    def settle(
        self, reservation_ids: Sequence[str], entry: NewCostEntry
    ) -> tuple[CostEntry | None, list[WindowState]]:
        """Charge the entry's cost to the held windows and write the entry, once.

        Returns the stored entry (``None`` when the reservations were already
        closed) and the states of the windows after the charge.
        """
        with self._ledger.transaction() as session:
            row = _entry_row(entry)
            windows: list[str] = []
            for reservation_id in sorted(reservation_ids):
                reservation = session.get(BudgetReservationRow, reservation_id)
                if reservation is None:
                    continue
                R = BudgetReservationRow
                closed = session.execute(
                    update(R)
                    .where(R.id == reservation_id, R.status == "held")
                    .values(
                        status="settled",
                        settled_usd=entry.cost_usd,
                        cost_entry_id=row.id,
                        closed_at=utcnow(),
                    )
                )
                if closed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                W = BudgetWindowRow
                session.execute(
                    update(W)
                    .where(W.id == reservation.window_id)
                    .values(
                        reserved_usd=W.reserved_usd - reservation.amount_usd,
                        spent_usd=W.spent_usd + entry.cost_usd,
                    )
                )
                windows.append(reservation.window_id)
            if reservation_ids and not windows:
                return None, []
            session.add(row)
            session.flush()
            stored = CostEntry.model_validate(row)
            states = [
                _state(w)
                for w in session.scalars(
                    select(BudgetWindowRow).where(BudgetWindowRow.id.in_(windows))
                ).all()
            ]
            return stored, states

    def release(self, reservation_ids: Sequence[str]) -> int:
        """Give held money back (the call failed or was not sent); returns how many."""
        released = 0
        with self._ledger.transaction() as session:
            for reservation_id in sorted(reservation_ids):
                reservation = session.get(BudgetReservationRow, reservation_id)
                if reservation is None:
                    continue
                R = BudgetReservationRow
                closed = session.execute(
                    update(R)
                    .where(R.id == reservation_id, R.status == "held")
                    .values(status="released", settled_usd=Decimal(0), closed_at=utcnow())
                )
                if closed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                W = BudgetWindowRow
                session.execute(
                    update(W)
                    .where(W.id == reservation.window_id)
                    .values(reserved_usd=W.reserved_usd - reservation.amount_usd)
                )
                released += 1
        return released

    def reservation_status(self, reservation_id: str) -> str | None:
        """``held``, ``settled`` or ``released`` (``None``: unknown id)."""
        with self._ledger.transaction() as session:
            row = session.get(BudgetReservationRow, reservation_id)
            return row.status if row is not None else None

    def claim_alert(self, window_id: str, marker: str) -> bool:
        """Mark ``marker`` (a threshold, or ``exceeded``) fired on a window, once.

        A compare-and-swap on the stored list: of concurrent claimers exactly one wins.
        """
        for _attempt in range(20):
            with self._ledger.transaction() as session:
                row = session.get(BudgetWindowRow, window_id)
                if row is None:
                    return False
                fired = list(row.alerts_fired or [])
                if marker in fired:
                    return False
                old_text = json.dumps(fired)
                W = BudgetWindowRow
                values: dict[str, Any] = {"alerts_fired": [*fired, marker]}
                if marker == "exceeded":
                    values["exceeded_at"] = utcnow()
                result = session.execute(
                    update(W)
                    .where(W.id == window_id, cast(W.alerts_fired, String) == old_text)
                    .values(**values)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return True
        return False

    # -- entries -----------------------------------------------------------------

    def record(self, entry: NewCostEntry) -> CostEntry:
        """Write one cost entry that held no budget."""
        with self._ledger.transaction() as session:
            row = _entry_row(entry)
            session.add(row)
            session.flush()
            return CostEntry.model_validate(row)

    def entries(
        self,
        *,
        flow_run_id: str | None = None,
        since: datetime | None = None,
        flow_name: str | None = None,
        deployment_id: str | None = None,
    ) -> list[CostEntry]:
        """Cost entries matching every filter given, oldest first."""
        with self._ledger.transaction() as session:
            query = select(CostEntryRow)
            if flow_run_id is not None:
                query = query.where(CostEntryRow.flow_run_id == flow_run_id)
            if since is not None:
                query = query.where(CostEntryRow.occurred_at >= since)
            if flow_name is not None:
                query = query.where(CostEntryRow.flow_name == flow_name)
            if deployment_id is not None:
                query = query.where(CostEntryRow.deployment_id == deployment_id)
            rows = session.scalars(query.order_by(CostEntryRow.occurred_at, CostEntryRow.id))
            return [CostEntry.model_validate(r) for r in rows.all()]

    # -- budgets -----------------------------------------------------------------

    def upsert_budget(self, record: BudgetRecord) -> None:
        """Register (or update) a budget by name, for listing and status."""
        with self._ledger.transaction() as session:
            row = session.scalars(
                select(BudgetRow).where(BudgetRow.name == record.name)
            ).one_or_none()
            fields = record.model_dump()
            if row is None:
                session.add(BudgetRow(**fields, created_at=utcnow()))
            else:
                changed = any(getattr(row, k) != v for k, v in fields.items() if k != "updated_at")
                if changed:
                    for key, value in fields.items():
                        setattr(row, key, value)

    def budgets(self) -> list[BudgetRecord]:
        """Every registered budget, by name."""
        with self._ledger.transaction() as session:
            rows = session.scalars(select(BudgetRow).order_by(BudgetRow.name)).all()
            return [BudgetRecord.model_validate(r) for r in rows]


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _entry_row(entry: NewCostEntry) -> CostEntryRow:
    data = entry.model_dump()
    data["occurred_at"] = data["occurred_at"] or utcnow()
    return CostEntryRow(id=_new_id(), **data)
