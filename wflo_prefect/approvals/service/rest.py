"""REST API: list and decide pending approvals, authenticated by the approver's API key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel, Field

from wflo_prefect.approvals.decisions import Vote
from wflo_prefect.approvals.errors import DecisionRefused
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
    principals: dict[str, dict[str, Any]] = request.settings.get("principals", {})
    for name, entry in principals.items():
        if key_matches(api_key, [str(h) for h in entry.get("api_key_hashes", [])]):
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


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail={"reason": "bad_credentials", "message": "X-API-Key is not an approver's key"},
    )


@router.get("", response_model=list[ApprovalView])
def list_approvals(
    status: str = "pending", x_api_key: str | None = Header(default=None)
) -> list[ApprovalView]:
    """Requests in which the caller is a listed approver (their inbox)."""
    requests = get_ledger().approvals.list_requests(
        status=None if status == "all" else status, limit=200
    )
    views = [_view(r, who) for r in requests if (who := identify(r, x_api_key))]
    if not views and not x_api_key:
        raise _unauthorized()
    return views


@router.get("/{request_id}", response_model=ApprovalView)
def get_approval(request_id: str, x_api_key: str | None = Header(default=None)) -> ApprovalView:
    """One request, if the caller is one of its approvers."""
    request = get_ledger().approvals.get(request_id)
    if request is None:
        raise HTTPException(status_code=404, detail={"reason": "unknown_request"})
    who = identify(request, x_api_key)
    if who is None:
        raise _unauthorized()
    return _view(request, who)


@router.post("/{request_id}/decision", response_model=DecisionOut)
async def post_decision(
    request_id: str, body: DecisionIn, x_api_key: str | None = Header(default=None)
) -> DecisionOut:
    """Approve or reject; the run resumes when the request is settled."""
    request = get_ledger().approvals.get(request_id)
    if request is None:
        raise HTTPException(status_code=404, detail={"reason": "unknown_request"})
    who = identify(request, x_api_key)
    if who is None:
        raise _unauthorized()
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
