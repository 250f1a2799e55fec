"""Budget leases: hold many calls' worst cases with one write to the budget's window.

Holding each call on the window row costs two transactions on one hot row per
call, and every process spending from the budget queues on that row. Instead, a
process *leases* a slice of the window (sized for :data:`LEASE_CALLS` calls of the
current worst case, never more than :data:`SHARE`-th of what is left) and holds
each call against the lease in memory, before the call is sent, exactly as it
would on the window. A settled call's cost entry names the lease (one
``INSERT``, no update of a shared row), so every call is recorded once and a
process that dies loses nothing: ``expire_stale`` charges the cost of the entries
naming its lease since its last sync and gives the rest back.

A lease syncs with its window (pending cost moved to spent, the window's state
read back for threshold alerts) when it runs out, when the projected spend
crosses an alert threshold, and at least every ``budget_lease_seconds``; a lease
idle for that long is closed and its money given back, and so is every lease at
the end of a flow run and at process exit. Near the limit (when a lease would
cover fewer than :data:`MIN_CALLS` calls) no lease is taken and each call is held
on the window itself, so a budget is spent to its last cent without overspend.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.ledger.costs import HoldRequest, LeaseCharge, LeaseSync, WindowState
from wflo_prefect.ledger.repository import Ledger
from wflo_prefect.observability.logging import get_logger

if TYPE_CHECKING:
    from wflo_prefect.costs.enforcement import BoundBudget

__all__ = ["LEASE_CALLS", "MIN_CALLS", "SHARE", "LeaseSlice", "flush_leases", "take"]

#: A lease is sized for this many calls of the worst case that opened (or grew) it.
LEASE_CALLS = 32
#: A lease takes at most this fraction (1/SHARE) of what its window has left.
SHARE = 16
#: No lease is taken when it would cover fewer calls than this: each call is held instead.
MIN_CALLS = 2

_log = get_logger("costs")

#: Called with (budget key's bound budget, window state, attribution) after each sync.
StateHook = Callable[["BoundBudget", WindowState, Attribution], None]


@dataclass(eq=False)
class _Lease:
    ledger: Ledger
    lease_id: str
    window_id: str
    bound: BoundBudget
    request: HoldRequest
    who: Attribution
    on_state: StateHook
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
        left = state.limit_usd - state.spent_usd - state.reserved_usd + self.free
        return left / SHARE < per_call * MIN_CALLS

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
            self.on_state(self.bound, result.state, self.who)

    def projected_alert(self) -> bool:
        """Whether this process's own spend may have crossed an alert threshold or the limit."""
        state = self.state
        budget = self.bound.budget
        if state is None or state.limit_usd <= 0 or self.pending <= 0:
            return False
        if budget.on_exceeded == "ignore":
            return False
        used = (state.spent_usd + self.pending) / state.limit_usd
        markers = [str(t) for t in budget.alert_thresholds if used >= t]
        if used > 1:
            markers.append("exceeded")
        return any(m not in state.alerts_fired for m in markers)


@dataclass(eq=False)
class LeaseSlice:
    """One call's worst case held on a lease."""

    lease: _Lease
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


_Key = tuple[int, str, datetime]


class _Book:
    """This process's leases, by ledger, budget key and window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[_Key, _Lease] = {}
        self.backoff: dict[_Key, float] = {}
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.keeper: threading.Thread | None = None


_book = _Book()


def _forget_after_fork() -> None:
    # A forked child must not spend its parent's leases.
    global _book
    _book = _Book()


os.register_at_fork(after_in_child=_forget_after_fork)


def owner() -> str:
    """This process's name on its leases (host and pid)."""
    return _book.owner


def take(
    ledger: Ledger,
    bound: BoundBudget,
    request: HoldRequest,
    who: Attribution,
    on_state: StateHook,
    *,
    must_fit: bool = True,
) -> LeaseSlice | None:
    """Hold ``request.amount_usd`` on this process's lease of the request's window.

    Opens or grows the lease as needed. ``None``: no lease can cover the call (the
    budget is near its limit, or leases are turned off); hold the call on the
    window itself.
    """
    ttl = get_cost_settings().budget_lease_seconds
    amount = request.amount_usd
    if ttl <= 0 or amount <= 0:
        return None
    book = _book
    key: _Key = (id(ledger), request.budget_key, request.window_start)
    now = time.monotonic()
    with book.lock:
        lease = book.leases.get(key)
        if lease is None or lease.gone:
            if book.backoff.get(key, 0.0) > now:
                return None
            lease = _open(ledger, bound, request, who, on_state, book)
            if lease is None:
                book.backoff[key] = now + ttl
                return None
            book.leases[key] = lease
    slice_ = _hold_on(lease, bound, request, who, ttl, must_fit)
    if lease.gone:
        with book.lock:
            if book.leases.get(key) is lease:
                del book.leases[key]
            if slice_ is None:
                book.backoff[key] = now + ttl
    return slice_


