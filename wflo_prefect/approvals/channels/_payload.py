"""The JSON description of a request that the HTTP channels send."""

from __future__ import annotations

from typing import Any

from wflo_prefect.approvals.channels.base import ApprovalMessage
from wflo_prefect.approvals.decision import ApprovalDecision

__all__ = ["decided_payload", "request_payload"]


def request_payload(message: ApprovalMessage) -> dict[str, Any]:
    """The request, its approvers and the REST API URL, as JSON values.

    No signed links and no one-time codes, whatever the message holds: a webhook
    or an alert reaches whoever runs the receiver, and that one reader must not
    hold every approver's proof. Approvers decide with their own proof (API key,
    Slack identity, their personal e-mail link or code).
    """
    request = message.request
    return {
        "type": "approval.requested",
        "request": {
            "id": request.id,
            "action": request.action,
            "details": request.details,
            "digest": request.digest,
            "approvers": [str(a) for a in request.approvers],
            "quorum": request.quorum,
            "tier": message.tier,
            "requested_by": request.requested_by,
            "flow_run_id": request.flow_run_id,
            "deadline_at": request.deadline_at.isoformat() if request.deadline_at else None,
        },
        "api": f"{message.service_url.rstrip('/')}/api/approvals/{request.id}",
    }


def decided_payload(message: ApprovalMessage, decision: ApprovalDecision) -> dict[str, Any]:
    """The settled outcome, as JSON values."""
    return {
        "type": "approval.decided",
        "request": {"id": message.request.id, "action": message.request.action},
        "decision": decision.model_dump(mode="json"),
    }
