"""Approval votes in the ledger, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from wflo_prefect.approvals import DecisionRefused, Vote
from wflo_prefect.approvals.decisions import cast_vote
from wflo_prefect.ledger import Ledger


def _request(ledger: Ledger, quorum: int, approvers: list[str]) -> str:
    record = ledger.approvals.create(
        action="wire money",
        details={"eur": "100.00"},
        digest="a" * 64,
        approvers=approvers,
        quorum=quorum,
        policy={},
    )
    return record.id


def test_concurrent_votes_settle_once(any_ledger: Ledger) -> None:
    """Eight approvers answering at once: exactly `quorum` votes count, then it is settled."""
    names = [f"user{i}" for i in range(8)]
    request_id = _request(any_ledger, 2, names)

    def vote(name: str) -> str:
        try:
            return cast_vote(request_id, Vote(name, True, "a" * 64, "api")).status
        except DecisionRefused as exc:
            return exc.reason

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(vote, names))
    assert outcomes.count("approved") == 1
    assert outcomes.count("pending") == 1
    assert outcomes.count("not_pending") == 6
    assert len(any_ledger.approvals.votes(request_id)) == 2


def test_replayed_nonce_is_refused(any_ledger: Ledger) -> None:
    """A nonce already used (a link or click) is refused for another request too."""
    first = _request(any_ledger, 2, ["a", "b"])
    second = _request(any_ledger, 2, ["a", "b"])
    cast_vote(first, Vote("a", True, "a" * 64, "email-link", nonce="link:xyz"))
    with pytest.raises(DecisionRefused) as caught:
        cast_vote(second, Vote("b", True, "a" * 64, "email-link", nonce="link:xyz"))
    assert caught.value.reason == "replay"
    assert any_ledger.approvals.votes(second) == []


def test_a_settling_vote_that_came_with_the_resume_claims_it(any_ledger: Ledger) -> None:
    """A Prefect UI answer resumed the run itself: its settling vote also claims the resume.

    Nobody else (the decider, the sweep) may resume the run again, and the gate
    needs no second write for it. A vote that does not settle claims nothing.
    """
    from wflo_prefect.approvals.decisions import record

    request_id = _request(any_ledger, 2, ["a", "b"])
    first = record(request_id, Vote("a", True, "a" * 64, "prefect-ui"), resumed=True)
    assert first.request.status == "pending"
    assert first.request.resumed_at is None
    second = record(request_id, Vote("b", True, "a" * 64, "prefect-ui"), resumed=True)
    assert second.request.status == "approved"
    assert second.request.resumed_at == second.vote.decided_at
    assert any_ledger.approvals.claim_resume(request_id) is False

    other = _request(any_ledger, 1, ["a"])
    settled = record(other, Vote("a", True, "a" * 64, "api"))
    assert settled.request.resumed_at is None  # a decider resumes it afterwards
    assert any_ledger.approvals.claim_resume(other) is True
