"""Approval rules that need no Prefect run: digests, links, signatures, policies, tally."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from wflo_prefect import ApprovalPolicy, Approvers, InvalidArgumentError, require_approval
from wflo_prefect.approvals import DecisionRefused, Principal
from wflo_prefect.approvals.channels import sign_webhook, verify_webhook_signature
from wflo_prefect.approvals.decisions import tally
from wflo_prefect.approvals.digest import digest_of
from wflo_prefect.approvals.guard import ApprovalGuard
from wflo_prefect.approvals.links import make_link_token, read_link_token
from wflo_prefect.approvals.run_input import render_markdown
from wflo_prefect.errors import ConfigurationError
from wflo_prefect.ledger.approvals import ApprovalRequestRecord, ApprovalVoteRecord

SECRET = SecretStr("link-secret")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _request(**fields: object) -> ApprovalRequestRecord:
    base: dict[str, object] = {
        "id": "r1",
        "action": "deploy",
        "digest": "d" * 64,
        "created_at": NOW,
        "quorum": 2,
    }
    return ApprovalRequestRecord.model_validate({**base, **fields})


def _vote(approver: str, approved: bool) -> ApprovalVoteRecord:
    return ApprovalVoteRecord(
        id=approver,
        request_id="r1",
        approver=approver,
        approved=approved,
        channel="cli",
        digest="d" * 64,
        decided_at=NOW,
    )


def test_digest_is_canonical_and_bound_to_details() -> None:
    """Key order does not change the digest; any change of action or details does."""
    one = digest_of("pay", {"amount": Decimal("10.00"), "to": "acme"})
    assert one == digest_of("pay", {"to": "acme", "amount": Decimal("10.00")})
    assert one != digest_of("pay", {"to": "acme", "amount": Decimal("10.01")})
    assert one != digest_of("refund", {"to": "acme", "amount": Decimal("10.00")})


def test_link_token_round_trips_and_refuses_tampering_and_expiry() -> None:
    """A signed link reads back; a changed byte or an expired link is refused."""
    token = make_link_token(
        SECRET, request_id="r1", approver="alice", approve=True, digest="d" * 64, ttl_seconds=60
    )
    claim = read_link_token(SECRET, token)
    assert (claim.request_id, claim.approver, claim.approve) == ("r1", "alice", True)
    with pytest.raises(DecisionRefused) as forged:
        read_link_token(SECRET, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    assert forged.value.reason == "bad_credentials"
    old = make_link_token(
        SECRET, request_id="r1", approver="alice", approve=True, digest="d" * 64, ttl_seconds=-1
    )
    with pytest.raises(DecisionRefused) as expired:
        read_link_token(SECRET, old)
    assert expired.value.reason == "expired"


def test_links_need_a_secret() -> None:
    """Without a link secret the error says which setting to set."""
    with pytest.raises(ConfigurationError, match="LINK_SECRET"):
        make_link_token(None, request_id="r", approver="a", approve=True, digest="d", ttl_seconds=1)


def test_webhook_signature_refuses_other_body_and_stale_timestamp() -> None:
    """The HMAC covers timestamp and body; old timestamps are refused."""
    now = str(int(time.time()))
    signature = sign_webhook("k", now, b"{}")
    assert verify_webhook_signature("k", now, b"{}", signature)
    assert not verify_webhook_signature("k", now, b"{ }", signature)
    old = str(int(time.time()) - 3600)
    assert not verify_webhook_signature("k", old, b"{}", sign_webhook("k", old, b"{}"))


def test_tally_rejects_on_any_no_and_approves_at_distinct_quorum() -> None:
    """Quorum counts distinct approvers; one rejection settles as rejected."""
    request = _request()
    assert tally(request, [_vote("alice", True)]) is None
    assert tally(request, [_vote("alice", True), _vote("bob", True)]) == "approved"
    assert tally(request, [_vote("alice", True), _vote("bob", False)]) == "rejected"


def test_invalid_gate_arguments_are_refused_before_pausing() -> None:
    """Bad timeouts and an escalate policy without tiers are usage errors."""
    with pytest.raises(InvalidArgumentError, match="positive"):
        require_approval("x", timeout=-1)
    with pytest.raises(InvalidArgumentError, match="escalation"):
        require_approval("x", on_timeout="escalate")
    with pytest.raises(InvalidArgumentError, match="inside a flow"):
        require_approval("x")


def test_unknown_approver_names_are_refused() -> None:
    """Expanding a name that is neither user nor group names it and lists the users."""
    directory = Approvers(users=[Principal(name="alice")], groups={"ops": ["alice"]})
    assert list(directory.expand(["ops"])) == ["alice"]
    with pytest.raises(InvalidArgumentError, match="'zed'"):
        directory.expand(["zed"])


def test_guard_takes_only_an_approval_policy() -> None:
    """approval= refuses other values when the decorator is applied."""
    guard = ApprovalGuard()
    assert isinstance(guard.validate(True, kind="task", fn=len), ApprovalPolicy)
    with pytest.raises(InvalidArgumentError, match="ApprovalPolicy"):
        guard.validate("yes", kind="task", fn=len)


def test_form_description_shows_action_details_and_digest() -> None:
    """The Prefect UI form's markdown has the action, a details table and the digest."""
    text = render_markdown(_request(details={"table": "users|x", "rows": 3}, approvers=["alice"]))
    assert text.startswith("## Approval needed: deploy")
    assert "| table | users\\|x |" in text
    assert "d" * 64 in text
