"""Helpers for the approval-gate tests: run a flow in a thread, wait for its request."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="approval-flow")


def start_flow(flow: Any, *args: Any, **kwargs: Any) -> Future[Any]:
    """Run ``flow`` in a background thread; its final state is the future's result."""
    return _pool.submit(flow, *args, return_state=True, **kwargs)


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def paused_request(
    action: str | None = None, *, timeout: float = 30.0, not_keyset: str | None = None
) -> ApprovalRequestRecord:
    """The pending request whose run is paused at its gate (form saved).

    ``not_keyset``: wait until the gate has paused again under a new keyset.
    """

    def find() -> ApprovalRequestRecord | None:
        for request in get_ledger().approvals.list_requests(status="pending"):
            if action is not None and request.action != action:
                continue
            if request.keyset and request.keyset != not_keyset and request.flow_run_id:
                state = read_state(request.flow_run_id)
                if state is not None and state.is_paused():
                    return request
        return None

    return wait_for(find, timeout=timeout, what=f"a paused approval request {action or ''}")


def events(request_id: str) -> list[str]:
    """The audit event names of one request, oldest first."""
    request = get_ledger().approvals.get(request_id)
    assert request is not None
    assert request.flow_run_id
    return [
        e.event
        for e in get_ledger().audit.for_flow_run(request.flow_run_id)
        if e.payload.get("request_id") == request_id
    ]


def refusals(*, channel: str | None = None) -> list[Any]:
    """Every ``approval.refused`` audit entry (newest first), optionally of one channel."""
    found = get_ledger().audit.recent(500, event_prefix="approval.refused")
    return [e for e in found if channel is None or e.payload.get("channel") == channel]


def run_logs(flow_run_id: str) -> list[str]:
    """The messages of a flow run's logs stored in the Prefect API, oldest first."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)]))
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(log_filter=log_filter)]
