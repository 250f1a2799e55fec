"""Holding calls to their budgets: which budgets apply, reserve, settle, release.

A call's worst case is reserved on every budget that applies to it (on this
process's lease, or one atomic ledger transaction on the windows), then settled
with the actual cost or released. Thresholds and overruns alert once per budget
window (:mod:`wflo_prefect.costs.alerts`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from wflo_prefect.costs import alerts, leases
from wflo_prefect.costs.alerts import check_thresholds
from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.budgeting import BoundBudget, bind_budgets
from wflo_prefect.costs.context import active_budgets
from wflo_prefect.costs.errors import BudgetExceeded
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.costs.usage import in_money_context
from wflo_prefect.errors import LedgerError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.budget_model import HoldRequest, Refusal, WindowState, fits_without
from wflo_prefect.ledger.cost_entries import BudgetRecord, CostEntry, NewCostEntry
from wflo_prefect.ledger.models import utcnow
from wflo_prefect.observability.logging import get_logger

__all__ = ["BoundBudget", "Hold", "applicable_budgets", "register_budget", "reserve"]

_log = get_logger("costs")


_unresolved: set[tuple[str, str]] = set()


def _warn_unresolved(budget: Budget) -> None:
    """Say (once per budget) that a budget did not apply because its scope is unknown."""
    marker = (budget.display_name, budget.scope)
    if marker in _unresolved:
        return
    _unresolved.add(marker)
    _log.warning(
        "budget.scope_unknown",
        budget=budget.display_name,
        scope=budget.scope,
        hint={
            "user": "name the user with a `user:<name>` tag, a `user` parameter or attribute_to()",
            "deployment": "the run is not from a deployment",
            "flow": "the call is not made inside a flow run",
            "flow_run": "the call is not made inside a flow run",
        }.get(budget.scope, ""),
    )


def applicable_budgets(
    budgets: Sequence[Budget], who: Attribution, at: datetime | None = None
) -> list[BoundBudget]:
    """The budgets (of ``budgets``) a call with attribution ``who`` counts against.

    A budget whose scope has no value for the call (a ``user`` budget and no known
    user, a ``deployment`` budget outside a deployment) does not apply; that is
    logged once per budget, since it usually means the attribution is missing.
    """
    bound, unresolved = bind_budgets(budgets, who, at or utcnow())
    for budget in unresolved:
        _warn_unresolved(budget)
    return bound


_registered: set[tuple[str, Budget]] = set()
_registered_lock = threading.Lock()


def register_budget(budget: Budget) -> None:
    """Record the budget's definition in the ledger (once per process and ledger)."""
    ledger = get_ledger()
    marker = (ledger.url, budget)
    with _registered_lock:
        if marker in _registered:
            return
    record = BudgetRecord(
        name=budget.display_name,
        scope=budget.scope,
        scope_value=budget.scope_value,
        max_usd=budget.max_usd,
        period=budget.period,
        timezone=budget.zone().key,
        alert_thresholds=[str(t) for t in budget.alert_thresholds],
        on_exceeded=budget.on_exceeded,
        updated_at=utcnow(),
    )
    try:
        ledger.costs.upsert_budget(record)
    except LedgerError:
        # Another process registered the same name at the same moment; theirs stands.
        ledger.costs.upsert_budget(record)
    with _registered_lock:
        _registered.add(marker)


@dataclass
class Hold:
    """Money held for one call on the budgets that apply to it: on this process's
    leases where it can, on the budgets' windows otherwise."""

    amount_usd: Decimal
    who: Attribution
    bound: list[BoundBudget]
    reservation_ids: list[str] = field(default_factory=list)
    slices: list[leases.LeaseSlice] = field(default_factory=list)
    closed: bool = False

    @in_money_context
    def settle(self, entry: NewCostEntry) -> CostEntry | None:
        """Charge the actual cost, write the cost entry, alert on thresholds; once."""
        if self.closed:
            return None
        self.closed = True
        ledger = get_ledger()
        states: list[WindowState] = []
        if not self.reservation_ids and not self.slices:
            stored: CostEntry | None = ledger.costs.record(entry)
        else:
            with leases.charging(self.slices, entry.cost_usd) as charges:
                stored, states = ledger.costs.settle(self.reservation_ids, entry, charges)
        by_key = {b.key: b for b in self.bound}
        for state in states:
            bound = by_key.get(state.budget_key)
            if bound is not None:
                check_thresholds(bound, state, self.who)
        return stored

    @in_money_context
    def release(self) -> None:
        """Give the held money back (the call failed or was not sent)."""
        if self.closed:
            return
        self.closed = True
        for slice_ in self.slices:
            slice_.release()
        if self.reservation_ids:
            get_ledger().costs.release(self.reservation_ids)


