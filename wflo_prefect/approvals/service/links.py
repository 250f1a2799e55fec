"""Links from e-mails: a GET shows what the link will decide; only a POST decides.

Mail scanners and link previewers open every link in a message (a GET); a link
that decided on GET would be approved by them. So following a link shows a page
naming the request, the decision and the approver, with one button that POSTs to
the same link. Both verify the signature and expiry; the POST decides, once.
Every refused POST (bad signature, expired, used, settled) is audited as
``approval.refused``; a GET decides nothing and is not audited.
"""

from __future__ import annotations

import html

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from wflo_prefect.approvals.decisions import Vote
from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.events import refused
from wflo_prefect.approvals.links import LinkClaim, read_link_token
from wflo_prefect.approvals.service.errors import http_error
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.approvals.settle import decide
from wflo_prefect.ledger import get_ledger

__all__ = ["router"]

router = APIRouter(tags=["links"])


def _page(title: str, text: str, status: int, form: str = "") -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title>"
        '<meta name="robots" content="noindex"></head>'
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(exc: DecisionRefused) -> HTMLResponse:
    return _page("Not accepted", str(exc), http_error(exc).status_code)


def _claim(token: str) -> LinkClaim:
    secret = get_approval_settings().link_secret
    if secret is None or not secret.get_secret_value():
        raise _NotConfigured
    return read_link_token(secret, token)


class _NotConfigured(Exception):
    """No link secret: this service signs and accepts no links."""


def _not_configured() -> HTMLResponse:
    return _page(
        "Links are not enabled",
        "This approval service has no link secret "
        "(PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET).",
        503,
    )


def _audit_refusal(exc: DecisionRefused) -> None:
    # Refusals before `decide` (bad signature, expired link); `decide` audits its own.
    claimed = str(exc.value) if exc.reason == "expired" and exc.value else None
    request = get_ledger().approvals.get(claimed) if claimed else None
    refused(request, exc, channel="email-link", claimed_id=claimed)


@router.get("/links/{token}", response_class=HTMLResponse)
async def show_link(token: str) -> HTMLResponse:
    """Show what the signed link decides, with a button to confirm (nothing is decided)."""
    try:
        claim = _claim(token)
        request = await anyio.to_thread.run_sync(get_ledger().approvals.get, claim.request_id)
        if request is None:
            raise DecisionRefused(
                "unknown_request",
                "This approval request does not exist",
                value=claim.request_id,
                hint="The link may belong to another wflo deployment",
            )
        if request.status != "pending":
            raise DecisionRefused(
                "not_pending",
                f"This request is already {request.status.replace('_', ' ')}",
                value=claim.request_id,
                hint="Nothing to do",
            )
    except _NotConfigured:
        return _not_configured()
    except DecisionRefused as exc:
        return _refused(exc)
    verb = "Approve" if claim.approve else "Reject"
    form = (
        '<form method="post"><button type="submit" name="confirm" value="1">'
        f"{verb} as {html.escape(claim.approver)}</button></form>"
    )
    return _page(f"{verb} {request.action}?", f"Requested for {request.action}.", 200, form)


@router.post("/links/{token}", response_class=HTMLResponse)
async def follow_link(token: str) -> HTMLResponse:
    """Apply the decision a signed link carries (once)."""
    try:
        claim = _claim(token)
    except _NotConfigured:
        return _not_configured()
    except DecisionRefused as exc:
        await anyio.to_thread.run_sync(_audit_refusal, exc)
        return _refused(exc)
    try:
        vote = Vote(
            approver=claim.approver,
            approved=claim.approve,
            digest=claim.digest,
            channel="email-link",
            nonce=claim.nonce,
        )
        after = await anyio.to_thread.run_sync(decide, claim.request_id, vote)
    except DecisionRefused as exc:
        return _refused(exc)
    verb = "approved" if claim.approve else "rejected"
    return _page(
        f"You {verb} {after.action}", f"The request is now {after.status.replace('_', ' ')}.", 200
    )
