"""Webhook channel: a JSON POST signed with HMAC-SHA256 over the timestamp and the body.

Headers: ``X-Wflo-Timestamp`` (Unix seconds) and ``X-Wflo-Signature``
(``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``). Receivers check both
with :func:`verify_webhook_signature`, refusing stale timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from pydantic import Field, SecretStr

from wflo_prefect.approvals.channels._payload import decided_payload, request_payload
from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.principals import same_text

__all__ = ["WebhookApprovalChannel", "sign_webhook", "verify_webhook_signature"]


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Wflo-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_webhook_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300
) -> bool:
    """Whether a received webhook is authentic and fresh."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent) > tolerance_s:
        return False
    return same_text(signature, sign_webhook(secret, timestamp, body))


class WebhookApprovalChannel(ApprovalChannel):
    """POST each approval request (and its outcome) to a URL, signed."""

    _block_type_name = "wflo Webhook Approval Channel"
    _block_type_slug = "wflo-webhook-approval-channel"
    _description = "Signed JSON POST of approval requests and outcomes."

    url: str = Field(description="Where to POST.", examples=["https://hooks.example.com/wflo"])
    secret: SecretStr = Field(description="Shared HMAC-SHA256 key of the signature header.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="HTTP timeout.")

    def channel_name(self) -> str:
        """``webhook``."""
        return "webhook"

    def _post(self, document: dict[str, Any]) -> httpx.Response:
        body = json.dumps(document, separators=(",", ":"), default=str).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Wflo-Timestamp": timestamp,
            "X-Wflo-Signature": sign_webhook(self.secret.get_secret_value(), timestamp, body),
        }
        return httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_seconds)

    def send(self, message: ApprovalMessage) -> Delivery:
        """POST the request."""
        response = self._post(request_payload(message))
        return Delivery(
            channel="webhook",
            delivered=response.is_success,
            detail=f"HTTP {response.status_code}",
            ref={"url": self.url},
        )

    def close(
        self, message: ApprovalMessage, decision: ApprovalDecision, ref: dict[str, Any]
    ) -> Delivery:
        """POST the outcome."""
        response = self._post(decided_payload(message, decision))
        return Delivery("webhook", response.is_success, f"HTTP {response.status_code}")
