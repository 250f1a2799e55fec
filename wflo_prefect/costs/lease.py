"""One lease of a budget window and the calls held on it (in memory).

A :class:`Lease` is this process's slice of one window; each call's worst case is
a :class:`LeaseSlice` of it. :func:`charging` moves a settled call's cost from
held to pending while the ledger writes it. The book of leases (which process
holds what, the keeper thread) is :mod:`wflo_prefect.costs.leases`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from wflo_prefect.costs.alerts import check_thresholds
from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budgeting import BoundBudget, alerts_due
from wflo_prefect.costs.handlers import handler_thresholds
from wflo_prefect.ledger.budget_model import (
    HoldRequest,
    LeaseCharge,
    LeaseSync,
    WindowState,
    lease_too_small,
)
from wflo_prefect.ledger.repository import Ledger
from wflo_prefect.observability.logging import get_logger

__all__ = ["LEASE_CALLS", "MIN_CALLS", "SHARE", "Lease", "LeaseSlice", "charging", "safely"]

#: A lease is sized for this many calls of the worst case that opened (or grew) it.
LEASE_CALLS = 32
#: A lease takes at most this fraction (1/SHARE) of what its window has left.
SHARE = 16
#: No lease is taken when it would cover fewer calls than this: each call is held instead.
MIN_CALLS = 2

_log = get_logger("costs")


@dataclass(eq=False)
class Lease:
    ledger: Ledger
    lease_id: str
    window_id: str
    bound: BoundBudget
    request: HoldRequest
    who: Attribution
    held: Decimal
    state: WindowState | None
    committed: Decimal = Decimal(0)  # worst cases of the calls in flight
    pending: Decimal = Decimal(0)  # actual costs charged since the last sync
    named: Decimal = Decimal(0)  # ... of which in cost entries naming the lease
    in_flight: int = 0
    synced_at: float = field(default_factory=time.monotonic)
    used_at: float = field(default_factory=time.monotonic)
    gone: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def free(self) -> Decimal:
        return self.held - self.committed - self.pending

    def alive(self) -> bool:
        """Whether the lease can still hold calls (a method: syncs change it)."""
        return not self.gone

    def tight(self) -> bool:
        """Whether the window is so near its limit that this lease should not be kept
        (a new lease would cover fewer than MIN_CALLS calls)."""
        state = self.state
        if state is None or not self.request.enforce:
            return False
        per_call = self.request.amount_usd / LEASE_CALLS
        return lease_too_small(state, self.free, per_call, SHARE, MIN_CALLS)

    def heartbeat(self) -> None:
        """Sync; near the limit, give the free money back so others can use it."""
        self.sync()
        if self.alive() and self.tight():
            self.give_back()

    def give_back(self) -> None:
        """Return the free money; close the lease when no call is in flight."""
        self.sync(give_back=self.free, close=self.in_flight == 0)

    def sync(
        self,
        *,
        give_back: Decimal = Decimal(0),
        want: Decimal = Decimal(0),
        minimum: Decimal = Decimal(0),
        close: bool = False,
    ) -> None:
        """Sync with the window (the caller holds ``lock``)."""
        result: LeaseSync = self.ledger.costs.sync_lease(
            self.lease_id,
            self.request,
            entries_usd=self.named,
            give_back_usd=max(give_back, Decimal(0)),
            want_usd=want,
            minimum_usd=minimum,
            share=SHARE,
            close=close,
        )
        self.synced_at = time.monotonic()
        if result.lease_id is None:
            # Expired by another process (this one stalled): its money is gone.
            _log.warning("budget.lease_lost", lease_id=self.lease_id, window_id=self.window_id)
            self.gone = True
            return
        self.pending -= result.charged_usd
        self.named = Decimal(0)
        self.held = result.held_usd
        self.gone = close
        if result.state is not None:
            self.state = result.state
            check_thresholds(self.bound, result.state, self.who)

    def projected_alert(self) -> bool:
        """Whether this process's own spend may have crossed an alert threshold or the limit."""
        state = self.state
        if state is None or self.pending <= 0:
            return False
        budget = self.bound.budget
        watched = handler_thresholds(budget.display_name)
        return bool(alerts_due(budget, state, self.pending, watched))


@dataclass(eq=False)
class LeaseSlice:
    """One call's worst case held on a lease."""

    lease: Lease
    amount: Decimal
    closed: bool = False

    def release(self) -> None:
        """Give the slice back to its lease (the call failed or was not sent)."""
        if self.closed:
            return
        with self.lease.lock:
            self.close()

    def close(self) -> None:
        """Take the call off its lease's books (the caller holds the lease's lock)."""
        self.closed = True
        self.lease.committed -= self.amount
        self.lease.in_flight -= 1


@contextmanager
def charging(slices: Sequence[LeaseSlice], cost: Decimal) -> Iterator[list[LeaseCharge]]:
    """Lock the slices' leases (in order) while their charges are written; then account.

    Yields the :class:`LeaseCharge` of each open slice for the ledger transaction
    that writes the call's cost entry. On success the cost moves from held to
    pending on each lease; on error the slices are given back.
    """
    open_slices = sorted((s for s in slices if not s.closed), key=lambda s: s.lease.lease_id)
    with ExitStack() as stack:
        for slice_ in open_slices:
            stack.enter_context(slice_.lease.lock)
        charges = []
        for index, slice_ in enumerate(open_slices):
            lease = slice_.lease
            overage = cost - slice_.amount
            grow = max(overage - max(lease.free, Decimal(0)), Decimal(0)) if overage > 0 else 0
            charges.append(
                LeaseCharge(lease.lease_id, lease.window_id, cost, Decimal(grow), index == 0)
            )
        try:
            yield charges
        except BaseException:
            for slice_ in open_slices:
                slice_.close()
            raise
        for slice_, charge in zip(open_slices, charges, strict=True):
            lease = slice_.lease
            slice_.close()
            lease.pending += cost
            if charge.via_entry:
                lease.named += cost
            lease.held += charge.grow_usd
        for slice_ in open_slices:
            lease = slice_.lease
            if not lease.gone and lease.projected_alert():
                safely(lease.sync)


def safely(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:  # a failed sync is retried by the keeper; the call stands.
        _log.warning("budget.lease_sync_failed", error=str(exc))