def _open(
    ledger: Ledger,
    bound: BoundBudget,
    request: HoldRequest,
    who: Attribution,
    on_state: StateHook,
    book: _Book,
) -> _Lease | None:
    want = replace(request, amount_usd=request.amount_usd * LEASE_CALLS)
    result = ledger.costs.open_lease(
        want,
        minimum_usd=request.amount_usd * MIN_CALLS,
        share=SHARE,
        owner=book.owner,
        flow_run_id=who.flow_run_id,
    )
    if result.lease_id is None:
        return None
    lease = _Lease(
        ledger=ledger,
        lease_id=result.lease_id,
        window_id=result.window_id,
        bound=bound,
        request=want,
        who=who,
        on_state=on_state,
        held=result.held_usd,
        state=result.state,
    )
    ledger.on_dispose(flush_leases)
    _start_keeper(book)
    if result.state is not None:
        on_state(bound, result.state, who)
    return lease


def _hold_on(
    lease: _Lease,
    bound: BoundBudget,
    request: HoldRequest,
    who: Attribution,
    ttl: float,
    must_fit: bool,
) -> LeaseSlice | None:
    amount = request.amount_usd
    with lease.lock:
        if not lease.alive():
            return None
        lease.bound, lease.who = bound, who
        # The budget's current limit (a WfloBudget block may have changed it).
        lease.request = replace(request, amount_usd=lease.request.amount_usd)
        now = time.monotonic()
        if now - lease.synced_at >= ttl:
            lease.heartbeat()
        if lease.alive() and lease.free < amount:
            lease.sync(want=amount * LEASE_CALLS, minimum=amount - lease.free)
        if not lease.alive():
            return None
        if lease.free < amount:
            if must_fit:
                # Near the limit: give this lease's money back and hold calls one by one.
                lease.give_back()
            return None
        lease.committed += amount
        lease.in_flight += 1
        lease.used_at = now
        return LeaseSlice(lease, amount)


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
                _safely(lease.sync)


def _safely(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:  # a failed sync is retried by the keeper; the call stands.
        _log.warning("budget.lease_sync_failed", error=str(exc))


def flush_leases(ledger: Ledger | None = None) -> None:
    """Close this process's leases (of ``ledger``, or all): pending cost charged to
    their windows, unused money given back. Leases with calls in flight give back
    what is free and stay open for them."""
    book = _book
    with book.lock:
        items = [
            (k, lease)
            for k, lease in book.leases.items()
            if ledger is None or lease.ledger is ledger
        ]
    for key, lease in items:
        with lease.lock:
            if lease.alive():
                _safely(lease.give_back)
        if lease.gone:
            with book.lock:
                if book.leases.get(key) is lease:
                    del book.leases[key]


def _start_keeper(book: _Book) -> None:
    if book.keeper is not None and book.keeper.is_alive():
        return
    book.keeper = threading.Thread(
        target=_keep, args=(book,), name="wflo-budget-leases", daemon=True
    )
    book.keeper.start()


def _keep(book: _Book) -> None:
    """Sync leases at least every TTL; close those idle for a TTL (their money goes back)."""
    while book is _book:
        ttl = get_cost_settings().budget_lease_seconds or 1.0
        time.sleep(ttl / 2)
        with book.lock:
            items = list(book.leases.items())
        if not items:
            continue
        now = time.monotonic()
        for key, lease in items:
            with lease.lock:
                if lease.gone:
                    pass
                elif now - lease.used_at >= ttl and lease.in_flight == 0:
                    _safely(lease.give_back)
                elif now - lease.synced_at >= ttl:
                    _safely(lease.heartbeat)
            if lease.gone:
                with book.lock:
                    if book.leases.get(key) is lease:
                        del book.leases[key]


atexit.register(flush_leases)
