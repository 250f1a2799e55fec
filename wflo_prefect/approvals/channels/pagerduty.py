"""PagerDuty channel: Events API v2, trigger when asked, resolve when decided."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr

from wflo_prefect.approvals.channels._payload import request_payload
from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery
from wflo_prefect.approvals.decision import ApprovalDecision

__all__ = ["PagerDutyApprovalChannel"]


class PagerDutyApprovalChannel(ApprovalChannel):
    """Page on-call approvers through PagerDuty's Events API v2."""

    _block_type_name = "wflo PagerDuty Approval Channel"
    _block_type_slug = "wflo-pagerduty-approval-channel"
    _description = "Trigger a PagerDuty alert per approval request; resolve it when decided."

    routing_key: SecretStr = Field(description="Integration (routing) key of the service.")
    events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="Events API v2 enqueue URL.",
    )
    severity: str = Field(default="warning", description="critical, error, warning or info.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="HTTP timeout.")

    def channel_name(self) -> str:
        """``pagerduty``."""
        return "pagerduty"

    def _enqueue(self, body: dict[str, Any]) -> Delivery:
        response = httpx.post(self.events_url, json=body, timeout=self.timeout_seconds)
        detail = f"HTTP {response.status_code}"
        if response.headers.get("content-type", "").startswith("application/json"):
            detail += f" {response.json().get('status', '')}".rstrip()
        return Delivery(
            "pagerduty",
            delivered=response.status_code == 202,
            detail=detail,
            ref={"dedup_key": body["dedup_key"]},
        )

    def send(self, message: ApprovalMessage) -> Delivery:
        """Trigger an alert keyed by the request id."""
        request = message.request
        return self._enqueue(
            {
                "routing_key": self.routing_key.get_secret_value(),
                "event_action": "trigger",
                "dedup_key": f"wflo-approval-{request.id}",
                "payload": {
                    "summary": message.title[:1024],
                    "source": "wflo-prefect",
                    "severity": self.severity,
                    "custom_details": request_payload(message),
                },
            }
        )

    def close(
        self, message: ApprovalMessage, decision: ApprovalDecision, ref: dict[str, Any]
    ) -> Delivery:
        """Resolve the alert."""
        return self._enqueue(
            {
                "routing_key": self.routing_key.get_secret_value(),
                "event_action": "resolve",
                "dedup_key": str(ref["dedup_key"]),
            }
        )
