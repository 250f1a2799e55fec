"""Budget windows and call holds: the budget store's SQL (``ledger.costs``).

A call's worst case is *reserved* on every budget window it counts against in one
transaction; each hold is one conditional ``UPDATE`` of the window row
(:func:`~wflo_prefect.ledger.budget_model.fits` in SQL: ``spent + reserved +
amount <= limit``), which PostgreSQL re-checks after a concurrent writer commits
and SQLite serialises with ``BEGIN IMMEDIATE``, so no two processes can both take
the last dollar. Windows are locked in key order, so calls holding several
budgets cannot deadlock. *Settling* moves the actual cost from reserved to spent
and writes the cost entry in the same transaction; *releasing* gives the hold
back. Both act only on a reservation still ``held``, so a call is recorded once
even when settle or release is repeated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wflo_prefect.ledger.budget_model import HoldRequest, Refusal, WindowState
from wflo_prefect.ledger.ids import new_id
from wflo_prefect.ledger.models import (
    BudgetReservationRow,
    BudgetWindowRow,
    Money,
    utcnow,
)

if TYPE_CHECKING:
    from wflo_prefect.ledger.database import Database

__all__ = ["STATE_COLUMNS", "WindowStore", "window_state"]


class _Refused(Exception):
    def __init__(self, request: HoldRequest) -> None:
        self.request = request


def window_state(row: Any) -> WindowState:
    """A window's state from its row (or a row of :data:`STATE_COLUMNS`)."""
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


class WindowStore:
    """Budget windows and the call holds on them."""

    def __init__(self, ledger: Database) -> None:
        self._ledger = ledger
        self._window_ids: dict[tuple[str, datetime], str] = {}
        # Reservations this process holds: id -> (window id, amount), saves a read on settle.
        self._held: dict[str, tuple[str, Decimal]] = {}
        self._lock = threading.Lock()

    # -- windows -----------------------------------------------------------------

    def _window_id(self, connection: Connection, request: HoldRequest) -> str:
        cache_key = (request.budget_key, request.window_start)
        with self._lock:
            cached = self._window_ids.get(cache_key)
        if cached is not None:
            return cached
        values = {
            "id": new_id(),
            "budget_key": request.budget_key,
            "window_start": request.window_start,
            "window_end": request.window_end,
            "limit_usd": request.limit_usd,
            "spent_usd": Decimal(0),
            "reserved_usd": Decimal(0),
            "alerts_fired": [],
        }
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            insert(BudgetWindowRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["budget_key", "window_start"])
        )
        window_id = connection.execute(
            select(BudgetWindowRow.id).where(
                BudgetWindowRow.budget_key == request.budget_key,
                BudgetWindowRow.window_start == request.window_start,
            )
        ).scalar_one()
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
            return window_state(row) if row is not None else None

    def windows(self, key_prefix: str | None = None) -> list[WindowState]:
        """Every window (optionally of keys starting with ``key_prefix``), newest first."""
        with self._ledger.transaction() as session:
            query = select(BudgetWindowRow)
            if key_prefix:
                query = query.where(BudgetWindowRow.budget_key.startswith(key_prefix))
            rows = session.scalars(
                query.order_by(BudgetWindowRow.window_start.desc(), BudgetWindowRow.budget_key)
            ).all()
            return [window_state(r) for r in rows]

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
            with self._ledger.begin() as connection:
                windows = sorted(
                    ((self._window_id(connection, r), r) for r in requests), key=lambda p: p[0]
                )
                held = [(new_id(), window_id, r.amount_usd) for window_id, r in windows]
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
                        statement = statement.where(_fits(connection, request)).values(
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
                state=state,
            )
        with self._lock:
            for rid, wid, amount in held:
                self._held[rid] = (wid, amount)
        return [rid for rid, _, _ in held]

    def _held_reservations(
        self, connection: Connection, reservation_ids: Sequence[str]
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
            rows = connection.execute(
                select(R.id, R.window_id, R.amount_usd).where(R.id.in_(missing))
            ).all()
            found.extend((r.id, r.window_id, r.amount_usd) for r in rows)
        return sorted(found)

    def _close(
        self,
        connection: Connection,
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
        pending: list[tuple[str, dict[str, Any]]] = []
        closing = {
            "status": status,
            "settled_usd": settled_usd,
            "cost_entry_id": cost_entry_id,
        }
        for rid, window_id, amount in self._held_reservations(connection, reservation_ids):
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
    def _apply(
        connection: Connection, pending: list[tuple[str, dict[str, Any]]]
    ) -> list[WindowState]:
        """Update the windows last, in id order (short row locks, no deadlocks)."""
        W = BudgetWindowRow
        states: list[WindowState] = []
        for window_id, values in sorted(pending, key=lambda p: p[0]):
            row = connection.execute(
                update(W).where(W.id == window_id).values(**values).returning(*STATE_COLUMNS)
            ).one()
            states.append(window_state(row))
        return states

    def release(self, reservation_ids: Sequence[str]) -> int:
        """Give held money back (the call failed or was not sent); returns how many."""
        with self._ledger.begin() as connection:
            pending = self._close(connection, reservation_ids, "released", Decimal(0), None)
            self._apply(connection, pending)
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


def _fits(connection: Connection, request: HoldRequest) -> ColumnElement[bool]:
    """``spent + reserved + amount <= limit``, exact on both backends.

    PostgreSQL's NUMERIC is exact. SQLite keeps NUMERIC values as binary floats, so
    there the sides are compared in units of 1e-10 USD (the ledger's scale), rounded,
    which is exact for amounts below about $900,000.
    """
    W = BudgetWindowRow
    total = W.spent_usd + W.reserved_usd + request.amount_usd
    if connection.dialect.name == "sqlite":
        scale = 10**10
        return func.round(total * scale) <= func.round(literal(request.limit_usd, Money) * scale)
    return total <= request.limit_usd


_W = BudgetWindowRow
STATE_COLUMNS = (
    _W.id,
    _W.budget_key,
    _W.window_start,
    _W.window_end,
    _W.limit_usd,
    _W.spent_usd,
    _W.reserved_usd,
    _W.alerts_fired,
)
