"""Budget alerts: thresholds and overruns, once per budget window.

An alert is a Prefect event (``wflo.budget.threshold``, ``wflo.budget.exceeded``)
that automations can route, an audit entry, a log line and the budget's
``notify=`` targets. Which alerts a window's spend calls for is the pure
:func:`~wflo_prefect.costs.budgeting.alerts_due`; the ledger's ``claim_alert``
makes sure one process fires each.
"""

from __future__ import annotations

from typing import Any

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budgeting import BoundBudget, alerts_due
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
        f"budget.{kind}", correlation=correlation_of(who), outcome=marker, payload=payload
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
            correlation=correlation_of(who),
            outcome=status,
            payload={"budget": bound.budget.display_name, "target": target, "alert": marker},
        )
    return True


def check_thresholds(bound: BoundBudget, state: WindowState, who: Attribution) -> None:
    """Fire the alerts the window's state calls for (each once per window)."""
    for marker in alerts_due(bound.budget, state):
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
