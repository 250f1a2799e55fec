"""The typed form a paused run shows in the Prefect UI.

The form's description renders the action, its details and the digest as
markdown above the fields. The open-source UI has no user identity, so the
form asks for proof: the approver's one-time code (sent to them by the
notification channels) or one of their API keys. wflo deletes the submitted
answer from Prefect's run input as soon as it has read it.
"""

from __future__ import annotations

import json
from typing import Any

from prefect.input import RunInput
from pydantic import Field

from wflo_prefect.approvals.decisions import MAX_UI_PROOF_FAILURES
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = ["ApprovalInput", "approval_form", "render_markdown"]


class ApprovalInput(RunInput):
    """One approver's answer, as submitted through the Prefect UI (or by wflo itself)."""

    approve: bool = Field(default=False, description="Turn on to approve; leave off to reject.")
    approver: str = Field(default="", description="Your approver name.")
    code: str = Field(
        default="", description="Your one-time code (from the notification) or your API key."
    )
    comment: str = Field(default="", description="Why (optional; kept in the audit log).")
    digest: str = Field(default="", description="Digest of what you approve (pre-filled).")


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(request: ApprovalRequestRecord) -> str:
    """The request as markdown: action, details table, approvers, quorum, digest."""
    lines = [f"## Approval needed: {request.action}", ""]
    if request.details:
        lines += ["| detail | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in request.details.items()]
        lines.append("")
    who = ", ".join(map(str, request.approvers)) or "anyone"
    lines.append(f"**Approvers:** {who} · **quorum:** {request.quorum}")
    if request.requested_by:
        lines.append(f"· **requested by:** {request.requested_by}")
    if request.deadline_at:
        lines.append(f"· **deadline:** {request.deadline_at.isoformat(timespec='seconds')}")
    lines += [
        "",
        f"Request `{request.id}` · digest `{request.digest}`",
        "",
        "Fill in your name and your one-time code (or API key), turn **approve** on "
        "to approve or leave it off to reject, then submit.",
    ]
    if request.settings.get("principals"):
        lines += [
            "",
            "Your answer counts only with your own one-time code or API key. After "
            f"{MAX_UI_PROOF_FAILURES} wrong ones, form answers under your name are locked for "
            "this request. A refused answer is explained in this run's logs.",
        ]
    else:
        lines += [
            "",
            "**Open gate: names are not verified.** Anyone who can resume this run may "
            "answer; the name typed is recorded as given.",
        ]
    return "\n".join(lines)


def approval_form(request: ApprovalRequestRecord) -> type[ApprovalInput]:
    """The ``ApprovalInput`` subclass to pause with: description and digest filled in."""
    return ApprovalInput.with_initial_data(
        description=render_markdown(request), digest=request.digest
    )
