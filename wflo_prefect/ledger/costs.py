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

A *lease* is a hold a process takes for many calls at once: it reserves a slice of
the window (never more than a share of what is left), holds each call against it
in memory, and charges each settled call to the lease row (``pending_usd``) in the
transaction that writes the call's cost entry, so the hot window row is touched
only when the lease is opened, grown, synced or closed. A process that dies
leaves its lease behind; :meth:`CostRepository.expire_stale` charges its pending
cost to the window and gives the rest back, so nothing is lost or double-counted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
    "LeaseCharge",
    "LeaseSync",
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
    #: The window's state (``None`` only if it vanished meanwhile).
    state: WindowState | None = None


@dataclass(frozen=True, slots=True)
class LeaseCharge:
    """One settled call's cost on a lease (``grow``: extra to reserve, when it cost more
    than the lease had left)."""

    lease_id: str
    window_id: str
    cost_usd: Decimal
    grow_usd: Decimal = Decimal(0)
    #: The call's cost entry names this lease (one lease per call: its first budget's);
    #: otherwise the cost is added to the lease row's ``pending_usd``.
    via_entry: bool = False


@dataclass(frozen=True, slots=True)
class LeaseSync:
    """What a lease open or sync did, and the window afterwards."""

    #: ``None`` when no lease was opened, or the lease was expired by another process.
    lease_id: str | None
    window_id: str
    #: Newly reserved on the window for the lease.
    granted_usd: Decimal
    #: Pending cost moved from the lease to the window's spend.
    charged_usd: Decimal
    #: What the lease keeps reserved on the window afterwards.
    held_usd: Decimal
    state: WindowState | None


_SCALE = Decimal("0.0000000001")


class _Refused(Exception):
    def __init__(self, request: HoldRequest) -> None:
        self.request = request


