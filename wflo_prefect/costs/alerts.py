"""Budget alerts: thresholds and overruns, once per budget window.

An alert is a Prefect event (``wflo.budget.threshold``, ``wflo.budget.exceeded``)
that automations can route, an audit entry, a log line, the budget's ``notify=``
targets and the Python handlers of :mod:`wflo_prefect.costs.handlers`. Which
alerts a window's spend calls for is the pure
:func:`~wflo_prefect.costs.budgeting.alerts_due`; the ledger's ``claim_alert``
makes sure one process fires each. A call a ``halt`` budget refuses tells the
budget's ``notify=`` targets and handlers once per run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Literal

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budgeting import BoundBudget, alerts_due
from wflo_prefect.costs.handlers import BudgetEvent, handler_thresholds, notify_handlers
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.budget_model import Refusal, WindowState
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.notify import send_notification

__all__ = ["check_thresholds", "correlation_of", "refused"]

_log = get_logger("costs")


def correlation_of(who: Attribution) -> Correlation:
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
    kind: Literal["threshold", "exceeded"],
    marker: str,
    bound: BoundBudget,
    state: WindowState,
    who: Attribution,
    **extra: Any,
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
    event = _event(kind, bound, state, who, marker)
    if kind == "threshold" and event.threshold not in bound.budget.alert_thresholds:
        # Watched only by a Python handler: no notification, no Prefect event.
        _log.info("budget.handler_threshold", **payload)
        notify_handlers(event)
        return True
    get_ledger().audit.record(
        f"budget.{kind}", correlation=correlation_of(who), outcome=marker, payload=payload
    )
    _log.warning(f"budget.{kind}", **payload)
    _emit(f"wflo.budget.{kind}", bound, who, payload)
    _deliver(
        bound,
        who,
        marker,
        subject=f"wflo budget {bound.budget.display_name}: {kind} {marker}",
        body=(
            f"Budget {bound.budget.display_name!r} ({bound.key}): {kind} {marker}; "
            f"spent ${state.spent_usd} of ${state.limit_usd} in the window from "
            f"{state.window_start:%Y-%m-%d %H:%M %Z}."
        ),
    )
    notify_handlers(event)
    return True


def _deliver(bound: BoundBudget, who: Attribution, marker: str, *, subject: str, body: str) -> None:
    """Send to each of the budget's ``notify=`` targets; audit each delivery."""
    for target in bound.budget.notify:
        channel: Any = target
        if isinstance(target, str) and "://" in target:
            from wflo_prefect.policies.targets import parse_target

            channel = parse_target(target) or target
        status = send_notification(channel, subject=subject, body=body)
        get_ledger().audit.record(
            "budget.notified",
            correlation=correlation_of(who),
            outcome=status,
            payload={"budget": bound.budget.display_name, "target": str(target), "alert": marker},
        )


def _event(
    kind: Literal["threshold", "exceeded", "refused"],
    bound: BoundBudget,
    state: WindowState,
    who: Attribution,
    marker: str,
    attempted: Decimal | None = None,
) -> BudgetEvent:
    return BudgetEvent(
        kind=kind,
        budget=bound.budget.display_name,
        key=bound.key,
        limit_usd=state.limit_usd,
        spent_usd=state.spent_usd,
        window_start=state.window_start.isoformat(),
        threshold=Decimal(marker) if kind == "threshold" else None,
        attempted_usd=attempted,
        on_exceeded=bound.budget.on_exceeded,
        flow_run_id=who.flow_run_id,
        flow_name=who.flow_name,
    )


def check_thresholds(bound: BoundBudget, state: WindowState, who: Attribution) -> None:
    """Fire the alerts the window's state calls for (each once per window)."""
    watched = handler_thresholds(bound.budget.display_name)
    for marker in alerts_due(bound.budget, state, extra=watched):
        if marker != "exceeded":
            _alert("threshold", marker, bound, state, who, threshold=marker)
        elif _alert(
            "exceeded", "exceeded", bound, state, who, on_exceeded=bound.budget.on_exceeded
        ):
            metrics.BUDGET_EXCEEDED.labels(who.flow_name or "").inc()


def refused(refusal: Refusal, item: BoundBudget, who: Attribution) -> None:
    """Record a halted call: metric, audit entry, log line, and the budget's
    ``exceeded`` event once per window."""
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
        "budget.refused", correlation=correlation_of(who), outcome="halt", payload=payload
    )
    _log.warning("budget.refused", **payload)
    state = refusal.state
    fired = state is None or "exceeded" in state.alerts_fired
    if state is not None and not fired and get_ledger().costs.claim_alert(state.id, "exceeded"):
        _emit("wflo.budget.exceeded", item, who, {**payload, "on_exceeded": "halt"})
    if not _first_stop(item.key, who):
        return
    spent = refusal.spent_usd + refusal.reserved_usd
    _deliver(
        item,
        who,
        "refused",
        subject=f"wflo budget {item.budget.display_name}: stopped a run",
        body=(
            f"Budget {item.budget.display_name!r} ({item.key}) refused a call of "
            f"${refusal.request.amount_usd} and stopped "
            f"{_run_text(who)}: ${spent} of ${refusal.request.limit_usd} is spent or held "
            f"in the window from {refusal.request.window_start:%Y-%m-%d %H:%M %Z}."
        ),
    )
    notify_handlers(
        BudgetEvent(
            kind="refused",
            budget=item.budget.display_name,
            key=item.key,
            limit_usd=refusal.request.limit_usd,
            spent_usd=spent,
            window_start=refusal.request.window_start.isoformat(),
            attempted_usd=refusal.request.amount_usd,
            on_exceeded=item.budget.on_exceeded,
            flow_run_id=who.flow_run_id,
            flow_name=who.flow_name,
        )
    )


def _run_text(who: Attribution) -> str:
    if who.flow_run_id is None:
        return "a call made outside any flow run"
    return f"flow run {who.flow_run_id} ({who.flow_name or 'unknown flow'})"


_stopped: OrderedDict[tuple[str, str | None], None] = OrderedDict()
_stopped_lock = threading.Lock()
_STOPPED_MAX = 4096


def _first_stop(key: str, who: Attribution) -> bool:
    """Whether this is the first refusal of this run by this budget (in this process):
    the run stops at its first refused call, so its targets are told once."""
    marker = (key, who.flow_run_id)
    with _stopped_lock:
        if marker in _stopped:
            return False
        _stopped[marker] = None
        while len(_stopped) > _STOPPED_MAX:
            _stopped.popitem(last=False)
    return True
