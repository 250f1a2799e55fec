"""The rules a decision must pass, and counting decisions to a quorum.

A vote is admitted only when the request is pending and not expired, the vote
is for the request's digest, the voter is a listed approver (when approvers are
listed), is not the requester (unless self-approval is allowed), has not voted
yet, and its nonce was never used. One rejection by a listed approver rejects;
``quorum`` approvals by distinct people approve. Refused votes change nothing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.principals import key_matches, same_text
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approval_records import (
    Admit,
    ApprovalRequestRecord,
    ApprovalVoteRecord,
    VoteOutcome,
)
from wflo_prefect.ledger.models import utcnow

__all__ = [
    "MAX_UI_PROOF_FAILURES",
    "Vote",
    "cast_vote",
    "new_code_salt",
    "one_time_code",
    "record",
    "tally",
    "verify_api_key",
    "verify_code",
]

SETTLED = ("approved", "rejected", "timed_out", "expired")

#: Wrong codes (or keys) an approver may submit in the Prefect UI form for one
#: request; after that their form answers to it are refused, even the right one.
MAX_UI_PROOF_FAILURES = 5


@dataclass(frozen=True, slots=True)
class Vote:
    """One approver's answer, as a channel received it."""

    approver: str
    approved: bool
    digest: str
    channel: str
    comment: str | None = None
    nonce: str | None = None


def _admit(vote: Vote) -> Admit:
    def admit(
        request: ApprovalRequestRecord, votes: list[ApprovalVoteRecord], nonce_seen: bool
    ) -> None:
        if request.status != "pending":
            raise DecisionRefused(
                "not_pending",
                f"Approval request {request.id} is already {request.status}",
                value=vote.approver,
                hint="Nothing to decide; `wflo approvals show` prints the outcome",
            )
        if request.expires_at is not None and utcnow() >= request.expires_at:
            raise DecisionRefused(
                "expired",
                f"Approval request {request.id} expired at {request.expires_at.isoformat()}",
                value=vote.approver,
                hint="Decisions after expiry are not accepted; the run applies its on_timeout",
            )
        if not same_text(vote.digest, request.digest):
            raise DecisionRefused(
                "digest_mismatch",
                "The decision was made for other details than the request's",
                value=vote.digest,
                hint=f"Review the request again (digest {request.digest[:12]}...) and decide on it",
            )
        if request.approvers and vote.approver not in request.approvers:
            raise DecisionRefused(
                "not_an_approver",
                f"{vote.approver!r} is not an approver of request {request.id}",
                value=vote.approver,
                hint=f"Approvers now: {', '.join(map(str, request.approvers))}",
            )
        self_ok = request.policy.allow_self_approval
        if request.requested_by and vote.approver == request.requested_by and not self_ok:
            raise DecisionRefused(
                "self_approval",
                f"{vote.approver!r} requested this approval and cannot decide it",
                value=vote.approver,
                hint="Ask another approver, or set allow_self_approval=True on the gate",
            )
        if any(v.approver == vote.approver for v in votes):
            raise DecisionRefused(
                "duplicate",
                f"{vote.approver!r} already decided request {request.id}",
                value=vote.approver,
                hint="Each person counts once toward the quorum",
            )
        if nonce_seen:
            raise DecisionRefused(
                "replay",
                "This decision was already used once",
                value=vote.nonce,
                hint="Each link, button click or API nonce decides only once",
            )

    return admit


def tally(request: ApprovalRequestRecord, votes: list[ApprovalVoteRecord]) -> str | None:
    """``rejected`` on any rejection, ``approved`` at quorum distinct approvals, else None."""
    if any(not v.approved for v in votes):
        return "rejected"
    if len({v.approver for v in votes if v.approved}) >= request.quorum:
        return "approved"
    return None


def record(
    request_id: str,
    vote: Vote,
    *,
    known: ApprovalRequestRecord | None = None,
    resumed: bool = False,
) -> VoteOutcome:
    """Record ``vote`` if the rules admit it; return the request after it and every vote.

    ``known`` is the request as the caller just read it (saves reading it again:
    the vote is admitted against the row read under its lock anyway). ``resumed``:
    the run already runs again; see :meth:`ApprovalRepository.record_vote`.
    Raises :class:`DecisionRefused` (request and run unchanged) otherwise.
    """
    repo = get_ledger().approvals
    if known is None or known.id != request_id:
        known = repo.get(request_id)
    if known is None:
        raise DecisionRefused(
            "unknown_request",
            "There is no approval request with this id",
            value=request_id,
            hint="List pending requests with `wflo approvals list`",
        )
    return repo.record_vote(
        known.id,
        approver=vote.approver,
        approved=vote.approved,
        comment=vote.comment,
        channel=vote.channel,
        digest=vote.digest,
        nonce=vote.nonce,
        admit=_admit(vote),
        tally=tally,
        resumed=resumed,
    )


def cast_vote(request_id: str, vote: Vote) -> ApprovalRequestRecord:
    """Record ``vote`` if the rules admit it; return the request after it.

    Raises :class:`DecisionRefused` (request and run unchanged) otherwise.
    """
    return record(request_id, vote).request


def verify_api_key(request: ApprovalRequestRecord, approver: str, api_key: str | None) -> None:
    """Check ``api_key`` proves ``approver`` for this request (open gates need no key)."""
    principals = request.policy.principals
    if not principals:
        return
    entry = principals.get(approver)
    if entry is None:
        raise DecisionRefused(
            "not_an_approver",
            f"{approver!r} is not an approver of request {request.id}",
            value=approver,
            hint=f"Approvers now: {', '.join(map(str, request.approvers))}",
        )
    hashes = entry.api_key_hashes
    if not hashes:
        raise DecisionRefused(
            "bad_credentials",
            f"{approver!r} has no API key registered for request {request.id}",
            value=approver,
            hint="Add an API-key hash to their entry in the Approvers block, or decide "
            "through Slack or a signed link",
        )
    if not api_key or not key_matches(api_key, [str(h) for h in hashes]):
        raise DecisionRefused(
            "bad_credentials",
            f"The API key does not belong to {approver!r}",
            value=approver,
            hint="Pass the approver's own key (--api-key or WFLO_APPROVER_API_KEY)",
        )


def new_code_salt() -> str:
    """A random per-request salt from which one-time codes are derived."""
    return secrets.token_hex(16)


def one_time_code(request: ApprovalRequestRecord, approver: str) -> str:
    """The one-time code that proves ``approver`` in the Prefect UI form for this request."""
    salt = request.policy.code_salt
    mac = hmac.new(salt.encode(), f"{request.id}:{approver}".encode(), "sha256").hexdigest()
    return f"{int(mac[:12], 16) % 10**8:08d}"


def verify_code(request: ApprovalRequestRecord, approver: str, code: str) -> None:
    """Check a UI form's proof: the approver's one-time code or one of their API keys."""
    if not request.policy.proven:
        return
    if code and same_text(code.strip(), one_time_code(request, approver)):
        return
    verify_api_key(request, approver, code.strip() or None)
