"""Holding calls to their budgets: which budgets apply, reserve, settle, release, alert.

A call's worst case is reserved on every budget that applies to it (one atomic
ledger transaction), then settled with the actual cost or released. Thresholds
and overruns alert once per budget window: a Prefect event (``wflo.budget.threshold``,
``wflo.budget.exceeded``) that automations can route, and an audit entry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from wflo_prefect.costs import leases
from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.context import active_budgets
from wflo_prefect.costs.errors import BudgetExceeded
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.errors import LedgerError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.costs import (
    BudgetRecord,
    CostEntry,
    HoldRequest,
    NewCostEntry,
    Refusal,
    WindowState,
)
from wflo_prefect.ledger.models import utcnow
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.notify import send_notification

__all__ = ["BoundBudget", "Hold", "applicable_budgets", "register_budget", "reserve"]

_log = get_logger("costs")


@dataclass(frozen=True, slots=True)
class BoundBudget:
    """A budget resolved for one call: its key and window."""

    budget: Budget
    key: str
    window_start: datetime
    window_end: datetime | None


def _scope_value(budget: Budget, who: Attribution) -> str | None:
    if budget.scope == "global":
        return "*"
    if budget.scope == "tag":
        return budget.scope_value if budget.scope_value in who.tags else None
    actual = {
        "flow_run": who.flow_run_id,
        "flow": who.flow_name,
        "deployment": who.deployment_id,
        "user": who.user,
    }[budget.scope]
    if budget.scope_value is not None and actual != budget.scope_value:
        return None
    return actual


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
    moment = at or utcnow()
    bound: dict[str, BoundBudget] = {}
    for budget in budgets:
        value = _scope_value(budget, who)
        if value is None:
            if budget.scope != "tag" and budget.scope_value is None:
                _warn_unresolved(budget)
            continue
        key = f"{budget.display_name}|{budget.scope}={value}"
        start, end = budget.window(moment)
        bound.setdefault(key, BoundBudget(budget, key, start, end))
    return list(bound.values())


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


def _correlation(who: Attribution) -> Correlation:
    return Correlation(
        flow_run_id=who.flow_run_id,
        task_run_id=who.task_run_id,
        flow_name=who.flow_name,
        deployment_id=who.deployment_id,
        trace_id=who.trace_id,
    )


def _emit(event: str, bound: BoundBudget, who: Attribution, payload: dict[str, Any]) -> None:
    from prefect.events import emit_event
    from prefect.settings import get_current_settings

    if get_current_settings().api.url is None:
        # No Prefect API to send to (a plain script): Prefect would start a temporary
        # server just for this event. The ledger's audit entry still records the alert.
        _log.info("costs.event_skipped", event_name=event, reason="no PREFECT_API_URL")
        return

    related = []
    if who.flow_run_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{who.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    try:
        emit_event(
            event=event,
            resource={
                "prefect.resource.id": f"wflo.budget.{bound.budget.display_name}",
                "prefect.resource.name": bound.budget.display_name,
                "wflo.budget.key": bound.key,
            },
            related=related,
            payload=payload,
        )
    except Exception as exc:  # events are best effort; the ledger has the audit entry.
        _log.warning("costs.event_failed", event_name=event, error=str(exc))


def _alert(
    kind: str, marker: str, bound: BoundBudget, state: WindowState, who: Attribution, **extra: Any
) -> bool:
    """Fire one alert, if this process is the one that claims it; whether it did."""
    if not get_ledger().costs.claim_alert(state.id, marker):
        return False
    payload = {
        "budget": bound.budget.display_name,
        "key": bound.key,
        "window_start": state.window_start.isoformat(),
        "limit_usd": str(state.limit_usd),
        "spent_usd": str(state.spent_usd),
        **{k: str(v) for k, v in extra.items()},
    }
    get_ledger().audit.record(
        f"budget.{kind}", correlation=_correlation(who), outcome=marker, payload=payload
    )
    _log.warning(f"budget.{kind}", **payload)
    _emit(f"wflo.budget.{kind}", bound, who, payload)
    for target in bound.budget.notify:
        status = send_notification(
            target,
            subject=f"wflo budget {bound.budget.display_name}: {kind} {marker}",
            body=(
                f"Budget {bound.budget.display_name!r} ({bound.key}): {kind} {marker}; "
                f"spent ${state.spent_usd} of ${state.limit_usd} in the window from "
                f"{state.window_start:%Y-%m-%d %H:%M %Z}."
            ),
        )
        get_ledger().audit.record(
            "budget.notified",
            correlation=_correlation(who),
            outcome=status,
            payload={"budget": bound.budget.display_name, "target": target, "alert": marker},
        )
    return True


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
                _check_thresholds(bound, state, self.who)
        return stored

    def release(self) -> None:
        """Give the held money back (the call failed or was not sent)."""
        if self.closed:
            return
        self.closed = True
        for slice_ in self.slices:
            slice_.release()
        if self.reservation_ids:
            get_ledger().costs.release(self.reservation_ids)


def _check_thresholds(bound: BoundBudget, state: WindowState, who: Attribution) -> None:
    budget = bound.budget
    if budget.on_exceeded == "ignore" or state.limit_usd <= 0:
        return
    used = state.spent_usd / state.limit_usd
    for threshold in budget.alert_thresholds:
        if used >= threshold and str(threshold) not in state.alerts_fired:
            _alert("threshold", str(threshold), bound, state, who, threshold=threshold)
    over = state.spent_usd > state.limit_usd and "exceeded" not in state.alerts_fired
    if over and _alert("exceeded", "exceeded", bound, state, who, on_exceeded=budget.on_exceeded):
        metrics.BUDGET_EXCEEDED.labels(who.flow_name or "").inc()


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
        slice_ = leases.take(ledger, item, request, who, _check_thresholds, must_fit=enforce)
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

    Before refusing a call that would fit if other processes' leases on the window
    came back, wait for them (up to two lease times and a bit): a live process
    gives back an idle lease after one lease time, and syncs a busy one as often.
    """
    ledger = get_ledger()
    result = ledger.costs.reserve(requests, flow_run_id=who.flow_run_id)
    if isinstance(result, Refusal) and result.reserved_usd > 0 and _expire_abandoned_holds():
        result = ledger.costs.reserve(requests, flow_run_id=who.flow_run_id)
    ttl = get_cost_settings().budget_lease_seconds
    deadline = time.monotonic() + 2 * ttl + 0.5
    while isinstance(result, Refusal) and ttl > 0 and _leases_would_make_room(result):
        if time.monotonic() >= deadline:
            break
        time.sleep(min(0.02, ttl / 10))
        result = ledger.costs.reserve(requests, flow_run_id=who.flow_run_id)
    if isinstance(result, Refusal):
        _refused(result, bound, who)
    assert not isinstance(result, Refusal)
    return result


