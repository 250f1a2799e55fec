"""Audit entries, Prefect events, metrics and logs for every approval step.

Each step (``requested``, ``notified``, ``decided``, ``refused``, ``escalated``,
``expired``) is written to the ledger's audit log with the run's correlation
ids, and the four the product names are also emitted as Prefect events
(``wflo.approval.requested|decided|escalated|expired``) related to the flow run,
so Prefect automations can react to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prefect.events import emit_event

from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

if TYPE_CHECKING:
    from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger, register_run_log_message

__all__ = ["PREFECT_EVENTS", "announce", "correlation_of", "refused"]

PREFECT_EVENTS = ("requested", "decided", "escalated", "expired")
_log = get_logger("approvals")
_MAX_ACTOR = 200


# --- the sentences a person reads in the run's Prefect logs (the JSON keeps every field) ---


def _names(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) and value else "anyone"


def _clock(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).strftime("%H:%M UTC")
    except ValueError:
        return value


def _requested(f: Mapping[str, Any]) -> str:
    until = _clock(f.get("deadline_at"))
    quorum = f.get("quorum", 1)
    return (
        f"Approval requested: {f.get('action')} — approvers {_names(f.get('approvers'))}, "
        f"quorum {quorum}{f', until {until}' if until else ''}; answer with the Resume "
        "button, the Slack message, the e-mailed link or "
        f"`wflo approvals approve {f.get('request_id')}` (see this run's artifact)"
    )


def _decided(f: Mapping[str, Any]) -> str:
    comments = f.get("comments") or {}
    said = "; ".join(f"{k}: {v}" for k, v in comments.items()) if comments else ""
    return (
        f"Approval {f.get('status', f.get('outcome'))}: {f.get('action')} — by "
        f"{_names(f.get('approvers'))} via {f.get('channel')}" + (f" ({said})" if said else "")
    )


def _expired(f: Mapping[str, Any]) -> str:
    return (
        f"Approval {f.get('status')}: {f.get('action')} — nobody decided in time; "
        f"outcome: {f.get('outcome')}"
    )


def _notified(f: Mapping[str, Any]) -> str:
    what = {
        "delivered": "notified",
        "failed": "could not be notified",
        "closed": "told the outcome",
        "close_failed": "could not be told the outcome",
    }.get(str(f.get("outcome")), str(f.get("outcome")))
    detail = f" ({f['detail']})" if f.get("detail") else ""
    return f"Approval of {f.get('action')}: {f.get('channel')} {what}{detail}"


def _refused(f: Mapping[str, Any]) -> str:
    who = f" from {f['actor']}" if f.get("actor") else ""
    return (
        f"Approval answer{who} via {f.get('channel')} refused ({f.get('outcome')}): "
        f"{f.get('reason')}"
    )


def _escalated(f: Mapping[str, Any]) -> str:
    return (
        f"Approval of {f.get('action')} escalated to tier {f.get('tier')}: approvers now "
        f"{_names(f.get('approvers'))}"
    )


for _event, _message in {
    "approval.requested": _requested,
    "approval.decided": _decided,
    "approval.expired": _expired,
    "approval.notified": _notified,
    "approval.refused": _refused,
    "approval.escalated": _escalated,
    "approval.outcome": lambda f: (
        f"The run {'continues' if f.get('approved') else 'stops'}: {f.get('action')} "
        f"{f.get('status')}" + (f" by {_names(f.get('approvers'))}" if f.get("approvers") else "")
    ),
}.items():
    register_run_log_message(_event, _message)


def _short(text: str | None) -> str | None:
    # Names and ids come from callers (form fields, headers, URLs): keep what is
    # stored within the audit columns, whatever they sent.
    return None if text is None else text[:_MAX_ACTOR]


def correlation_of(request: ApprovalRequestRecord) -> Correlation:
    """The correlation ids stored with a request (for steps taken outside the run)."""
    ids: dict[str, Any] = request.policy.correlation
    return Correlation(
        flow_run_id=request.flow_run_id,
        task_run_id=request.task_run_id,
        flow_name=ids.get("flow_name"),
        task_name=ids.get("task_name"),
        deployment_id=ids.get("deployment_id"),
        trace_id=ids.get("trace_id"),
        span_id=ids.get("span_id"),
    )


def announce(
    step: str,
    request: ApprovalRequestRecord,
    *,
    actor: str | None = None,
    outcome: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Audit (and where the product names it, emit as a Prefect event) one step."""
    body = {"request_id": request.id, "action": request.action, "digest": request.digest}
    body.update(payload or {})
    actor = _short(actor)
    correlation = correlation_of(request)
    get_ledger().audit.record(
        f"approval.{step}", correlation=correlation, actor=actor, outcome=outcome, payload=body
    )
    _log.info(f"approval.{step}", actor=actor, outcome=outcome, **body)
    if step in PREFECT_EVENTS:
        related = []
        if request.flow_run_id:
            related.append(
                {
                    "prefect.resource.id": f"prefect.flow-run.{request.flow_run_id}",
                    "prefect.resource.role": "flow-run",
                }
            )
        emit_event(
            event=f"wflo.approval.{step}",
            resource={
                "prefect.resource.id": f"wflo.approval.{request.id}",
                "prefect.resource.name": request.action,
            },
            related=related,
            payload={**body, "actor": actor, "outcome": outcome},
        )
    if step == "requested":
        metrics.APPROVAL_REQUESTS.labels("requested").inc()
    elif step in ("decided", "expired") and outcome:
        metrics.APPROVAL_REQUESTS.labels(outcome).inc()
        decided = request.decided_at
        if decided is not None:
            metrics.APPROVAL_LATENCY.observe((decided - request.created_at).total_seconds())


def refused(
    request: ApprovalRequestRecord | None,
    error: DecisionRefused,
    *,
    channel: str,
    actor: str | None = None,
    claimed_id: str | None = None,
) -> None:
    """Audit a refused answer as ``approval.refused``, whatever stage refused it.

    Refusals before a request is known (an unknown id, a bad signature, a key
    that proves nobody) are audited too, without run correlation; ``claimed_id``
    is the request id the caller named, kept as given (it is not trusted).
    """
    payload: dict[str, Any] = {"channel": channel, "reason": error.message[:500]}
    if request is not None:
        announce("refused", request, actor=actor, outcome=error.reason, payload=payload)
        return
    body = {"request_id": _short(claimed_id), **payload}
    actor = _short(actor)
    get_ledger().audit.record(
        "approval.refused",
        correlation=Correlation(),
        actor=actor,
        outcome=error.reason,
        payload=body,
    )
    _log.info("approval.refused", actor=actor, outcome=error.reason, **body)
