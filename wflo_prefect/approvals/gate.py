"""``require_approval``: pause the run until people decide, then continue or stop.

The gate records the request in the ledger, pauses the flow run with a typed
form (``Paused`` state + ``RunInput`` keyset, like ``pause_flow_run``), notifies
the channels, and waits on Prefect's event stream for the run to be resumed,
by wflo (CLI, service, Slack, links) or by someone submitting the form in the
Prefect UI. A UI answer is verified and counted here; until the request is
settled the run is paused again. Deadlines escalate, then apply ``on_timeout``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext
from pydantic import ValidationError

from wflo_prefect._validation import usage_error
from wflo_prefect.approvals import artifact
from wflo_prefect.approvals.channels.base import ApprovalChannel
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.digest import canonical_details, digest_of
from wflo_prefect.approvals.errors import ApprovalRejected, ApprovalTimeout
from wflo_prefect.approvals.events import announce
from wflo_prefect.approvals.notify import close_all
from wflo_prefect.approvals.policy import ApprovalPolicy, EscalationTier, OnTimeout
from wflo_prefect.approvals.principals import Approvers
from wflo_prefect.approvals.request import beat, create_request
from wflo_prefect.approvals.suspend import suspend_until_settled
from wflo_prefect.approvals.waiter import Waiter
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approval_records import WaitMode
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.observability.correlation import current_correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.tracing import get_tracer

__all__ = [
    "approval_policy",
    "open_request",
    "require_approval",
    "run_gate",
]

_log = get_logger("approvals")


def require_approval(
    action: str,
    *,
    details: Mapping[str, Any] | None = None,
    approvers: Sequence[str] = (),
    principals: Approvers | str | None = None,
    quorum: int = 1,
    timeout: float | timedelta | None = 3600,
    on_timeout: OnTimeout = "reject",
    escalation: Sequence[EscalationTier | Mapping[str, Any]] = (),
    notify: Sequence[ApprovalChannel] = (),
    expires_after: float | timedelta | None = None,
    allow_self_approval: bool = False,
    requested_by: str | None = None,
    suspend: bool = False,
) -> ApprovalDecision:
    """Pause the current flow run until ``action`` is approved; return the decision.

    Args:
        action: what is asked, e.g. ``"delete customer records"``.
        details: what exactly (shown to approvers; the decision is bound to its digest).
        approvers: user or group names from ``principals`` (which they need: a name
            nobody can prove is refused); empty means every user of ``principals``,
            or, without principals, an open gate anyone may answer.
        principals: an ``Approvers`` block, or the name of a saved one.
        quorum: how many distinct approvers must approve (above 1 needs ``principals``).
        timeout: seconds (or a ``timedelta``) before escalating or ``on_timeout``.
        on_timeout: ``"reject"`` (raise ``ApprovalRejected``), ``"approve"``,
            ``"fail"`` (raise ``ApprovalTimeout``), or ``"escalate"`` (tiers, then fail).
        escalation: tiers of approvers added and notified at each deadline.
        notify: channel blocks told about the request (Slack, webhook, e-mail, PagerDuty).
        expires_after: decisions after this many seconds are refused, whatever the tiers.
        allow_self_approval: let ``requested_by`` approve their own request.
        requested_by: who asks (cannot approve unless allowed).
        suspend: for deployed runs: suspend instead of pause, so no worker is held
            while people decide; the run is rescheduled when the request is settled
            and passes the gate with the recorded decision (flow body only).

    Raises:
        ApprovalRejected: an approver rejected (or timeout with ``on_timeout="reject"``).
        ApprovalTimeout: nobody decided in time (``on_timeout="fail"``/``"escalate"``).
    """
    policy = approval_policy(
        action,
        approvers=approvers,
        principals=principals,
        quorum=quorum,
        timeout=timeout,
        on_timeout=on_timeout,
        escalation=escalation,
        notify=notify,
        expires_after=expires_after,
        allow_self_approval=allow_self_approval,
        requested_by=requested_by,
        suspend=suspend,
    )
    return run_gate(action, details, policy)


def approval_policy(
    action: str,
    *,
    approvers: Sequence[str] = (),
    principals: Approvers | str | None = None,
    quorum: int = 1,
    timeout: float | timedelta | None = 3600,
    on_timeout: OnTimeout = "reject",
    escalation: Sequence[EscalationTier | Mapping[str, Any]] = (),
    notify: Sequence[ApprovalChannel] = (),
    expires_after: float | timedelta | None = None,
    allow_self_approval: bool = False,
    requested_by: str | None = None,
    suspend: bool = False,
) -> ApprovalPolicy:
    """The :class:`ApprovalPolicy` of :func:`require_approval`'s keywords (validated)."""
    try:
        tiers = [
            EscalationTier.model_validate(t) if isinstance(t, Mapping) else t for t in escalation
        ]
    except ValidationError as exc:
        raise usage_error("require_approval(escalation=...)", exc, docs="approvals.md") from None
    # ApprovalPolicy raises InvalidArgumentError (a WfloError) for any bad argument.
    return ApprovalPolicy(
        action=action,
        approvers=list(approvers),
        principals=principals,
        quorum=quorum,
        timeout=timeout,
        on_timeout=on_timeout,
        escalation=tiers,
        notify=list(notify),
        expires_after=expires_after,
        allow_self_approval=allow_self_approval,
        requested_by=requested_by,
        suspend=suspend,
    )


