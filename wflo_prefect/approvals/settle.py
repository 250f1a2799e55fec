"""Deciding from outside the run (CLI, service, channels), deadlines, and dead waiters.

:func:`decide` admits a vote and, when it settles the request, resumes the
paused Prefect run with the typed answer, so the waiting gate wakes at once. A
refused vote changes neither the request nor the run. :func:`apply_deadline`
escalates to the next tier or applies ``on_timeout``. :func:`sweep` finishes
what a dead waiting process cannot: deadlines of its requests, and putting its
run in a final state that says what was decided.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from wflo_prefect._prefect_compat import load_block
from wflo_prefect.approvals import artifact
from wflo_prefect.approvals.channels.base import ApprovalChannel
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.decisions import Vote, record
from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.events import announce, refused
from wflo_prefect.approvals.notify import close_all, notify_all
from wflo_prefect.approvals.prefect_run import end_run, read_state, resume_run
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.approvals.wakeup import poke
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approval_records import ApprovalRequestRecord, ApprovalWaiterRecord
from wflo_prefect.ledger.models import utcnow

__all__ = [
    "apply_deadline",
    "decide",
    "resume_answer",
    "resume_once",
    "settle_vote",
    "sweep",
    "waiter_alive",
]


def resume_answer(request: ApprovalRequestRecord, decision: ApprovalDecision) -> dict[str, Any]:
    """The typed input wflo resumes a run with (already verified and recorded).

    It has the form's shape; when it does not fit the request's approver select
    (a timeout, a quorum of several), :func:`resume_run` lets Prefect accept it.
    """
    answer = {
        "decision": "approve" if decision.approved else "reject",
        "approver": ", ".join(decision.approvers) or decision.channel,
        "comment": "; ".join(decision.comments.values()),
    }
    if request.policy.proven:
        answer["code"] = ""  # the form has (and requires) a code field only then
    return answer


def _settled(
    request: ApprovalRequestRecord, decision: ApprovalDecision, *, actor: str | None
) -> None:
    outcome = {"approved": "approved", "rejected": "rejected"}.get(request.status, "timeout")
    announce(
        "decided" if request.status in ("approved", "rejected") else "expired",
        request,
        actor=actor,
        outcome=outcome,
        payload={
            "status": request.status,
            "approvers": decision.approvers,
            "channel": decision.channel,
            "comments": decision.comments,
        },
    )


def resume_once(request: ApprovalRequestRecord, decision: ApprovalDecision) -> bool:
    """Resume the settled request's paused run if nobody claimed that yet; True if resumed.

    The claim is one conditional ``UPDATE`` (``resumed_at IS NULL``), so of the
    decider, the waiter and the sweep exactly one resumes. A claimer that finds
    the run not paused (the gate has not paused it yet) gives the claim back, for
    the waiter to take once it has.
    """
    repo = get_ledger().approvals
    if not request.flow_run_id or not repo.claim_resume(request.id):
        return False
    try:
        resumed = resume_run(request.flow_run_id, resume_answer(request, decision))
    except BaseException:
        repo.release_resume(request.id)
        raise
    if not resumed:
        repo.release_resume(request.id)
    return resumed


def _wake_here(waiter: ApprovalWaiterRecord) -> None:
    """The loopback shortcut: only to a gate on this host, and only if it is on."""
    if get_approval_settings().loopback_wake and waiter.host == socket.gethostname():
        poke(waiter.wake)


def decide(request_id: str, vote: Vote, *, resume: bool = True) -> ApprovalRequestRecord:
    """Record one vote; when it settles the request, resume the paused run.

    Raises :class:`DecisionRefused` when the vote is not admitted (audited as
    ``approval.refused``; the request and the run are unchanged).
    """
    return settle_vote(request_id, vote, resume=resume)[0]


def settle_vote(
    request_id: str,
    vote: Vote,
    *,
    resume: bool = True,
    known: ApprovalRequestRecord | None = None,
    resumed: bool = False,
) -> tuple[ApprovalRequestRecord, ApprovalDecision | None]:
    """:func:`decide`, also returning the decision when the vote settled the request.

    ``known`` and ``resumed`` are passed to :func:`~wflo_prefect.approvals.decisions.record`
    (a gate counting the answer its run was resumed with knows both).
    """
    try:
        outcome = record(request_id, vote, known=known, resumed=resumed)
    except DecisionRefused as exc:
        known = get_ledger().approvals.get(request_id)
        refused(known, exc, channel=vote.channel, actor=vote.approver, claimed_id=request_id)
        raise
    request = outcome.request
    # Built once, from the votes read under the request's lock.
    decision = (
        None
        if request.status == "pending"
        else ApprovalDecision.from_ledger(request, outcome.votes)
    )
    if decision is not None and resume and request.flow_run_id:
        # Wake and resume first: the waiting run should not wait for the audit writes.
        waiter = get_ledger().approvals.waiter(request.id)
        if _alive(waiter):
            assert waiter is not None
            _wake_here(waiter)
            # An awaited async gate (approvals/async_gate.py) waits with its run not
            # paused by it (another gate may have paused it): the push is all it needs.
            if request.policy.mode != "await":
                resume_once(request, decision)
        else:
            _finish_dead_run(request, decision)
    announce(
        "voted",
        request,
        actor=vote.approver,
        outcome="approve" if vote.approved else "reject",
        payload={"channel": vote.channel, "comment": vote.comment, "vote_digest": vote.digest},
    )
    if decision is not None:
        _settled(request, decision, actor=vote.approver)
    return request, decision


def saved_channels(request: ApprovalRequestRecord, tier: int) -> list[ApprovalChannel | None]:
    """The tier's channels saved as blocks, loaded, in place (inline ones are ``None``)."""
    from prefect.blocks.core import Block

    tiers = request.policy.channels
    loaded: list[ApprovalChannel | None] = []
    for ref in tiers[tier] if tier < len(tiers) else []:
        loaded.append(None)
        if not ref:
            continue
        try:
            block = load_block(Block, ref)
        except Exception as exc:  # a deleted block must not stop the sweep
            announce(
                "notified", request, outcome="failed", payload={"channel": ref, "detail": repr(exc)}
            )
            continue
        if isinstance(block, ApprovalChannel):
            loaded[-1] = block
    return loaded


