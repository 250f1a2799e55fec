"""RequireApproval from a policy reaches people like a gate does: channels, escalation, timeout."""

from __future__ import annotations

import pytest
from approval_support import events, start_flow
from fakes.webhook_receiver import WebhookReceiver

from wflo_prefect import (
    ApprovalRejected,
    InvalidArgumentError,
    Policy,
    RequireApproval,
    WebhookApprovalChannel,
    governed_flow,
    governed_task,
)
from wflo_prefect.approvals import Approvers, Principal, hash_api_key
from wflo_prefect.ledger import Ledger


def test_policy_approval_notifies_escalates_and_times_out(ledger: Ledger) -> None:
    """The request goes to the channel (a saved block, by name), the next tier is added and
    notified at the deadline, then on_timeout rejects: the task never runs."""
    receiver = WebhookReceiver("policy-secret")
    WebhookApprovalChannel(url=receiver.url, secret="policy-secret").save(
        "policy-approvals", overwrite=True
    )
    Approvers(
        users=[
            Principal(name=n, email=f"{n}@example.com", api_key_hashes=[hash_api_key(f"k-{n}")])
            for n in ("alice", "carol")
        ]
    ).save("policy-people", overwrite=True)
    big_refunds = Policy(
        name="big-refunds",
        condition="operation == 'refund' && params.amount > 100",
        actions=[
            RequireApproval(
                approvers=["alice"],
                principals="policy-people",
                timeout=1,
                on_timeout="reject",
                notify=["wflo-webhook-approval-channel/policy-approvals"],
                escalation=[
                    {
                        "approvers": ["carol"],
                        "timeout": 1,
                        "notify": ["wflo-webhook-approval-channel/policy-approvals"],
                    }
                ],
            )
        ],
    )
    ran: list[int] = []

    @governed_task(operation="refund", policies=[big_refunds])
    def refund(amount: int) -> str:
        ran.append(amount)
        return f"refunded {amount}"

    @governed_flow
    def support(amount: int) -> str:
        return refund(amount)

    try:
        state = start_flow(support, 500).result(timeout=120)
    finally:
        receiver.close()
    with pytest.raises(ApprovalRejected):
        state.result()
    assert ran == []
    [request] = ledger.approvals.list_requests(status="timed_out")
    assert request.details["policy"] == "big-refunds"
    assert request.approvers == ["alice", "carol"]
    names = events(request.id)
    assert names.index("approval.escalated") < names.index("approval.expired")
    requested = [body for ok, body in receiver.received if body["type"] == "approval.requested"]
    assert all(ok for ok, _ in receiver.received)
    assert [body["request"]["tier"] for body in requested] == [0, 1]
    assert "big-refunds" in str(requested[0])


def test_require_approval_refuses_what_is_not_a_channel() -> None:
    """A notify= entry that is neither a channel block nor 'slug/name' fails when built."""
    with pytest.raises(InvalidArgumentError, match="approval channel"):
        RequireApproval(notify=["slack"])
    with pytest.raises(InvalidArgumentError):
        RequireApproval(escalation=[{"approvers": ["x"]}])  # a tier needs a timeout