def _leases_would_make_room(refusal: Refusal) -> bool:
    """Whether the refused call would fit if other processes' leases were given back."""
    if refusal.state is None or refusal.reserved_usd <= 0:
        return False
    others = get_ledger().costs.leased_by_others(refusal.state.id, leases.owner())
    request = refusal.request
    return refusal.spent_usd + refusal.reserved_usd - others + request.amount_usd <= (
        request.limit_usd
    )


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
    spent = refusal.spent_usd + refusal.reserved_usd
    error = BudgetExceeded(
        item.budget.display_name,
        limit_usd=refusal.request.limit_usd,
        spent_usd=spent,
        attempted_usd=refusal.request.amount_usd,
        window_start=refusal.request.window_start.isoformat(),
    )
    metrics.BUDGET_EXCEEDED.labels(who.flow_name or "").inc()
    payload = {
        "budget": item.budget.display_name,
        "key": item.key,
        "limit_usd": str(refusal.request.limit_usd),
        "spent_usd": str(refusal.spent_usd),
        "reserved_usd": str(refusal.reserved_usd),
        "attempted_usd": str(refusal.request.amount_usd),
    }
    get_ledger().audit.record(
        "budget.refused", correlation=_correlation(who), outcome="halt", payload=payload
    )
    _log.warning("budget.refused", **payload)
    state = refusal.state
    fired = state is None or "exceeded" in state.alerts_fired
    if state is not None and not fired and get_ledger().costs.claim_alert(state.id, "exceeded"):
        _emit("wflo.budget.exceeded", item, who, {**payload, "on_exceeded": "halt"})
    raise error