@in_money_context
def reserve(
    amount_usd: Decimal,
    who: Attribution,
    budgets: Sequence[Budget] | None = None,
    *,
    enforce: bool = True,
) -> Hold:
    """Hold ``amount_usd`` on every applicable budget, or raise :class:`BudgetExceeded`.

    ``budgets`` defaults to the active ones. With ``enforce=False`` nothing is refused
    (the money is already spent, e.g. :func:`record_llm_usage`).
    """
    chosen = active_budgets() if budgets is None else budgets
    bound = applicable_budgets(chosen, who)
    hold = Hold(amount_usd=amount_usd, who=who, bound=bound)
    if not bound:
        return hold
    ledger = get_ledger()
    on_window: list[HoldRequest] = []
    for item in bound:
        register_budget(item.budget)
        request = HoldRequest(
            budget_key=item.key,
            window_start=item.window_start,
            window_end=item.window_end,
            limit_usd=item.budget.max_usd,
            amount_usd=amount_usd,
            enforce=item.budget.on_exceeded == "halt",
        )
        slice_ = leases.take(ledger, item, request, who, must_fit=enforce)
        if slice_ is not None:
            hold.slices.append(slice_)
        elif enforce:
            on_window.append(request)
        else:
            on_window.append(replace(request, enforce=False))
    if not on_window:
        return hold
    try:
        hold.reservation_ids = _reserve_on_windows(on_window, bound, who)
    except BaseException:
        for slice_ in hold.slices:
            slice_.release()
        raise
    return hold


def _reserve_on_windows(
    requests: list[HoldRequest], bound: list[BoundBudget], who: Attribution
) -> list[str]:
    """Hold the call on the windows themselves; raise BudgetExceeded when it does not fit.

    Before refusing, retry while the call may fit soon: at once when the window's
    state (read after the refusal) shows money came back meanwhile, and, with
    leases on, while it would fit once other processes' leases on the window came
    back, for up to two lease times and a bit: a live process gives back an idle
    lease after one lease time, and syncs a busy one as often.
    """
    ledger = get_ledger()
    result = ledger.costs.reserve(requests, flow_run_id=who.flow_run_id)
    if isinstance(result, Refusal) and result.reserved_usd > 0 and _expire_abandoned_holds():
        result = ledger.costs.reserve(requests, flow_run_id=who.flow_run_id)
    ttl = max(get_cost_settings().budget_lease_seconds, 0.0)
    deadline = time.monotonic() + 2 * ttl + 0.5
    pause = 0.0  # the first retry at once: the money is back already
    while isinstance(result, Refusal) and _may_fit_soon(result, leased=ttl > 0):
        if time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(0.02, max(ttl / 10, 0.005))
        result = ledger.costs.reserve(requests, flow_run_id=who.flow_run_id)
    if isinstance(result, Refusal):
        _refused(result, bound, who)
    assert not isinstance(result, Refusal)
    return result


def _may_fit_soon(refusal: Refusal, *, leased: bool) -> bool:
    """Whether the refused call fits the window's state (read after the refusal: money
    may have come back meanwhile), or would once other processes' leases came back.

    The state and the other processes' leases are read together: read apart, a lease
    given back between the two reads would look like money that can never come back.
    """
    if refusal.state is None:
        return False
    if not leased or refusal.reserved_usd <= 0:
        return fits_without(refusal, Decimal(0))
    state, others = get_ledger().costs.leased_by_others(refusal.state.id, leases.owner())
    if state is None:
        return False
    now = replace(refusal, spent_usd=state.spent_usd, reserved_usd=state.reserved_usd, state=state)
    return fits_without(now, others)


_last_expiry = 0.0


def _expire_abandoned_holds() -> int:
    """Give back holds of dead processes (looked for at most every few seconds).

    A call hold is abandoned after the reservation timeout; a lease after it went
    unsynced for ten lease times (at least 30 s): live processes sync every lease time.
    """
    global _last_expiry
    if time.monotonic() - _last_expiry < 5:
        return 0
    _last_expiry = time.monotonic()
    settings = get_cost_settings()
    timeout = timedelta(seconds=settings.reservation_timeout_seconds)
    lease_timeout = timedelta(seconds=max(30.0, 10 * settings.budget_lease_seconds))
    now = utcnow()
    expired = get_ledger().costs.expire_stale(now - timeout, leases_older_than=now - lease_timeout)
    if expired:
        _log.warning("budget.holds_expired", count=expired, older_than_s=timeout.total_seconds())
    return expired


def _refused(refusal: Refusal, bound: list[BoundBudget], who: Attribution) -> None:
    item = next(b for b in bound if b.key == refusal.request.budget_key)
    error = BudgetExceeded(
        item.budget.display_name,
        limit_usd=refusal.request.limit_usd,
        spent_usd=refusal.spent_usd + refusal.reserved_usd,
        attempted_usd=refusal.request.amount_usd,
        window_start=refusal.request.window_start.isoformat(),
    )
    alerts.refused(refusal, item, who)
    raise error
