"""What every notification channel is: a Prefect Block that delivers an approval message."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any, ClassVar

from prefect.blocks.core import Block

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = ["ApprovalChannel", "ApprovalMessage", "Delivery"]


@dataclass(frozen=True, slots=True)
class ApprovalMessage:
    """Everything a channel may show: the request, who is asked, links and codes."""

    request: ApprovalRequestRecord
    tier: int
    service_url: str
    #: approver -> {"approve": url, "reject": url}; empty when no link secret is set.
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    #: approver -> one-time code for the Prefect UI form.
    codes: dict[str, str] = field(default_factory=dict)
    #: approver -> {"email": ..., "slack_id": ...}
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """One line saying what is asked."""
        return f"Approval needed: {self.request.action}"

    @property
    def deadline(self) -> str:
        """Until when an answer counts, in words (UTC), for every channel to show."""
        at = self.request.deadline_at
        if at is None:
            return "no deadline"
        return f"answer by {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

    def without_credentials(self) -> ApprovalMessage:
        """The message with no signed links and no one-time codes.

        What a channel that reaches several people at once (a Slack channel, a
        webhook, a PagerDuty alert) gets: whoever reads it must not hold the other
        approvers' proofs, or one person could meet a quorum of several.
        """
        return replace(self, links={}, codes={})


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one notification went."""

    channel: str
    delivered: bool
    detail: str = ""
    #: Whatever the channel needs later to update or resolve what it sent.
    ref: dict[str, Any] = field(default_factory=dict)


class ApprovalChannel(ValidatedModel, Block):
    """Base of approval notification channels."""

    wflo_docs: ClassVar[str | None] = "approvals.md"

    _block_type_name = "wflo Approval Channel"
    _description = "Base of the channels that notify approvers of a request."
    _documentation_url = "https://github.com/wflo-ai/wflo-prefect/blob/main/docs/approvals.md"  # type: ignore[assignment]

    #: Whether the channel delivers each approver's links and code to that approver
    #: alone. Only such channels are given credentials; every other channel (the
    #: default, and any custom subclass) gets :meth:`ApprovalMessage.without_credentials`.
    per_recipient: ClassVar[bool] = False

    def channel_name(self) -> str:
        """Short name used in the audit log (``slack``, ``webhook`` ...)."""
        raise NotImplementedError

    def send(self, message: ApprovalMessage) -> Delivery:
        """Deliver the request; never raise for a delivery failure, report it."""
        raise NotImplementedError

    def close(
        self, message: ApprovalMessage, decision: ApprovalDecision, ref: dict[str, Any]
    ) -> Delivery | None:
        """Tell the channel the request is settled (update the message, resolve the alert)."""
        return None
