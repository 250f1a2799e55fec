"""Approval gates in async flows and tasks: awaited, never blocking the event loop.

:func:`arun_gate` is what ``approval=`` on an ``async def`` governed task (or flow)
and :func:`~wflo_prefect.arequire_approval` wait with. The event loop goes on
running the flow's other coroutines while people decide.

A Prefect flow run can be paused by one gate at a time, while an async flow can
wait at many (``asyncio.gather`` of ten gated tasks). So, per flow run and process:

* the first gate waits as a sync gate does, in one of wflo's worker threads: it
  pauses the run with its form (answerable in the Prefect UI) and wakes on
  Prefect's event stream;
* gates opened while that one waits do not pause the run again: each is a
  coroutine that waits for its decision in the ledger, woken at once by the local
  push that wflo's decision path sends (CLI, API service, Slack, links, e-mail;
  the same path every decision takes), with a slow poll as a safety net, and
  applies its own deadlines, escalations and ``on_timeout``. These requests are
  made with ``mode="await"`` in their frozen policy: deciding them never resumes
  the paused run (which belongs to the first gate). Each beats its own waiter row,
  with the address the push wakes it at.

Each gate is settled independently: deciding one lets its task go on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext

from wflo_prefect._offload import run_off_loop
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.digest import canonical_details, digest_of
from wflo_prefect.approvals.gate import (
    _outcome,
    _settled,
    approval_policy,
    open_request,
    run_gate,
)
from wflo_prefect.approvals.notify import notify_all
from wflo_prefect.approvals.policy import ApprovalPolicy
from wflo_prefect.approvals.waiter import Waiter
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approval_records import ApprovalVoteRecord, WaitMode
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.observability.tracing import get_tracer

__all__ = ["AWAIT_MODE", "arequire_approval", "arun_gate"]

#: ``policy.mode`` of a request whose gate waits in the ledger, the run not paused.
AWAIT_MODE: WaitMode = "await"

# Flow runs an async gate of this process has paused (and waits on) right now.
_pausing: set[str] = set()
_pausing_lock = threading.Lock()


async def arun_gate(
    action: str, details: Mapping[str, Any] | None, policy: ApprovalPolicy
) -> ApprovalDecision:
    """Request approval of ``action`` under ``policy``; await the decision."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return await run_off_loop(run_gate, action, details, policy)  # refuses, naming why
    if policy.suspend:
        if TaskRunContext.get() is not None or not context.flow_run.deployment_id:
            return await run_off_loop(run_gate, action, details, policy)  # refuses, naming why
        return await _suspending_gate(action, details, policy, context.flow_run.id)
    flow_run_id = str(context.flow_run.id)
    with _pausing_lock:
        pauser = flow_run_id not in _pausing
        if pauser:
            _pausing.add(flow_run_id)
    if pauser:
        try:
            return await run_off_loop(run_gate, action, details, policy)
        finally:
            with _pausing_lock:
                _pausing.discard(flow_run_id)
    return await _ledger_gate(action, details, policy, context.flow_run.id)


class _Poked(asyncio.DatagramProtocol):
    """Sets an event on every datagram (its content is never read or trusted)."""

    def __init__(self, woke: asyncio.Event) -> None:
        self.woke = woke

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.woke.set()


async def _ledger_gate(
    action: str, details: Mapping[str, Any] | None, policy: ApprovalPolicy, flow_run_id: Any
) -> ApprovalDecision:
    plain = canonical_details(details)
    digest = digest_of(action, plain)
    loop = asyncio.get_running_loop()
    woke = asyncio.Event()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Poked(woke), local_addr=("127.0.0.1", 0)
    )
    wake = "127.0.0.1:{}".format(transport.get_extra_info("sockname")[1])
    try:
        with get_tracer().start_as_current_span(
            f"wflo.approval {action}", record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attribute("wflo.approval.digest", digest)
            span.set_attribute("wflo.approval.wait", AWAIT_MODE)

            request = await run_off_loop(
                open_request,
                action,
                plain,
                digest,
                policy,
                str(flow_run_id),
                mode=AWAIT_MODE,
                wake=wake,
            )
            span.set_attribute("wflo.approval.request_id", request.id)
            waiter = Waiter(request, policy, flow_run_id)
            waiter.wake = wake
            if request.status == "pending":
                if request.tier == 0:
                    await run_off_loop(notify_all, request, waiter.tiers[0], 0)
                request = await _await_settled(waiter, woke)
            span.set_attribute("wflo.approval.status", request.status)

            return await run_off_loop(_decided, request, waiter)
    finally:
        transport.close()


async def _suspending_gate(
    action: str, details: Mapping[str, Any] | None, policy: ApprovalPolicy, flow_run_id: Any
) -> ApprovalDecision:
    from wflo_prefect.approvals.async_suspend import asuspend_until_settled

    plain = canonical_details(details)
    digest = digest_of(action, plain)
    with get_tracer().start_as_current_span(
        f"wflo.approval {action}", record_exception=False, set_status_on_exception=False
    ) as span:
        span.set_attribute("wflo.approval.digest", digest)
        request = await run_off_loop(open_request, action, plain, digest, policy, str(flow_run_id))
        span.set_attribute("wflo.approval.request_id", request.id)
        waiter = Waiter(request, policy, flow_run_id)
        if request.status == "pending":
            request = await asuspend_until_settled(request, policy, flow_run_id, waiter)
        span.set_attribute("wflo.approval.status", request.status)
        return await run_off_loop(_decided, request, waiter)


def _decided(request: ApprovalRequestRecord, waiter: Waiter) -> ApprovalDecision:
    """Apply the settled request, as the sync gate does: the decision built once."""
    repo = get_ledger().approvals
    decision = waiter.decision
    if decision is None:
        found = repo.with_votes(request.id)
        votes: list[ApprovalVoteRecord] = []
        if found is not None:
            request, votes = found
        decision = ApprovalDecision.from_ledger(request, votes)
    repo.mark_applied(request.id, "gate")
    _settled(request, waiter.tiers, decision)
    return _outcome(request, decision)


async def _await_settled(waiter: Waiter, woke: asyncio.Event) -> ApprovalRequestRecord:
    """Wait until the request is settled: a push, the slow poll, or its deadline.

    Heartbeats go to the request's waiter row (``Waiter.heartbeat``), with the
    address the decision path's push wakes this gate at.
    """
    repo = get_ledger().approvals
    settings = waiter.settings
    request_id = waiter.request.id
    while True:
        timeout = min(
            settings.fallback_poll_seconds,
            waiter.seconds_to_deadline(),
            settings.heartbeat_seconds,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woke.wait(), timeout=max(timeout, 0.0))
        woke.clear()
        current = await run_off_loop(repo.get, request_id) or waiter.request
        if current.status != "pending":
            waiter.request = current
            return current
        await run_off_loop(waiter.heartbeat)
        if waiter.seconds_to_deadline() <= 0 and await run_off_loop(waiter.on_deadline):
            return waiter.request


async def arequire_approval(
    action: str, *, details: Mapping[str, Any] | None = None, **kwargs: Any
) -> ApprovalDecision:
    """:func:`require_approval` for async flows and tasks: awaited, the event loop runs on.

    Takes :func:`require_approval`'s keywords. Many gates of one flow
    (``asyncio.gather``) wait for their decisions at once, each settled on its own
    (see :mod:`wflo_prefect.approvals.async_gate`).
    """
    return await arun_gate(action, details, approval_policy(action, **kwargs))
