"""Approval gates against a real Prefect API: pause, decide, resume, audit."""

from __future__ import annotations

import pytest
from approval_support import events, paused_request, start_flow, wait_for
from fakes.webhook_receiver import WebhookReceiver
from opentelemetry.trace import StatusCode
from prefect import flow
from prefect.flow_runs import resume_flow_run
from typer.testing import CliRunner

from wflo_prefect import (
    ApprovalPolicy,
    ApprovalRejected,
    ApprovalTimeout,
    Approvers,
    WebhookApprovalChannel,
    governed_flow,
    governed_task,
    require_approval,
)
from wflo_prefect.approvals import DecisionRefused, EscalationTier, Principal, Vote, decide
from wflo_prefect.approvals.decisions import one_time_code
from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import metrics
from wflo_prefect.testing import capture_spans

KEYS = {"alice": "key-alice", "bob": "key-bob", "carol": "key-carol"}


def directory() -> Approvers:
    """alice, bob and carol (with API keys), and the group ops of all three."""
    from wflo_prefect.approvals import hash_api_key

    users = [
        Principal(
            name=n,
            email=f"{n}@example.com",
            slack_id=f"U{n.upper()}",
            api_key_hashes=[hash_api_key(k)],
        )
        for n, k in KEYS.items()
    ]
    return Approvers(users=users, groups={"ops": list(KEYS)})


def test_flow_continues_after_cli_approval(ledger: Ledger) -> None:
    """A flow paused at require_approval continues with the typed decision made in the CLI."""

    @flow
    def deploy() -> object:
        return require_approval("deploy to prod", details={"version": "1.2.3"})

    approved_before = metrics.APPROVAL_REQUESTS.labels("approved")._value.get()
    future = start_flow(deploy)
    request = paused_request("deploy to prod")
    result = CliRunner().invoke(
        app, ["approvals", "approve", request.id[:8], "--as", "dana", "-m", "ship it"]
    )
    assert result.exit_code == 0, result.output
    state = future.result(timeout=60)
    decision = state.result()
    assert decision.approved
    assert decision.approvers == ["dana"]
    assert decision.channel == "cli"
    assert decision.comments == {"dana": "ship it"}
    assert decision.digest == request.digest
    assert events(request.id) == [
        "approval.requested",
        "approval.voted",
        "approval.decided",
    ]
    assert metrics.APPROVAL_REQUESTS.labels("approved")._value.get() == approved_before + 1
    assert prefect_events(request.id) >= {"wflo.approval.requested", "wflo.approval.decided"}


