"""``suspend=True``: wait for a decision with no process held (deployed runs)."""

from __future__ import annotations

from uuid import UUID

from wflo_prefect._prefect_compat import suspend_flow_run_sync
from wflo_prefect.approvals.notify import notify_all
from wflo_prefect.approvals.policy import ApprovalPolicy
from wflo_prefect.approvals.request import prefect_timeout
from wflo_prefect.approvals.run_input import answer_fields, approval_form
from wflo_prefect.approvals.waiter import Waiter
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = ["suspend_until_settled"]


def suspend_until_settled(
    request: ApprovalRequestRecord, policy: ApprovalPolicy, flow_run_id: UUID, waiter: Waiter
) -> ApprovalRequestRecord:
    """Suspend the run (the process exits) until the request is settled.

    Prefect's ``suspend_flow_run`` with a key per attempt: the first call raises
    Prefect's ``Pause`` signal; when the rescheduled run comes back with the same
    key, Prefect returns the form's answer (if it was resumed from the UI), which
    is verified and counted here; decisions made through wflo are in the ledger.
    """
    repo = get_ledger().approvals
    while True:
        attempt = request.suspend_attempt
        if attempt == 0:
            # The process exits when the run suspends: deliver before that.
            notify_all(request, waiter.tiers[0], 0, background=False)
            attempt = 1
            request = repo.transition(
                request.id,
                from_statuses=["pending"],
                keyset=f"suspended-wflo-{request.id}-{attempt}",
                suspend_attempt=attempt,
            ) or (repo.get(request.id) or request)
            if request.status != "pending":
                return request
        answer = suspend_flow_run_sync(
            wait_for_input=approval_form(request),
            timeout=int(prefect_timeout(policy)),
            key=f"wflo-{request.id}-{attempt}",
        )
        waiter.base_key = f"suspended-wflo-{request.id}-{attempt}"
        current = repo.get(request.id) or request
        if current.status == "pending":
            waiter.request = current
            waiter.count_answer(answer_fields(answer))
            current = repo.get(request.id) or current
        if current.status != "pending":
            return current
        attempt += 1
        request = repo.transition(
            current.id,
            from_statuses=["pending"],
            keyset=f"suspended-wflo-{current.id}-{attempt}",
            suspend_attempt=attempt,
        ) or (repo.get(current.id) or current)
        if request.status != "pending":
            return request
