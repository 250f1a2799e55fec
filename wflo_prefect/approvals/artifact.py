"""The request as a Prefect markdown artifact on its run: pending, then the outcome.

While a run waits, its Artifacts tab (and the Artifacts page, under the key
``wflo-approval-<request id>``) shows what is asked, from whom, until when, the
digest, and every way to answer. When the request is settled, the same artifact
is updated in place (Prefect's ``update_artifact``) with who decided, when,
through which channel and what they said. Artifacts are a view for people: a
failure to write one is logged, never raised.
"""

from __future__ import annotations

from uuid import UUID

from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from wflo_prefect._prefect_client import prefect_client
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.run_input import render_details, ways_to_answer
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.observability.logging import get_logger

__all__ = ["artifact_key", "outcome_markdown", "pending_markdown", "publish"]

_log = get_logger("approvals")


def artifact_key(request: ApprovalRequestRecord) -> str:
    """The artifact's key (Prefect keys: lowercase letters, digits and dashes)."""
    return f"wflo-approval-{request.id}".lower()


def pending_markdown(request: ApprovalRequestRecord) -> str:
    """The waiting request: what, who, until when, the digest, and how to answer."""
    return "\n".join(
        [
            f"## Waiting for approval: {request.action}",
            "",
            *render_details(request),
            "",
            "### How to answer",
            "",
            *ways_to_answer(request),
        ]
    )


def outcome_markdown(request: ApprovalRequestRecord, decision: ApprovalDecision) -> str:
    """The settled request: the outcome (who, when, channel, comments) above what was asked."""
    title = {
        "approved": "Approved",
        "rejected": "Rejected",
        "timed_out": "Timed out",
        "expired": "Expired",
    }.get(decision.status, decision.status)
    when = decision.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    who = ", ".join(decision.approvers) or "nobody (deadline)"
    lines = [
        f"## {title}: {request.action}",
        "",
        "| outcome | |",
        "|---|---|",
        f"| run | {'continues' if decision.approved else 'stops'} |",
        f"| decided by | {who} |",
        f"| when | {when} |",
        f"| channel | {decision.channel} |",
    ]
    for name, comment in decision.comments.items():
        lines.append(f"| comment by {name} | {comment.replace('|', '/')} |")
    return "\n".join([*lines, "", "### What was asked", "", *render_details(request)])


# Artifact ids this process created or found, by key: the outcome updates the pending
# artifact without searching for it first (one API call on the gate's path, not two).
_ids: dict[str, UUID] = {}


def publish(request: ApprovalRequestRecord, decision: ApprovalDecision | None = None) -> None:
    """Create or update the request's artifact on its run (pending, or the outcome)."""
    if not request.flow_run_id:
        return
    key = artifact_key(request)
    if decision is None:
        markdown = pending_markdown(request)
    else:
        markdown = outcome_markdown(request, decision)
    description = f"Approval request {request.id}: {request.action}"
    try:
        with prefect_client() as client:
            known = _ids.get(key)
            if known is None:
                existing = client.read_artifacts(
                    artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
                )
                known = existing[0].id if existing else None
            if known is not None:
                client.update_artifact(
                    known, ArtifactUpdate(data=markdown, description=description)
                )
                _ids[key] = known
                return
            created = client.create_artifact(
                ArtifactCreate(
                    key=key,
                    type="markdown",
                    data=markdown,
                    description=description,
                    flow_run_id=request.flow_run_id,
                    task_run_id=request.task_run_id,
                )
            )
            _ids[key] = created.id
    except Exception as exc:  # a view for people; the ledger is the record
        _log.warning("approval.artifact_failed", request_id=request.id, error=str(exc))