def _state(row: Any) -> WindowState:
    """A window's state from its row (or a row of :data:`_STATE_COLUMNS`)."""
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

    def _window_id(self, connection: Connection, request: HoldRequest) -> str:
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
            with self._ledger.begin() as connection:
                windows = sorted(
                    ((self._window_id(connection, r), r) for r in requests), key=lambda p: p[0]
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
                update(W).where(W.id == window_id).values(**values).returning(*_STATE_COLUMNS)
            ).one()
            states.append(_state(row))
        return states

    def expire_stale(
        self, older_than: datetime, *, leases_older_than: datetime | None = None
    ) -> int:
        """Give back holds of processes that died; how many were expired.

        A call hold taken before ``older_than`` and still open is given back (a call
        that settles later is still recorded and charged, see :meth:`settle`). A
        lease not touched since ``leases_older_than`` (default ``older_than``) has
        its pending cost charged to the window and the rest given back.
        """
        R = BudgetReservationRow
        W = BudgetWindowRow
        lease_cutoff = leases_older_than or older_than
        expired = 0
        with self._ledger.begin() as connection:
            stale = connection.execute(
                select(R.id, R.window_id, R.kind)
                .where(
                    R.status == "held",
                    ((R.kind == "call") & (R.created_at < older_than))
                    | ((R.kind == "lease") & (R.touched_at < lease_cutoff)),
                )
                .order_by(R.id)
            ).all()
            for row in stale:
                # Lock the hold, then its window (the order every writer uses); the
                # condition is checked again, as the holder may have touched it since.
                still_stale = (
                    R.touched_at < lease_cutoff
                    if row.kind == "lease"
                    else R.created_at < older_than
                )
                closed = connection.execute(
                    update(R)
                    .where(R.id == row.id, R.status == "held", still_stale)
                    .values(status="expired", closed_at=utcnow())
                    .returning(R.amount_usd, R.pending_usd, R.entries_usd)
                ).one_or_none()
                if closed is None:
                    continue
                values: dict[str, Any] = {"reserved_usd": W.reserved_usd - closed.amount_usd}
                if row.kind == "lease":
                    # What the dead holder spent since its last sync: its pending cost and
                    # the entries naming the lease not yet moved. (The lease is locked now,
                    # so no further entry can name it: see _insert_leased.)
                    named = connection.execute(
                        select(func.coalesce(func.sum(CostEntryRow.cost_usd), 0)).where(
                            CostEntryRow.lease_id == row.id
                        )
                    ).scalar_one()
                    unsynced = closed.pending_usd + Decimal(str(named)) - closed.entries_usd
                    values["spent_usd"] = W.spent_usd + unsynced
                    connection.execute(
                        update(R)
                        .where(R.id == row.id)
                        .values(
                            settled_usd=func.coalesce(R.settled_usd, 0) + unsynced,
                            entries_usd=Decimal(str(named)),
                            pending_usd=0,
                        )
                    )
                connection.execute(update(W).where(W.id == row.window_id).values(**values))
                expired += 1
        return expired

    def settle(
        self,
        reservation_ids: Sequence[str],
        entry: NewCostEntry,
        leased: Sequence[LeaseCharge] = (),
    ) -> tuple[CostEntry | None, list[WindowState]]:
        """Charge the entry's cost to its holds and write the entry, once.

        ``reservation_ids`` are call holds: their windows are charged now.
        ``leased`` charges leases: each adds the cost to its lease's pending cost (a
        lease expired meanwhile charges its window directly). Returns the stored
        entry (``None`` when the call holds were already closed) and the states of
        the call holds' windows after the charge.
        """
        values = _entry_values(entry)
        via_entry = next((c for c in leased if c.via_entry), None)
        if not reservation_ids and len(leased) == 1 and via_entry and not via_entry.grow_usd:
            # The common case, one budget on a lease: a single statement, no transaction.
            with self._ledger.single_statement() as connection:
                inserted = connection.execute(
                    _INSERT_LEASED_ENTRY, {**values, "lease_id": via_entry.lease_id}
                ).first()
            if inserted is not None:
                return CostEntry.model_construct(**values), []
            # The lease was expired by another process: its hold is gone, charge directly.
            with self._ledger.begin() as connection:
                connection.execute(_INSERT_ENTRY, [values])
                connection.execute(
                    _CHARGE_WINDOW, {"b_id": via_entry.window_id, "b_cost": via_entry.cost_usd}
                )
            return CostEntry.model_construct(**values), []
        with self._ledger.begin() as connection:
            pending = self._close(
                connection, reservation_ids, "settled", entry.cost_usd, entry.cost_usd, values["id"]
            )
            if reservation_ids and not pending:
                return None, []
            if via_entry is None:
                connection.execute(_INSERT_ENTRY, [values])
            else:
                self._insert_leased(connection, values, via_entry)
            for charge in sorted(leased, key=lambda c: c.lease_id):
                if charge is not via_entry:
                    self._charge_lease(connection, charge)
            states = self._apply(connection, pending)
        return CostEntry.model_construct(**values), states

    def _insert_leased(
        self, connection: Connection, values: dict[str, Any], charge: LeaseCharge
    ) -> None:
        """Write the entry naming its lease, if the lease is still held (one statement:
        the lease row is share-locked until commit, so it cannot expire meanwhile)."""
        inserted = connection.execute(
            _INSERT_LEASED_ENTRY, {**values, "lease_id": charge.lease_id}
        ).first()
        if inserted is None:
            # The lease was expired by another process: its hold is gone, charge directly.
            connection.execute(_INSERT_ENTRY, [values])
            connection.execute(
                _CHARGE_WINDOW, {"b_id": charge.window_id, "b_cost": charge.cost_usd}
            )
        elif charge.grow_usd:
            self._charge_lease(connection, replace(charge, cost_usd=Decimal(0)))

    @staticmethod
    def _charge_lease(connection: Connection, charge: LeaseCharge) -> None:
        now = utcnow()
        charged = connection.execute(
            _CHARGE_LEASE,
            {
                "b_id": charge.lease_id,
                "b_cost": charge.cost_usd,
                "b_grow": charge.grow_usd,
                "b_now": now,
            },
        )
        if charged.rowcount != 1:
            # The lease was expired by another process: its hold is gone, charge directly.
            connection.execute(
                _CHARGE_WINDOW, {"b_id": charge.window_id, "b_cost": charge.cost_usd}
            )
        elif charge.grow_usd:
            connection.execute(_GROW_WINDOW, {"b_id": charge.window_id, "b_grow": charge.grow_usd})

    def release(self, reservation_ids: Sequence[str]) -> int:
        """Give held money back (the call failed or was not sent); returns how many."""
        with self._ledger.begin() as connection:
            pending = self._close(connection, reservation_ids, "released", Decimal(0), None)
            self._apply(connection, pending)
            return len(pending)

    # -- leases ------------------------------------------------------------------

    def open_lease(
        self,
        request: HoldRequest,
        *,
        minimum_usd: Decimal,
        share: int,
        owner: str,
        flow_run_id: str | None = None,
    ) -> LeaseSync:
        """Reserve a lease of up to ``request.amount_usd`` on the request's window.

        An enforced lease takes at most ``1/share`` of what the window has left, and
        is not opened (``lease_id`` is ``None``) when that is under ``minimum_usd``.
        """
        R = BudgetReservationRow
        with self._ledger.begin() as connection:
            window_id = self._window_id(connection, request)
            grant = self._grant(connection, window_id, request, request.amount_usd, share)
            if grant < minimum_usd:
                return LeaseSync(None, window_id, Decimal(0), Decimal(0), Decimal(0), None)
            lease_id = _new_id()
            now = utcnow()
            connection.execute(
                insert(R).values(
                    id=lease_id,
                    window_id=window_id,
                    kind="lease",
                    amount_usd=grant,
                    pending_usd=Decimal(0),
                    status="held",
                    flow_run_id=flow_run_id,
                    owner=owner,
                    created_at=now,
                    touched_at=now,
                )
            )
            state = self._move(connection, window_id, request, reserve=grant)
        return LeaseSync(lease_id, window_id, grant, Decimal(0), grant, state)

    def sync_lease(
        self,
        lease_id: str,
        request: HoldRequest,
        *,
        entries_usd: Decimal = Decimal(0),
        give_back_usd: Decimal = Decimal(0),
        want_usd: Decimal = Decimal(0),
        minimum_usd: Decimal = Decimal(0),
        share: int = 1,
        close: bool = False,
    ) -> LeaseSync:
        """Move a lease's spend to its window; give back and/or grow it (its holder only).

        The spend moved is the lease's ``pending_usd`` and ``entries_usd``: the cost of
        the entries naming the lease since the last sync, which the holder knows.
        ``give_back_usd`` is returned to the window; up to ``want_usd`` more is
        reserved (at most ``1/share`` of what is left, nothing when that is under
        ``minimum_usd``); ``close`` ends the lease. A lease expired by another
        process comes back with ``lease_id`` ``None``: its holder must drop it.
        """
        R = BudgetReservationRow
        with self._ledger.begin() as connection:
            row = connection.execute(
                select(R.window_id, R.amount_usd, R.pending_usd, R.status)
                .where(R.id == lease_id)
                .with_for_update()
            ).one_or_none()
            if row is None or row.status != "held":
                window_id = row.window_id if row is not None else ""
                return LeaseSync(None, window_id, Decimal(0), Decimal(0), Decimal(0), None)
            charged = row.pending_usd + entries_usd
            give_back = min(give_back_usd, row.amount_usd - charged)
            grant = Decimal(0)
            if want_usd > 0 and not close:
                grant = self._grant(
                    connection, row.window_id, request, want_usd, share, freed=give_back
                )
                if grant < minimum_usd:
                    grant = Decimal(0)
            held = row.amount_usd - charged - give_back + grant
            lease_values: dict[str, Any] = {
                "amount_usd": held,
                "pending_usd": R.pending_usd - row.pending_usd,
                "entries_usd": R.entries_usd + entries_usd,
                "settled_usd": func.coalesce(R.settled_usd, 0) + charged,
                "touched_at": utcnow(),
            }
            if close:
                lease_values.update(status="settled", closed_at=utcnow())
            connection.execute(update(R).where(R.id == lease_id).values(**lease_values))
            state = self._move(
                connection,
                row.window_id,
                request,
                reserve=grant - give_back - charged,
                spend=charged,
            )
        return LeaseSync(lease_id, row.window_id, grant, charged, held, state)

    @staticmethod
    def _grant(
        connection: Connection,
        window_id: str,
        request: HoldRequest,
        want: Decimal,
        share: int,
        freed: Decimal = Decimal(0),
    ) -> Decimal:
        """How much of ``want`` the window can lease now (its row locked until commit).

        ``freed``: what the same sync gives back. Spend moved from reserved to spent
        frees nothing.
        """
        if not request.enforce:
            return want
        W = BudgetWindowRow
        row = connection.execute(
            select(W.spent_usd, W.reserved_usd).where(W.id == window_id).with_for_update()
        ).one()
        left: Decimal = request.limit_usd - row.spent_usd - row.reserved_usd + freed
        return max(min(want, left / share), Decimal(0)).quantize(_SCALE, rounding=ROUND_DOWN)

    @staticmethod
    def _move(
        connection: Connection,
        window_id: str,
        request: HoldRequest,
        *,
        reserve: Decimal,
        spend: Decimal = Decimal(0),
    ) -> WindowState:
        W = BudgetWindowRow
        values: dict[str, Any] = {"reserved_usd": W.reserved_usd + reserve}
        if spend:
            values["spent_usd"] = W.spent_usd + spend
        if request.enforce:
            values["limit_usd"] = request.limit_usd
        row = connection.execute(
            update(W).where(W.id == window_id).values(**values).returning(*_STATE_COLUMNS)
        ).one()
        return _state(row)

    def leased_by_others(self, window_id: str, owner: str) -> Decimal:
        """Money held on a window by open leases of processes other than ``owner``."""
        return self.open_leases(window_id, exclude_owner=owner)[1]

    def open_leases(
        self, window_id: str, *, exclude_owner: str | None = None
    ) -> tuple[int, Decimal]:
        """How many leases are open on a window, and the money they hold."""
        R = BudgetReservationRow
        query = select(func.count(), func.coalesce(func.sum(R.amount_usd), 0)).where(
            R.window_id == window_id, R.kind == "lease", R.status == "held"
        )
        if exclude_owner is not None:
            query = query.where(R.owner != exclude_owner)
        with self._ledger.begin() as connection:
            count, total = connection.execute(query).one()
        return int(count), Decimal(str(total))

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
        with self._ledger.single_statement() as connection:
            connection.execute(_INSERT_ENTRY, [values])
        return CostEntry.model_construct(**values)

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


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _entry_values(entry: NewCostEntry) -> dict[str, Any]:
    data = entry.model_dump()
    data["occurred_at"] = data["occurred_at"] or utcnow()
    data["id"] = _new_id()
    return data


