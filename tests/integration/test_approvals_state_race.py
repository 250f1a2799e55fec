"""Concurrent writers of one approval request lose nothing (PostgreSQL and SQLite).

The delivery thread stores each channel's reference, the waiter beats and
re-pauses, approvers vote, and several parties try to resume, close and apply,
all at once on the same request. Each writes only its own row or column, so
every delivery, the last heartbeat, every vote, the frozen policy and each
lifecycle mark survive, and each claim is won exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from wflo_prefect.approvals import Vote, decide
from wflo_prefect.approvals.request import beat
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approval_records import RequestPolicy
from wflo_prefect.testing import temporary_ledger

DELIVERY_THREADS = 4
DELIVERIES_EACH = 15
BEATS = 30
VOTERS = 12
CLAIMERS = 4

POLICY = RequestPolicy.model_validate(
    {
        "principals": {"alice": {"email": "alice@example.com", "slack_id": "UALICE"}},
        "tiers": [{"approvers": ["carol"], "timeout": 60}],
        "code_salt": "s" * 32,
        "channels": [["webhook/a", None], ["slack/b"]],
    }
)


def _hammer(ledger: Ledger) -> None:
    names = [f"user{i}" for i in range(VOTERS)]
    request = ledger.approvals.create(
        action="wire money",
        details={"eur": "100.00"},
        digest="a" * 64,
        approvers=names,
        quorum=VOTERS,
        policy=POLICY,
    )
    start = threading.Barrier(DELIVERY_THREADS + 3 + VOTERS)
    tokens: list[str] = []
    keysets: list[str] = []
    attempts: list[int] = []

    def deliveries(thread: int) -> None:
        start.wait()
        for i in range(DELIVERIES_EACH):
            position = thread * DELIVERIES_EACH + i
            ledger.approvals.record_delivery(request.id, 0, position, {"ts": str(position)})

    def heartbeats() -> None:
        start.wait()
        for i in range(BEATS):
            tokens.append(beat(request.id, f"127.0.0.1:{40000 + i}", f"tok{i}"))

    def pauses() -> None:
        start.wait()
        for i in range(BEATS):
            keyset = f"wflo-{request.id}-{i}"
            if ledger.approvals.transition(request.id, from_statuses=["pending"], keyset=keyset):
                keysets.append(keyset)

    def suspends() -> None:
        start.wait()
        for i in range(1, BEATS + 1):
            if ledger.approvals.transition(
                request.id, from_statuses=["pending"], suspend_attempt=i
            ):
                attempts.append(i)

    def vote(name: str) -> str:
        start.wait()
        return decide(request.id, Vote(name, True, "a" * 64, "api")).status

    jobs: list[Callable[[], Any]] = [
        *(lambda t=t: deliveries(t) for t in range(DELIVERY_THREADS)),
        heartbeats,
        pauses,
        suspends,
        *(lambda n=n: vote(n) for n in names),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = [f.result() for f in [pool.submit(job) for job in jobs]]
    assert results[-VOTERS:].count("approved") == 1

    # Then everyone who might resume, close or apply tries at once: one wins each.
    claims = threading.Barrier(3 * CLAIMERS)

    def claim(what: Callable[[str], bool]) -> bool:
        claims.wait()
        return what(request.id)

    repo = ledger.approvals
    claimers = [
        *(lambda: claim(repo.claim_resume) for _ in range(CLAIMERS)),
        *(lambda: claim(repo.claim_close) for _ in range(CLAIMERS)),
        *(lambda: claim(lambda rid: repo.mark_applied(rid, "gate")) for _ in range(CLAIMERS)),
    ]
    with ThreadPoolExecutor(len(claimers)) as pool:
        won = [f.result() for f in [pool.submit(c) for c in claimers]]
    assert won[:CLAIMERS].count(True) == 1, "exactly one party resumes the run"
    assert won[CLAIMERS : 2 * CLAIMERS].count(True) == 1, "channels are closed once"
    assert won[2 * CLAIMERS :].count(True) == 1, "the outcome is applied once"

    stored = repo.get(request.id)
    assert stored is not None
    assert stored.status == "approved"
    assert len(repo.votes(request.id)) == VOTERS
    assert stored.policy == POLICY, "the policy snapshot is never rewritten"
    # (Under load the votes may settle it before a pause or a suspend got in.)
    assert stored.keyset == (keysets[-1] if keysets else None), "the last pause is kept"
    assert stored.suspend_attempt == (attempts[-1] if attempts else 0)
    assert stored.resumed_at is not None
    assert stored.closed_at is not None
    assert stored.applied_at is not None
    assert stored.applied_by == "gate"
    refs = repo.deliveries(request.id)
    expected = DELIVERY_THREADS * DELIVERIES_EACH
    assert refs == {(0, p): {"ts": str(p)} for p in range(expected)}, "no delivery is lost"
    waiter = repo.waiter(request.id)
    assert waiter is not None, "the waiter's heartbeat is not lost"
    assert waiter.token == tokens[-1]
    assert waiter.wake == f"127.0.0.1:{40000 + BEATS - 1}"


@pytest.mark.postgres
def test_concurrent_writers_lose_nothing_on_postgres(postgres_url: str) -> None:
    """Row locks differ on PostgreSQL: there a whole-column rewrite loses keys."""
    with temporary_ledger(postgres_url) as ledger:
        ledger.ensure_schema()
        for _ in range(3):
            _hammer(ledger)


def test_concurrent_writers_lose_nothing_on_sqlite(ledger: Ledger) -> None:
    """The same on SQLite (one writer at a time, but the same statements)."""
    _hammer(ledger)
