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
from sqlalchemy import ColumnElement, String, cast, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from wflo_prefect.ledger.models import (
    BudgetReservationRow,
    BudgetRow,
    BudgetWindowRow,
    CostEntryRow,
    Money,
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


class _CostFields(BaseModel):
    """The attribution, usage and money of one LLM call (shared by new and stored entries)."""

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


class CostEntry(_CostFields):
    """One priced (or unpriced) LLM call as stored."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    occurred_at: datetime


class NewCostEntry(_CostFields):
    """What :meth:`CostRepository.settle` and :meth:`CostRepository.record` write."""

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
        # Reservations this process holds: id -> (window id, amount), saves a read on settle.
        self._held: dict[str, tuple[str, Decimal]] = {}
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
        session.connection().execute(
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
        """Hold every request atomically: all fit (reservation ids) or none (a Refusal).

        The reservation rows are written first and the window rows updated last, in
        window-id order, so the hot window rows stay locked only for their update
        and the commit, and concurrent calls cannot deadlock.
        """
        W = BudgetWindowRow
        try:
            with self._ledger.transaction() as session:
                connection = session.connection()
                windows = sorted(
                    ((self._window_id(session, r), r) for r in requests), key=lambda p: p[0]
                )
                held = [(_new_id(), window_id, r.amount_usd) for window_id, r in windows]
                now = utcnow()
                connection.execute(
                    insert(BudgetReservationRow),
                    [
                        {
                            "id": rid,
                            "window_id": wid,
                            "amount_usd": amount,
                            "status": "held",
                            "flow_run_id": flow_run_id,
                            "created_at": now,
                        }
                        for rid, wid, amount in held
                    ],
                )
                for window_id, request in windows:
                    statement = (
                        update(W)
                        .where(W.id == window_id)
                        .values(reserved_usd=W.reserved_usd + request.amount_usd)
                    )
                    if request.enforce:
                        statement = statement.where(_fits(session, request)).values(
                            limit_usd=request.limit_usd
                        )
                    if connection.execute(statement).rowcount != 1:
                        raise _Refused(request)
        except _Refused as refused:
            state = self.window(refused.request.budget_key, refused.request.window_start)
            return Refusal(
                request=refused.request,
                spent_usd=state.spent_usd if state else Decimal(0),
                reserved_usd=state.reserved_usd if state else Decimal(0),
            )
        with self._lock:
            for rid, wid, amount in held:
                self._held[rid] = (wid, amount)
        return [rid for rid, _, _ in held]

    def _held_reservations(
        self, session: Session, reservation_ids: Sequence[str]
    ) -> list[tuple[str, str, Decimal]]:
        """(id, window id, amount) of each reservation, from memory or the ledger."""
        found: list[tuple[str, str, Decimal]] = []
        missing: list[str] = []
        with self._lock:
            for rid in reservation_ids:
                known = self._held.pop(rid, None)
                if known is None:
                    missing.append(rid)
                else:
                    found.append((rid, known[0], known[1]))
        if missing:
            R = BudgetReservationRow
            rows = (
                session.connection()
                .execute(select(R.id, R.window_id, R.amount_usd).where(R.id.in_(missing)))
                .all()
            )
            found.extend((r.id, r.window_id, r.amount_usd) for r in rows)
        return sorted(found)

    def _close(
        self,
        session: Session,
        reservation_ids: Sequence[str],
        status: str,
        settled_usd: Decimal,
        charge: Decimal | None,
        cost_entry_id: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Close held reservations; return the window updates that move their money.

        Settling (``charge`` given) also closes a reservation that expired while its
        call was still in flight: its hold was already given back, so only the
        charge is added. Each reservation is closed once, whoever tries.
        """
        R = BudgetReservationRow
        W = BudgetWindowRow
        connection = session.connection()
        pending: list[tuple[str, dict[str, Any]]] = []
        closing = {
            "status": status,
            "settled_usd": settled_usd,
            "cost_entry_id": cost_entry_id,
        }
        for rid, window_id, amount in self._held_reservations(session, reservation_ids):
            now = utcnow()
            closed = connection.execute(
                update(R).where(R.id == rid, R.status == "held").values(**closing, closed_at=now)
            )
            values: dict[str, Any] = {}
            if closed.rowcount == 1:
                values["reserved_usd"] = W.reserved_usd - amount
            elif charge is not None:
                late = connection.execute(
                    update(R)
                    .where(R.id == rid, R.status == "expired")
                    .values(**closing, closed_at=now)
                )
                if late.rowcount != 1:
                    continue
            else:
                continue
            if charge is not None:
                values["spent_usd"] = W.spent_usd + charge
            pending.append((window_id, values))
        return pending

    @staticmethod
    def _apply(session: Session, pending: list[tuple[str, dict[str, Any]]]) -> list[WindowState]:
        """Update the windows last, in id order (short row locks, no deadlocks)."""
        W = BudgetWindowRow
        connection = session.connection()
        states: list[WindowState] = []
        for window_id, values in sorted(pending, key=lambda p: p[0]):
            row = connection.execute(
                update(W)
                .where(W.id == window_id)
                .values(**values)
                .returning(
                    W.id,
                    W.budget_key,
                    W.window_start,
                    W.window_end,
                    W.limit_usd,
                    W.spent_usd,
                    W.reserved_usd,
                    W.alerts_fired,
                )
            ).one()
            states.append(
                WindowState(
                    id=row.id,
                    budget_key=row.budget_key,
                    window_start=row.window_start,
                    window_end=row.window_end,
                    limit_usd=row.limit_usd,
                    spent_usd=row.spent_usd,
                    reserved_usd=row.reserved_usd,
                    alerts_fired=tuple(str(a) for a in row.alerts_fired or ()),
                )
            )
        return states

    def expire_stale(self, older_than: datetime) -> int:
        """Give back holds taken before ``older_than`` and still open (their process died).

        A call that settles later is still recorded and charged (see :meth:`settle`).
        """
        R = BudgetReservationRow
        W = BudgetWindowRow
        expired = 0
        with self._ledger.transaction() as session:
            stale = (
                session.connection()
                .execute(
                    select(R.id, R.window_id, R.amount_usd)
                    .where(R.status == "held", R.created_at < older_than)
                    .order_by(R.window_id, R.id)
                )
                .all()
            )
            for row in stale:
                closed = session.connection().execute(
                    update(R)
                    .where(R.id == row.id, R.status == "held")
                    .values(status="expired", closed_at=utcnow())
                )
                if closed.rowcount != 1:
                    continue
                session.connection().execute(
                    update(W)
                    .where(W.id == row.window_id)
                    .values(reserved_usd=W.reserved_usd - row.amount_usd)
                )
                expired += 1
        return expired

    def settle(
        self, reservation_ids: Sequence[str], entry: NewCostEntry
    ) -> tuple[CostEntry | None, list[WindowState]]:
        """Charge the entry's cost to the held windows and write the entry, once.

        Returns the stored entry (``None`` when the reservations were already
        closed) and the states of the windows after the charge.
        """
        with self._ledger.transaction() as session:
            values = _entry_values(entry)
            pending = self._close(
                session, reservation_ids, "settled", entry.cost_usd, entry.cost_usd, values["id"]
            )
            if reservation_ids and not pending:
                return None, []
            session.connection().execute(insert(CostEntryRow), [values])
            states = self._apply(session, pending)
        return CostEntry.model_validate(values), states

    def release(self, reservation_ids: Sequence[str]) -> int:
        """Give held money back (the call failed or was not sent); returns how many."""
        with self._ledger.transaction() as session:
            pending = self._close(session, reservation_ids, "released", Decimal(0), None)
            self._apply(session, pending)
            return len(pending)

    def reservation_status(self, reservation_id: str) -> str | None:
        """``held``, ``settled``, ``released`` or ``expired`` (``None``: unknown id)."""
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
                result = session.connection().execute(
                    update(W)
                    .where(W.id == window_id, cast(W.alerts_fired, String) == old_text)
                    .values(**values)
                )
                if result.rowcount == 1:
                    return True
        return False

    # -- entries -----------------------------------------------------------------

    def record(self, entry: NewCostEntry) -> CostEntry:
        """Write one cost entry that held no budget."""
        values = _entry_values(entry)
        with self._ledger.transaction() as session:
            session.connection().execute(insert(CostEntryRow), [values])
        return CostEntry.model_validate(values)

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


def _fits(session: Session, request: HoldRequest) -> ColumnElement[bool]:
    """``spent + reserved + amount <= limit``, exact on both backends.

    PostgreSQL's NUMERIC is exact. SQLite keeps NUMERIC values as binary floats, so
    there the sides are compared in units of 1e-10 USD (the ledger's scale), rounded,
    which is exact for amounts below about $900,000.
    """
    W = BudgetWindowRow
    total = W.spent_usd + W.reserved_usd + request.amount_usd
    if session.get_bind().dialect.name == "sqlite":
        scale = 10**10
        return func.round(total * scale) <= func.round(literal(request.limit_usd, Money) * scale)
    return total <= request.limit_usd


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _entry_values(entry: NewCostEntry) -> dict[str, Any]:
    data = entry.model_dump()
    data["occurred_at"] = data["occurred_at"] or utcnow()
    data["id"] = _new_id()
    return data
