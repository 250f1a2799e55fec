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
from dataclasses import replace
from datetime import datetime

from wflo_prefect.costs.alerts import check_thresholds
from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budgeting import BoundBudget
from wflo_prefect.costs.lease import (
    LEASE_CALLS,
    MIN_CALLS,
    SHARE,
    Lease,
    LeaseSlice,
    charging,
    safely,
)
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.costs.usage import in_money_context
from wflo_prefect.ledger.budget_model import HoldRequest
from wflo_prefect.ledger.database import Database
from wflo_prefect.ledger.repository import Ledger

__all__ = [
    "LEASE_CALLS",
    "MIN_CALLS",
    "SHARE",
    "LeaseSlice",
    "charging",
    "flush_leases",
    "owner",
    "take",
]

_Key = tuple[int, str, datetime]


class _Book:
    """This process's leases, by ledger, budget key and window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[_Key, Lease] = {}
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
            lease = _open(ledger, bound, request, who, book)
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
    book: _Book,
) -> Lease | None:
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
    lease = Lease(
        ledger=ledger,
        lease_id=result.lease_id,
        window_id=result.window_id,
        bound=bound,
        request=want,
        who=who,
        held=result.held_usd,
        state=result.state,
    )
    ledger.on_dispose(flush_leases)
    _start_keeper(book)
    if result.state is not None:
        check_thresholds(bound, result.state, who)
    return lease


def _hold_on(
    lease: Lease,
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


@in_money_context
def flush_leases(ledger: Database | None = None) -> None:
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
                safely(lease.give_back)
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


@in_money_context
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
                    safely(lease.give_back)
                elif now - lease.synced_at >= ttl:
                    safely(lease.heartbeat)
            if lease.gone:
                with book.lock:
                    if book.leases.get(key) is lease:
                        del book.leases[key]


atexit.register(flush_leases)
