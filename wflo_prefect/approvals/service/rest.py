"""REST API: list and decide pending approvals, authenticated by the approver's API key.

The key is checked before anything about a request is told: an unknown id and a
real one answer the same 401 to a caller without an approver's key, so the API
is no oracle for which request ids exist. Every 401 is audited (``approval.refused``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel, Field

from wflo_prefect.approvals.decisions import Vote
from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.events import refused
from wflo_prefect.approvals.principals import key_matches
from wflo_prefect.approvals.service.errors import http_error
from wflo_prefect.approvals.settle import decide
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = ["router"]

router = APIRouter(prefix="/api/approvals", tags=["approvals"])


class ApprovalView(BaseModel):
    """A request as approvers see it."""

    id: str
    action: str
    details: dict[str, Any]
    digest: str
    status: str
    approvers: list[str]
    quorum: int
    tier: int
    flow_run_id: str | None
    created_at: datetime
    deadline_at: datetime | None
    you: str | None = Field(default=None, description="Your approver name on this request.")


class DecisionIn(BaseModel):
    """One approver's decision."""

    approve: bool
    digest: str = Field(description="The digest of the request you reviewed.")
    comment: str | None = None
    nonce: str | None = Field(
        default=None, description="Unique per decision; a repeated nonce is refused."
    )


class DecisionOut(BaseModel):
    """The request's status after the decision."""

    request_id: str
    status: str
    approver: str


def identify(request: ApprovalRequestRecord, api_key: str | None) -> str | None:
    """The approver of ``request`` this API key belongs to, if any."""
    if not api_key:
        return None
    for name, entry in request.policy.principals.items():
        if key_matches(api_key, entry.api_key_hashes):
            return name
    return None


def _view(request: ApprovalRequestRecord, you: str | None) -> ApprovalView:
    return ApprovalView(
        id=request.id,
        action=request.action,
        details=request.details,
        digest=request.digest,
        status=request.status,
        approvers=[str(a) for a in request.approvers],
        quorum=request.quorum,
        tier=request.tier,
        flow_run_id=request.flow_run_id,
        created_at=request.created_at,
        deadline_at=request.deadline_at,
        you=you,
    )


def _unauthorized(request: ApprovalRequestRecord | None, claimed_id: str | None) -> HTTPException:
    """401, audited; the same answer whether or not the request exists (no id oracle)."""
    error = DecisionRefused(
        "bad_credentials",
        "X-API-Key is not the key of an approver of this request",
        value=claimed_id,
        hint="Send your own API key in X-API-Key; the request id must be one you approve",
    )
    refused(request, error, channel="api", claimed_id=claimed_id)
    return HTTPException(
        status_code=401,
        detail={"reason": "bad_credentials", "message": "X-API-Key is not an approver's key"},
    )


def _authenticated(request_id: str, api_key: str | None) -> tuple[ApprovalRequestRecord, str]:
    """The request and the caller's approver name on it, or a 401 (never a 404)."""
    request = get_ledger().approvals.get(request_id) if api_key else None
    who = identify(request, api_key) if request is not None else None
    if request is None or who is None:
        raise _unauthorized(request, request_id)
    return request, who


@router.get("", response_model=list[ApprovalView])
def list_approvals(
    status: str = "pending", x_api_key: str | None = Header(default=None)
) -> list[ApprovalView]:
    """Requests in which the caller is a listed approver (their inbox)."""
    if not x_api_key:
        raise _unauthorized(None, None)
    requests = get_ledger().approvals.list_requests(
        status=None if status == "all" else status, limit=200
    )
    return [_view(r, who) for r in requests if (who := identify(r, x_api_key))]


@router.get("/{request_id}", response_model=ApprovalView)
def get_approval(request_id: str, x_api_key: str | None = Header(default=None)) -> ApprovalView:
    """One request, if the caller is one of its approvers (401 otherwise, known id or not)."""
    request, who = _authenticated(request_id, x_api_key)
    return _view(request, who)


@router.post("/{request_id}/decision", response_model=DecisionOut)
async def post_decision(
    request_id: str, body: DecisionIn, x_api_key: str | None = Header(default=None)
) -> DecisionOut:
    """Approve or reject; the run resumes when the request is settled."""
    request, who = await anyio.to_thread.run_sync(_authenticated, request_id, x_api_key)
    vote = Vote(
        approver=who,
        approved=body.approve,
        digest=body.digest,
        channel="api",
        comment=body.comment,
        nonce=f"api:{body.nonce}" if body.nonce else None,
    )
    try:
        after = await anyio.to_thread.run_sync(decide, request.id, vote)
    except DecisionRefused as exc:
        raise http_error(exc) from exc
    return DecisionOut(request_id=after.id, status=after.status, approver=who)
