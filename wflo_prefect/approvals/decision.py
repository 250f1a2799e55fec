"""``ApprovalDecision``: what a gate returns when its request is settled."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.ledger.approvals import ApprovalRequestRecord, ApprovalVoteRecord

__all__ = ["ApprovalDecision"]


class ApprovalDecision(ValidatedModel, BaseModel):
    """The outcome of an approval request."""

    wflo_docs: ClassVar[str | None] = "approvals.md"

    model_config = ConfigDict(frozen=True)

    request_id: str
    action: str
    digest: str = Field(description="Digest of the action and details that were decided.")
    approved: bool
    status: str = Field(description="approved, rejected, timed_out or expired.")
    approvers: list[str] = Field(
        default_factory=list, description="Who decided, in order (approvals or the rejection)."
    )
    comments: dict[str, str] = Field(default_factory=dict, description="Comments by approver.")
    channel: str = Field(description="Channel of the deciding answer (cli, slack, ui, timeout...).")
    decided_at: datetime

    @classmethod
    def from_ledger(
        cls, request: ApprovalRequestRecord, votes: list[ApprovalVoteRecord]
    ) -> ApprovalDecision:
        """The decision a settled request stands for."""
        approved = request.status == "approved" or (
            request.status == "timed_out" and request.timeout_outcome == "approve"
        )
        if request.status == "approved":
            deciders = [v for v in votes if v.approved]
        elif request.status == "rejected":
            deciders = [v for v in votes if not v.approved]
        else:
            deciders = []
        last = deciders[-1] if deciders else None
        return cls(
            request_id=request.id,
            action=request.action,
            digest=request.digest,
            approved=approved,
            status=request.status,
            approvers=[v.approver for v in deciders],
            comments={v.approver: v.comment for v in deciders if v.comment},
            channel=last.channel if last else "timeout",
            decided_at=request.decided_at or (last.decided_at if last else request.created_at),
        )
