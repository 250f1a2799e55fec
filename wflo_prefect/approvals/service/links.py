"""One-click links from e-mails: verify the signature, expiry and single use, then decide."""

from __future__ import annotations

import html

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from wflo_prefect.approvals.decisions import Vote
from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.links import read_link_token
from wflo_prefect.approvals.service.errors import http_error
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.approvals.settle import decide

__all__ = ["router"]

router = APIRouter(tags=["links"])


def _page(title: str, text: str, status: int) -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


@router.get("/links/{token}", response_class=HTMLResponse)
async def follow_link(token: str) -> HTMLResponse:
    """Apply the decision a signed link carries (once)."""
    try:
        claim = read_link_token(get_approval_settings().link_secret, token)
        vote = Vote(
            approver=claim.approver,
            approved=claim.approve,
            digest=claim.digest,
            channel="email-link",
            nonce=claim.nonce,
        )
        after = await anyio.to_thread.run_sync(decide, claim.request_id, vote)
    except DecisionRefused as exc:
        return _page("Not accepted", str(exc), http_error(exc).status_code)
    verb = "approved" if claim.approve else "rejected"
    return _page(
        f"You {verb} {after.action}", f"The request is now {after.status.replace('_', ' ')}.", 200
    )