def _outcome(request: ApprovalRequestRecord, decision: ApprovalDecision) -> ApprovalDecision:
    """The decision when approved; otherwise the error the gate raises."""
    if decision.approved:
        return decision
    if request.status in ("timed_out", "expired") and request.timeout_outcome in ("fail", None):
        waited = (decision.decided_at - request.created_at).total_seconds()
        raise ApprovalTimeout(request.action, request.id, waited)
    raise ApprovalRejected(decision)


def run_gate(
    action: str, details: Mapping[str, Any] | None, policy: ApprovalPolicy
) -> ApprovalDecision:
    """Request approval of ``action`` under ``policy``; block until it is settled."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise InvalidArgumentError(
            "require_approval() pauses a flow run, so it must be called inside a flow or task",
            value=action,
            hint="Call it from a @flow / @task (or use approval= on governed_task)",
            docs="approvals.md",
        )
    if policy.suspend and (TaskRunContext.get() is not None or not context.flow_run.deployment_id):
        raise InvalidArgumentError(
            "suspend=True needs a deployed flow run and a gate in the flow body",
            value=action,
            hint="Run the flow from a deployment, call the gate outside tasks, or drop suspend=",
            docs="approvals.md",
        )
    flow_run_id = context.flow_run.id
    plain = canonical_details(details)
    digest = digest_of(action, plain)
    with get_tracer().start_as_current_span(
        f"wflo.approval {action}", record_exception=False, set_status_on_exception=False
    ) as span:
        span.set_attribute("wflo.approval.digest", digest)
        repo = get_ledger().approvals
        request = open_request(action, plain, digest, policy, str(flow_run_id))
        span.set_attribute("wflo.approval.request_id", request.id)
        waiter = Waiter(request, policy, flow_run_id)
        if request.status == "pending" and policy.suspend:
            request = suspend_until_settled(request, policy, flow_run_id, waiter)
        elif request.status == "pending":
            request = waiter.wait()
        span.set_attribute("wflo.approval.status", request.status)
        # The decision, built once from the settled request and its votes.
        decision = waiter.decision or ApprovalDecision.from_ledger(request, repo.votes(request.id))
        repo.mark_applied(request.id, "gate")
        _settled(request, waiter.tiers, decision)
        return _outcome(request, decision)


def open_request(
    action: str,
    plain: dict[str, Any],
    digest: str,
    policy: ApprovalPolicy,
    flow_run_id: str,
    *,
    mode: WaitMode | None = None,
    wake: str | None = None,
) -> ApprovalRequestRecord:
    """The open request of this run, task and digest (a retry), or a new one, announced.

    ``mode`` is how the gate waits (stored in the request's frozen policy when it
    is made; by default ``suspend`` or ``pause`` as the policy says). A waiting
    (not suspending) gate is recorded as the request's waiter, with ``wake``.
    """
    repo = get_ledger().approvals
    correlation = current_correlation()
    request = repo.find_open(flow_run_id, correlation.task_run_id, digest)
    if request is None:
        request = create_request(action, plain, digest, policy, mode=mode, wake=wake)
        announce(
            "requested",
            request,
            actor=policy.requested_by,
            payload={
                "approvers": request.approvers,
                "quorum": request.quorum,
                "details": plain,
                "deadline_at": request.deadline_at.isoformat() if request.deadline_at else None,
            },
        )
        artifact.publish(request)
    elif not policy.suspend:
        beat(request.id, wake)
    return request


def _settled(
    request: ApprovalRequestRecord,
    tiers: list[list[ApprovalChannel]],
    decision: ApprovalDecision,
) -> None:
    # The run's own words for what happens next, whichever channel decided.
    _log.info(
        "approval.outcome",
        request_id=request.id,
        action=request.action,
        status=decision.status,
        approved=decision.approved,
        approvers=decision.approvers,
        channel=decision.channel,
    )
    # The run page's artifact and the channels are views for people: updated off the
    # run's path (a non-daemon thread, so a process ending right after still does it).
    threading.Thread(
        target=_publish_and_close, args=(request, tiers, decision), name="wflo-approval-settled"
    ).start()


def _publish_and_close(
    request: ApprovalRequestRecord,
    tiers: list[list[ApprovalChannel]],
    decision: ApprovalDecision,
) -> None:
    artifact.publish(request, decision)
    if any(tiers):
        close_all(request, tiers, decision)
