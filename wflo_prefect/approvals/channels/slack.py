"""Slack channel: a Block Kit message with Approve / Reject buttons, updated with the outcome.

Button clicks reach ``wflo approvals serve`` at ``/slack/interactions`` (set it
as the Slack app's interactivity request URL); the service verifies Slack's
signature and maps the clicking user's Slack id to an approver.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery
from wflo_prefect.approvals.decision import ApprovalDecision

__all__ = ["SlackApprovalChannel", "approval_blocks"]

APPROVE_ACTION = "wflo_approve"
REJECT_ACTION = "wflo_reject"


def _details_text(details: dict[str, Any]) -> str:
    lines = [f"• *{k}*: `{json.dumps(v, default=str)[:200]}`" for k, v in details.items()]
    return "\n".join(lines) or "_no details_"


def approval_blocks(message: ApprovalMessage) -> list[dict[str, Any]]:
    """Block Kit blocks: what is asked, details, who, and the two buttons."""
    request = message.request
    mentions = [
        f"<@{c['slack_id']}>" if c.get("slack_id") else name for name, c in message.contacts.items()
    ]
    value = json.dumps({"request_id": request.id, "digest": request.digest})
    return [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _details_text(request.details)}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Approvers: {', '.join(mentions) or 'anyone'} · quorum "
                    f"{request.quorum} · {message.deadline} · request `{request.id[:8]}` · "
                    f"digest `{request.digest[:12]}`",
                }
            ],
        },
        {
            "type": "actions",
            "block_id": f"wflo_approval_{request.id}",
            "elements": [
                {
                    "type": "button",
                    "style": "primary",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": value,
                },
                {
                    "type": "button",
                    "style": "danger",
                    "action_id": REJECT_ACTION,
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": value,
                },
            ],
        },
    ]


class SlackApprovalChannel(ApprovalChannel):
    """Post approval requests to a Slack channel with buttons (slack-sdk WebClient)."""

    _block_type_name = "wflo Slack Approval Channel"
    _block_type_slug = "wflo-slack-approval-channel"
    _description = "Slack message with Approve / Reject buttons, updated with the outcome."

    token: SecretStr = Field(description="Bot token (`xoxb-...`) with chat:write.")
    channel: str = Field(description="Channel id or name.", examples=["C0123456789", "#ops"])
    base_url: str | None = Field(
        default=None,
        description="Slack Web API base URL; empty means slack-sdk's default.",
    )

    def channel_name(self) -> str:
        """``slack``."""
        return "slack"

    def _client(self) -> WebClient:
        if self.base_url:
            return WebClient(token=self.token.get_secret_value(), base_url=self.base_url)
        return WebClient(token=self.token.get_secret_value())

    def notify(self, body: str, subject: str | None = None) -> None:
        """Post a plain message (a budget alert, a policy ``Notify``) to the channel, like
        Prefect's notification blocks; raises when Slack refuses it."""
        text = f"*{subject}*\n{body}" if subject else body
        response = self._client().chat_postMessage(channel=self.channel, text=text)
        if not response.get("ok"):
            raise RuntimeError(f"Slack refused the message: {response.get('error')}")

    def send(self, message: ApprovalMessage) -> Delivery:
        """chat.postMessage with the approval blocks."""
        try:
            response = self._client().chat_postMessage(
                channel=self.channel, text=message.title, blocks=approval_blocks(message)
            )
        except SlackApiError as exc:
            return Delivery("slack", delivered=False, detail=str(exc.response.get("error")))
        return Delivery(
            channel="slack",
            delivered=bool(response.get("ok")),
            detail=f"ts {response.get('ts')}",
            ref={"channel": response.get("channel"), "ts": response.get("ts")},
        )

    def close(
        self, message: ApprovalMessage, decision: ApprovalDecision, ref: dict[str, Any]
    ) -> Delivery:
        """chat.update: replace the buttons with the outcome."""
        verb = "Approved" if decision.approved else "Rejected"
        if decision.status in ("timed_out", "expired"):
            verb += " (deadline passed)"
        who = ", ".join(decision.approvers) or decision.channel
        text = f"*{verb}*: {message.request.action} — by {who}"
        try:
            response = self._client().chat_update(
                channel=str(ref["channel"]),
                ts=str(ref["ts"]),
                text=text,
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            )
        except SlackApiError as exc:
            return Delivery("slack", delivered=False, detail=str(exc.response.get("error")))
        return Delivery("slack", delivered=bool(response.get("ok")), detail="updated")