def apply_deadline(
    request: ApprovalRequestRecord, *, notify_saved: bool = False
) -> tuple[ApprovalRequestRecord, bool]:
    """Escalate to the next tier, or apply ``on_timeout``; return (request, escalated).

    When a decision landed first, the request is returned unchanged. With
    ``notify_saved`` (no gate process left), the new tier's saved channel blocks
    are notified here.
    """
    repo = get_ledger().approvals
    tiers = request.policy.tiers
    now = utcnow()
    expired = request.expires_at is not None and now >= request.expires_at
    if not expired and request.tier < len(tiers):
        tier = tiers[request.tier]
        approvers = list(dict.fromkeys([*map(str, request.approvers), *tier.approvers]))
        deadline = now + timedelta(seconds=tier.timeout)
        if request.expires_at is not None:
            deadline = min(deadline, request.expires_at)
        changed = repo.transition(
            request.id,
            from_statuses=["pending"],
            tier=request.tier + 1,
            approvers=approvers,
            deadline_at=deadline,
        )
        if changed is None:
            return repo.get(request.id) or request, False
        announce(
            "escalated",
            changed,
            outcome=f"tier {changed.tier}",
            payload={"tier": changed.tier, "approvers": approvers},
        )
        if notify_saved:
            notify_all(
                changed, saved_channels(changed, changed.tier), changed.tier, background=False
            )
        return changed, True
    on_timeout = request.policy.on_timeout
    outcome = (
        "approve" if on_timeout == "approve" else "reject" if on_timeout == "reject" else "fail"
    )
    changed = repo.transition(
        request.id,
        from_statuses=["pending"],
        to_status="expired" if expired else "timed_out",
        timeout_outcome=outcome,
    )
    if changed is None:
        return repo.get(request.id) or request, False
    _settled(changed, ApprovalDecision.from_ledger(changed, repo.votes(changed.id)), actor=None)
    return changed, False


def _alive(waiter: ApprovalWaiterRecord | None, now: datetime | None = None) -> bool:
    if waiter is None:
        return False
    if waiter.host == socket.gethostname() and waiter.pid:
        try:
            os.kill(waiter.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    period = get_approval_settings().heartbeat_seconds
    return ((now or utcnow()) - waiter.heartbeat_at).total_seconds() < 3 * period


def waiter_alive(request: ApprovalRequestRecord, now: datetime | None = None) -> bool:
    """Whether the process waiting at the gate is still alive."""
    return _alive(get_ledger().approvals.waiter(request.id), now)


def _finish_dead_run(
    request: ApprovalRequestRecord, decision: ApprovalDecision | None = None
) -> None:
    repo = get_ledger().approvals
    if decision is None:
        decision = ApprovalDecision.from_ledger(request, repo.votes(request.id))
    # No gate process is left to replace the run's "pending" artifact with the outcome.
    artifact.publish(request, decision)
    if repo.claim_close(request.id):
        tiers = [saved_channels(request, t) for t in range(request.tier + 1)]
        close_all(request, tiers, decision)
    if request.policy.mode == "suspend":
        # A suspended run has no waiting process by design: resuming it makes
        # Prefect reschedule it, and the gate then returns the recorded outcome.
        resume_once(request, decision)
        return
    state = read_state(request.flow_run_id) if request.flow_run_id else None
    if request.flow_run_id and state is not None and (state.is_paused() or state.is_running()):
        who = ", ".join(decision.approvers) or "nobody (deadline passed)"
        if decision.approved:
            end_run(
                request.flow_run_id,
                f"Approval of {request.action!r} was granted by {who}, but the process "
                "waiting at the gate is gone; run the flow again to continue",
                crashed=True,
            )
        else:
            end_run(
                request.flow_run_id,
                f"Approval of {request.action!r} {request.status.replace('_', ' ')} "
                f"({who}); the process waiting at the gate is gone",
            )
    repo.mark_applied(request.id, "sweep")
    announce("settled", request, outcome=request.status, payload={"by": "sweep"})


def sweep(now: datetime | None = None) -> list[str]:
    """Settle requests whose waiting process died; return the ids handled."""
    repo = get_ledger().approvals
    handled: list[str] = []
    moment = now or utcnow()
    for request in repo.due(moment):
        if waiter_alive(request, moment):
            continue
        current, _ = apply_deadline(request, notify_saved=True)
        while current.status == "pending" and current.deadline_at and current.deadline_at <= moment:
            current, _ = apply_deadline(current, notify_saved=True)
    for request in repo.unapplied():
        if waiter_alive(request, moment):
            continue
        _finish_dead_run(request)
        handled.append(request.id)
    return handled