def prefect_events(request_id: str) -> set[str]:
    """Names of the Prefect events about one approval request (waits for them to land)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    event_filter = EventFilter(
        event=EventNameFilter(prefix=["wflo.approval."]),
        resource=EventResourceFilter(id=[f"wflo.approval.{request_id}"]),
    )

    def names() -> set[str]:
        with get_client(sync_client=True) as client:
            found = {e.event for e in client.read_events(filter=event_filter, limit=50).events}
        return found if {"wflo.approval.requested", "wflo.approval.decided"} <= found else set()

    result: set[str] = wait_for(names, what="wflo.approval.* events in Prefect")
    return result


def test_governed_task_is_gated_with_its_bound_arguments(ledger: Ledger) -> None:
    """approval= on a task pauses before it runs; a rejection stops it, spans not ERROR."""
    ran: list[str] = []

    @governed_task(
        approval=ApprovalPolicy(approvers=["bob"], principals=directory()), operation="delete"
    )
    def delete_rows(table: str, limit: int = 10) -> int:
        ran.append(table)
        return limit

    @governed_flow
    def cleanup() -> int:
        return delete_rows("users")

    with capture_spans() as spans:
        future = start_flow(cleanup)
        request = paused_request("delete")
        assert request.details == {"function": "delete_rows", "table": "users", "limit": 10}
        decide(
            request.id,
            Vote("bob", approved=False, digest=request.digest, channel="cli", comment="not today"),
        )
        state = future.result(timeout=60)
    assert state.is_failed()
    assert ran == []
    with pytest.raises(ApprovalRejected, match="not today"):
        state.result()
    gate_spans = [s for s in spans.get_finished_spans() if s.name.startswith("wflo.approval")]
    task_spans = [s for s in spans.get_finished_spans() if s.name == "wflo.task delete_rows"]
    assert gate_spans
    assert task_spans
    assert all(s.status.status_code != StatusCode.ERROR for s in gate_spans + task_spans)


def test_quorum_counts_distinct_listed_people_and_refuses_the_rest(ledger: Ledger) -> None:
    """2-of-3: requester, outsider, wrong key, wrong digest and repeats are refused."""

    @flow
    def migrate() -> object:
        return require_approval(
            "migrate db",
            details={"tables": 3},
            approvers=["ops"],
            principals=directory(),
            quorum=2,
            requested_by="alice",
        )

    future = start_flow(migrate)
    request = paused_request("migrate db")
    cli = CliRunner()

    def refused(vote: Vote, reason: str) -> None:
        with pytest.raises(DecisionRefused) as caught:
            decide(request.id, vote)
        assert caught.value.reason == reason

    refused(Vote("alice", True, request.digest, "cli"), "self_approval")
    refused(Vote("mallory", True, request.digest, "cli"), "not_an_approver")
    refused(Vote("bob", True, "0" * 64, "cli"), "digest_mismatch")
    wrong_key = cli.invoke(
        app, ["approvals", "approve", request.id, "--as", "bob", "--api-key", "key-carol"]
    )
    assert wrong_key.exit_code == 1
    assert "does not belong" in wrong_key.output
    first = cli.invoke(
        app, ["approvals", "approve", request.id, "--as", "bob", "--api-key", KEYS["bob"]]
    )
    assert first.exit_code == 0, first.output
    state = read_state(request.flow_run_id or "")
    assert state is not None
    assert state.is_paused()
    refused(Vote("bob", True, request.digest, "cli"), "duplicate")
    decide(request.id, Vote("carol", True, request.digest, "api", nonce="n-1"))
    decision = future.result(timeout=60).result()
    assert decision.approved
    assert decision.approvers == ["bob", "carol"]
    refused(Vote("carol", True, request.digest, "api", nonce="n-1"), "not_pending")
    # Four refused votes, the CLI's wrong key, and the vote after settlement.
    assert events(request.id).count("approval.refused") == 6


def test_prefect_ui_answer_needs_the_approvers_proof(ledger: Ledger) -> None:
    """A form answer with a wrong code is refused and the run pauses again; the right one counts."""

    @flow
    def release() -> object:
        return require_approval("release", approvers=["alice"], principals=directory(), timeout=120)

    future = start_flow(release)
    request = paused_request("release")
    flow_run_id = request.flow_run_id or ""
    paused = read_state(flow_run_id)
    assert paused is not None
    assert request.deadline_at is not None
    pause_timeout = paused.state_details.pause_timeout
    assert pause_timeout is not None
    assert (pause_timeout - request.deadline_at).total_seconds() > 86000
    answer = {"decision": "approve", "approver": "alice", "code": "12345678", "comment": ""}
    resume_flow_run(flow_run_id, run_input=answer)
    wait_for(lambda: "approval.refused" in events(request.id), what="refusal")
    again = paused_request("release", not_keyset=request.keyset)
    resume_flow_run(flow_run_id, run_input={**answer, "code": one_time_code(again, "alice")})
    decision = future.result(timeout=60).result()
    assert decision.approved
    assert decision.channel == "prefect-ui"


def test_escalation_notifies_next_tier_then_applies_on_timeout(ledger: Ledger) -> None:
    """Deadline passes: tier 2 is added and notified by signed webhook; then on_timeout rejects."""
    receiver = WebhookReceiver("hook-secret")
    hook = WebhookApprovalChannel(url=receiver.url, secret="hook-secret")

    @flow
    def purge() -> object:
        return require_approval(
            "purge cache",
            approvers=["alice"],
            principals=directory(),
            timeout=1,
            escalation=[EscalationTier(approvers=["carol"], timeout=1, notify=[hook])],
            notify=[hook],
            on_timeout="reject",
        )

    try:
        state = start_flow(purge).result(timeout=60)
    finally:
        receiver.close()
    with pytest.raises(ApprovalRejected):
        state.result()
    request = ledger.approvals.list_requests(status="timed_out")[0]
    assert request.tier == 1
    assert request.approvers == ["alice", "carol"]
    names = events(request.id)
    assert names.index("approval.escalated") < names.index("approval.expired")
    notified = [
        e
        for e in ledger.audit.for_flow_run(request.flow_run_id or "")
        if e.event == "approval.notified"
    ]
    assert [(e.outcome, e.payload["channel"]) for e in notified][:2] == [
        ("delivered", "webhook"),
        ("delivered", "webhook"),
    ]
    tiers = [
        body["request"]["tier"]
        for ok, body in receiver.received
        if body["type"] == "approval.requested"
    ]
    assert tiers == [0, 1]
    assert all(ok for ok, _ in receiver.received)
    assert receiver.received[-1][1]["type"] == "approval.decided"


@pytest.mark.parametrize("on_timeout", ["approve", "fail"])
def test_on_timeout_approve_or_fail(ledger: Ledger, on_timeout: str) -> None:
    """on_timeout="approve" returns an approval by timeout; "fail" raises ApprovalTimeout."""

    @flow
    def nightly() -> object:
        return require_approval("nightly", timeout=0.5, on_timeout=on_timeout)  # type: ignore[arg-type]

    state = start_flow(nightly).result(timeout=60)
    if on_timeout == "approve":
        decision = state.result()
        assert decision.approved
        assert decision.channel == "timeout"
    else:
        with pytest.raises(ApprovalTimeout):
            state.result()


def test_decision_after_expiry_is_refused_and_run_unchanged(ledger: Ledger) -> None:
    """expires_after: a late decision is refused; the gate then applies on_timeout."""

    @flow
    def rotate() -> object:
        return require_approval("rotate keys", timeout=60, expires_after=1.5)

    future = start_flow(rotate)
    request = paused_request("rotate keys")
    wait_for(
        lambda: (ledger.approvals.get(request.id) or request).status != "pending", what="expiry"
    )
    with pytest.raises(DecisionRefused) as caught:
        decide(request.id, Vote("dana", True, request.digest, "cli"))
    assert caught.value.reason == "not_pending"
    with pytest.raises(ApprovalRejected):
        future.result(timeout=60).result()
    assert (ledger.approvals.get(request.id) or request).status == "expired"


def test_async_flow_waits_with_arequire_approval(ledger: Ledger) -> None:
    """arequire_approval in an async flow waits in a thread and returns the decision."""
    import asyncio

    from wflo_prefect import arequire_approval

    @flow
    async def agent() -> object:
        decision, _ = await asyncio.gather(
            arequire_approval("send newsletter", details={"to": 5000}),
            asyncio.sleep(0.01),
        )
        return decision

    future = start_flow(lambda return_state: asyncio.run(agent(return_state=return_state)))
    request = paused_request("send newsletter")
    decide(request.id, Vote("erin", True, request.digest, "api"))
    decision = future.result(timeout=60).result()
    assert decision.approved
    assert decision.approvers == ["erin"]
