"""Budget leases: one process's hold for many calls, and its SQL (``ledger.costs``).

A *lease* is a hold a process takes for many calls at once: it reserves a slice of
the window (never more than a share of what is left:
:func:`~wflo_prefect.ledger.budget_model.leasable`), holds each call against it
in memory, and charges each settled call to the lease row (``pending_usd``) in the
transaction that writes the call's cost entry, so the hot window row is touched
only when the lease is opened, grown, synced or closed. A process that dies
leaves its lease behind; :meth:`WindowStore.expire_stale` charges its pending
cost to the window and gives the rest back, so nothing is lost or double-counted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, insert, select, update

from wflo_prefect.ledger.budget_model import (
    HoldRequest,
    LeaseCharge,
    LeaseSync,
    WindowState,
    leasable,
)
from wflo_prefect.ledger.budget_store import STATE_COLUMNS, WindowStore, window_state
from wflo_prefect.ledger.cost_entries import INSERT_ENTRY
from wflo_prefect.ledger.ids import new_id
from wflo_prefect.ledger.models import (
    BudgetReservationRow,
    BudgetWindowRow,
    CostEntryRow,
    Money,
    utcnow,
)

__all__ = ["CHARGE_WINDOW", "INSERT_LEASED_ENTRY", "LeaseStore"]


class LeaseStore(WindowStore):
    """Windows and call holds, plus the leases processes take on them."""

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
            lease_id = new_id()
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
        return leasable(
            request.limit_usd, row.spent_usd, row.reserved_usd, want, share, freed=freed
        )

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
            update(W).where(W.id == window_id).values(**values).returning(*STATE_COLUMNS)
        ).one()
        return window_state(row)

    def leased_by_others(self, window_id: str, owner: str) -> tuple[WindowState | None, Decimal]:
        """A window's state and the money open leases of processes other than ``owner``
        hold on it, read in one statement (so both are of the same moment)."""
        R, W = BudgetReservationRow, BudgetWindowRow
        others = (
            select(func.coalesce(func.sum(R.amount_usd), 0))
            .where(R.window_id == W.id, R.kind == "lease", R.status == "held", R.owner != owner)
            .scalar_subquery()
        )
        query = select(*STATE_COLUMNS, others.label("others")).where(W.id == window_id)
        with self._ledger.begin() as connection:
            row = connection.execute(query).one_or_none()
        if row is None:
            return None, Decimal(0)
        return window_state(row), Decimal(str(row.others))

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

    def _insert_leased(
        self, connection: Connection, values: dict[str, Any], charge: LeaseCharge
    ) -> None:
        """Write the entry naming its lease, if the lease is still held (one statement:
        the lease row is share-locked until commit, so it cannot expire meanwhile)."""
        inserted = connection.execute(
            INSERT_LEASED_ENTRY, {**values, "lease_id": charge.lease_id}
        ).first()
        if inserted is None:
            # The lease was expired by another process: its hold is gone, charge directly.
            connection.execute(INSERT_ENTRY, [values])
            connection.execute(CHARGE_WINDOW, {"b_id": charge.window_id, "b_cost": charge.cost_usd})
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
            connection.execute(CHARGE_WINDOW, {"b_id": charge.window_id, "b_cost": charge.cost_usd})
        elif charge.grow_usd:
            connection.execute(_GROW_WINDOW, {"b_id": charge.window_id, "b_grow": charge.grow_usd})


_R = BudgetReservationRow
_W = BudgetWindowRow
_ENTRY_COLUMNS = list(CostEntryRow.__table__.columns)
_LEASE_ID = bindparam("lease_id", type_=String(36))
# INSERT ... SELECT <the entry> WHERE the lease is held, share-locking the lease row.
INSERT_LEASED_ENTRY = (
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
CHARGE_WINDOW = (
    update(_W)
    .where(_W.id == bindparam("b_id"))
    .values(spent_usd=_W.spent_usd + bindparam("b_cost", type_=Money))
)
_GROW_WINDOW = (
    update(_W)
    .where(_W.id == bindparam("b_id"))
    .values(reserved_usd=_W.reserved_usd + bindparam("b_grow", type_=Money))
)
