"""Slack interactivity: Approve / Reject button clicks, verified with the signing secret.

Slack signs every request (``X-Slack-Signature`` over ``v0:<timestamp>:<body>``);
the service refuses a bad signature and a timestamp older than five minutes
(slack-sdk's ``SignatureVerifier``), maps the clicking user's Slack id to an
approver of the request, and counts each click (``action_ts``) once.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request
from slack_sdk.signature import SignatureVerifier

from wflo_prefect.approvals.channels.slack import APPROVE_ACTION, REJECT_ACTION
from wflo_prefect.approvals.decisions import Vote
from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.approvals.settle import decide
from wflo_prefect.ledger import get_ledger

__all__ = ["router"]

router = APIRouter(tags=["slack"])


def _approver_for(settings: dict[str, Any], slack_id: str) -> str | None:
    principals: dict[str, dict[str, Any]] = settings.get("principals", {})
    return next((n for n, p in principals.items() if p.get("slack_id") == slack_id), None)


@router.post("/slack/interactions")
async def slack_interactions(request: Request) -> dict[str, Any]:
    """Receive a button click from Slack and decide with it."""
    secret = get_approval_settings().slack_signing_secret
    if secret is None:
        raise HTTPException(status_code=503, detail="Slack signing secret is not configured")
    body = await request.body()
    verifier = SignatureVerifier(secret.get_secret_value())
    if not verifier.is_valid(
        body=body,
        timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
        signature=request.headers.get("X-Slack-Signature", ""),
    ):
        raise HTTPException(status_code=401, detail="invalid Slack signature or stale timestamp")
    form = parse_qs(body.decode())
    payload = json.loads(form.get("payload", ["{}"])[0])
    actions = payload.get("actions") or []
    if payload.get("type") != "block_actions" or not actions:
        return {"ok": True, "ignored": True}
    action = actions[0]
    if action.get("action_id") not in (APPROVE_ACTION, REJECT_ACTION):
        return {"ok": True, "ignored": True}
    value = json.loads(action.get("value", "{}"))
    slack_user = str(payload.get("user", {}).get("id", ""))
    stored = get_ledger().approvals.get(str(value.get("request_id", "")))
    if stored is None:
        return {"ok": False, "reason": "unknown_request"}
    approver = _approver_for(stored.settings, slack_user)
    if approver is None:
        return {"ok": False, "reason": "not_an_approver", "text": "You are not an approver."}
    vote = Vote(
        approver=approver,
        approved=action["action_id"] == APPROVE_ACTION,
        digest=str(value.get("digest", "")),
        channel="slack",
        nonce=f"slack:{slack_user}:{action.get('action_ts', '')}",
    )
    try:
        after = await anyio.to_thread.run_sync(decide, stored.id, vote)
    except DecisionRefused as exc:
        return {"ok": False, "reason": exc.reason, "text": exc.message}
    return {"ok": True, "status": after.status, "approver": approver}