_W = BudgetWindowRow
_R = BudgetReservationRow
_STATE_COLUMNS = (
    _W.id,
    _W.budget_key,
    _W.window_start,
    _W.window_end,
    _W.limit_usd,
    _W.spent_usd,
    _W.reserved_usd,
    _W.alerts_fired,
)
# Statements on the path of every call, built once.
_INSERT_ENTRY = insert(CostEntryRow)
_ENTRY_COLUMNS = list(CostEntryRow.__table__.columns)
_LEASE_ID = bindparam("lease_id", type_=String(36))
# INSERT ... SELECT <the entry> WHERE the lease is held, share-locking the lease row.
_INSERT_LEASED_ENTRY = (
    insert(CostEntryRow)
    .from_select(
        [c.name for c in _ENTRY_COLUMNS],
        select(
            *[
                (_LEASE_ID if c.name == "lease_id" else bindparam(c.name, type_=c.type)).label(
                    c.name
                )
                for c in _ENTRY_COLUMNS
            ]
        ).where(
            select(_R.id)
            .where(_R.id == _LEASE_ID, _R.status == "held")
            .with_for_update(read=True)
            .exists()
        ),
    )
    .returning(CostEntryRow.id)
)
_CHARGE_LEASE = (
    update(_R)
    .where(_R.id == bindparam("b_id"), _R.status == "held")
    .values(
        pending_usd=_R.pending_usd + bindparam("b_cost", type_=Money),
        amount_usd=_R.amount_usd + bindparam("b_grow", type_=Money),
        touched_at=bindparam("b_now"),
    )
)
_CHARGE_WINDOW = (
    update(_W)
    .where(_W.id == bindparam("b_id"))
    .values(spent_usd=_W.spent_usd + bindparam("b_cost", type_=Money))
)
_GROW_WINDOW = (
    update(_W)
    .where(_W.id == bindparam("b_id"))
    .values(reserved_usd=_W.reserved_usd + bindparam("b_grow", type_=Money))
)
