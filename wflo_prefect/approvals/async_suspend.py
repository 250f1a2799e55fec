"""``suspend=True`` in async flows: Prefect's ``asuspend_flow_run``, awaited in the loop.

The async twin of :func:`wflo_prefect.approvals.suspend.suspend_until_settled`.
Prefect's sync ``suspend_flow_run`` cannot be used from a worker thread of an
async flow: its input helpers see the async flow and hand back coroutines that
are never awaited (the form would not be saved). Here the suspend is awaited on
the flow's loop and the ledger work runs off it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.flow_runs import asuspend_flow_run

from wflo_prefect._offload import run_off_loop
from wflo_prefect.approvals.notify import notify_all
from wflo_prefect.approvals.policy import ApprovalPolicy
from wflo_prefect.approvals.request import prefect_timeout
from wflo_prefect.approvals.run_input import answer_fields, approval_form
from wflo_prefect.approvals.waiter import Waiter
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = ["asuspend_until_settled"]


def _next_attempt(request: ApprovalRequestRecord, attempt: int) -> ApprovalRequestRecord:
    repo = get_ledger().approvals
    return repo.transition(
        request.id,
        from_statuses=["pending"],
        keyset=f"suspended-wflo-{request.id}-{attempt}",
        suspend_attempt=attempt,
    ) or (repo.get(request.id) or request)


def _count(waiter: Waiter, request: ApprovalRequestRecord, answer: Any) -> ApprovalRequestRecord:
    repo = get_ledger().approvals
    current = repo.get(request.id) or request
    if current.status == "pending":
        waiter.request = current
        waiter.count_answer(answer_fields(answer))
        current = repo.get(request.id) or current
    return current


async def asuspend_until_settled(
    request: ApprovalRequestRecord, policy: ApprovalPolicy, flow_run_id: UUID, waiter: Waiter
) -> ApprovalRequestRecord:
    """Suspend the run (the process exits) until the request is settled (async flows)."""
    while True:
        attempt = request.suspend_attempt
        if attempt == 0:
            # The process exits when the run suspends: deliver before that.
            await run_off_loop(notify_all, request, waiter.tiers[0], 0, background=False)
            attempt = 1
            request = await run_off_loop(_next_attempt, request, attempt)
            if request.status != "pending":
                return request
        answer = await asuspend_flow_run(
            wait_for_input=approval_form(request),
            timeout=int(prefect_timeout(policy)),
            key=f"wflo-{request.id}-{attempt}",
        )
        waiter.base_key = f"suspended-wflo-{request.id}-{attempt}"
        current = await run_off_loop(_count, waiter, request, answer)
        if current.status != "pending":
            return current
        request = await run_off_loop(_next_attempt, current, attempt + 1)
        if request.status != "pending":
            return request
