"""Slack interactivity: Approve / Reject button clicks, verified with the signing secret.

Slack signs every request (``X-Slack-Signature`` over ``v0:<timestamp>:<body>``);
the service refuses a bad signature and a timestamp older than five minutes
(slack-sdk's ``SignatureVerifier``), maps the clicking user's Slack id to an
approver of the request, and counts each click (``action_ts``) once. Every
refused click (bad signature, unknown request, a user who is not an approver)
is audited as ``approval.refused``; a malformed request is a 4xx, never a 5xx.
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
from wflo_prefect.approvals.events import refused
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.approvals.settle import decide
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord, RequestPolicy

__all__ = ["router"]

router = APIRouter(tags=["slack"])


def _approver_for(policy: RequestPolicy, slack_id: str) -> str | None:
    return next((n for n, p in policy.principals.items() if p.slack_id == slack_id), None)


def _signed(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    # slack-sdk's verifier raises on a missing or non-numeric timestamp (int(""))
    # and on a non-ASCII signature (hmac): both are just unsigned requests here.
    if not (timestamp.isascii() and timestamp.isdigit()) or not signature.isascii():
        return False
    return SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature)


def _refuse(
    stored: ApprovalRequestRecord | None,
    reason: str,
    message: str,
    *,
    actor: str | None = None,
    claimed_id: str | None = None,
) -> DecisionRefused:
    error = DecisionRefused(
        reason, message, value=claimed_id, hint="Click the buttons of the request's Slack message"
    )
    refused(stored, error, channel="slack", actor=actor, claimed_id=claimed_id)
    return error


def _click(body: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """(payload, action, button value) of a wflo button click; None for anything else."""
    form = parse_qs(body.decode())
    payload = json.loads(form.get("payload", ["{}"])[0])
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    action = actions[0]
    if action.get("action_id") not in (APPROVE_ACTION, REJECT_ACTION):
        return None
    value = json.loads(str(action.get("value", "{}")))
    return payload, action, value if isinstance(value, dict) else {}


@router.post("/slack/interactions")
async def slack_interactions(request: Request) -> dict[str, Any]:
    """Receive a button click from Slack and decide with it."""
    secret = get_approval_settings().slack_signing_secret
    if secret is None:
        raise HTTPException(status_code=503, detail="Slack signing secret is not configured")
    body = await request.body()
    if not _signed(
        secret.get_secret_value(),
        body,
        request.headers.get("X-Slack-Request-Timestamp", ""),
        request.headers.get("X-Slack-Signature", ""),
    ):
        await anyio.to_thread.run_sync(
            lambda: _refuse(None, "bad_credentials", "Slack signature invalid or timestamp stale")
        )
        raise HTTPException(status_code=401, detail="invalid Slack signature or stale timestamp")
    try:
        click = _click(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status_code=400, detail="not a Slack interactivity payload") from exc
    if click is None:
        return {"ok": True, "ignored": True}
    payload, action, value = click
    user = payload.get("user")
    slack_user = str(user.get("id", "")) if isinstance(user, dict) else ""
    return await anyio.to_thread.run_sync(_decide_click, slack_user, action, value)


def _decide_click(slack_user: str, action: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    claimed = str(value.get("request_id", ""))
    actor = f"slack:{slack_user}"
    stored = get_ledger().approvals.get(claimed) if claimed else None
    if stored is None:
        _refuse(
            None, "unknown_request", "No such approval request", actor=actor, claimed_id=claimed
        )
        return {"ok": False, "reason": "unknown_request"}
    approver = _approver_for(stored.policy, slack_user)
    if approver is None:
        _refuse(
            stored,
            "not_an_approver",
            f"Slack user {slack_user!r} is not an approver of this request",
            actor=actor,
            claimed_id=claimed,
        )
        return {"ok": False, "reason": "not_an_approver", "text": "You are not an approver."}
    vote = Vote(
        approver=approver,
        approved=action["action_id"] == APPROVE_ACTION,
        digest=str(value.get("digest", "")),
        channel="slack",
        nonce=f"slack:{slack_user}:{action.get('action_ts', '')}",
    )
    try:
        after = decide(stored.id, vote)  # audits its own refusals
    except DecisionRefused as exc:
        return {"ok": False, "reason": exc.reason, "text": exc.message}
    return {"ok": True, "status": after.status, "approver": approver}
