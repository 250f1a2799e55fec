"""Answers submitted in the Prefect UI form: verified, limited, audited, explained.

The open-source Prefect UI has no user identity, so a form answer proves its
approver with their one-time code (or an API key). Every refused answer is
audited (``approval.refused``) and written to the run's Prefect logs with the
reason and what to do: the person who submitted it sees nothing but the run
pausing again. After :data:`MAX_UI_PROOF_FAILURES` wrong proofs for one approver
on one request, that approver's form answers to it are refused, even with the
right code (``locked_out``), so an 8-digit code has a handful of chances in 10^8
instead of one per second until the deadline. Their other channels (Slack, their
e-mailed link, CLI or REST API with their key) still work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from prefect.logging.loggers import flow_run_logger
from pydantic import ValidationError

from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.decisions import MAX_UI_PROOF_FAILURES, Vote, verify_code
from wflo_prefect.approvals.errors import DecisionRefused
from wflo_prefect.approvals.events import refused
from wflo_prefect.approvals.run_input import ApprovalInput
from wflo_prefect.approvals.settle import settle_vote
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

__all__ = ["CHANNEL", "count_ui_answer"]

CHANNEL = "prefect-ui"
_FORM_HINT = (
    "Resume the run again and fill in the form: approve or reject, your approver name "
    "and your one-time code (from your notification) or API key"
)


def _typed(request: ApprovalRequestRecord, raw: Mapping[str, Any] | None) -> ApprovalInput:
    if raw is None:
        raise DecisionRefused(
            "no_answer",
            "The run was resumed without an approval answer",
            value=request.id,
            hint=_FORM_HINT,
        )
    try:
        return ApprovalInput.model_validate(
            {k: v for k, v in raw.items() if k in ApprovalInput.model_fields}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()
        )
        raise DecisionRefused(
            "no_answer",
            f"The answer is not a complete approval answer ({problems})",
            value=sorted(raw),
            hint=_FORM_HINT,
        ) from None


def _checked_vote(request: ApprovalRequestRecord, raw: Mapping[str, Any] | None) -> Vote:
    """The answer as a vote, once its proof holds; raises DecisionRefused otherwise."""
    answer = _typed(request, raw)
    approver = answer.approver.strip()
    if not approver:
        raise DecisionRefused(
            "missing_approver",
            "The answer has no approver name",
            value=answer.approver,
            hint=_FORM_HINT,
        )
    if request.policy.proven:
        failures = get_ledger().approvals.refusals(
            request, actor=approver[:200], outcome="bad_credentials", channel=CHANNEL
        )
        if failures >= MAX_UI_PROOF_FAILURES:
            raise DecisionRefused(
                "locked_out",
                f"{approver!r} gave a wrong code {failures} times for request {request.id}; "
                "form answers for them are locked for this request",
                value=approver,
                hint="Decide in Slack, with your e-mailed link, or with your API key "
                "(`wflo approvals approve|reject`, or the REST API)",
            )
    try:
        verify_code(request, approver, answer.code)
    except DecisionRefused as exc:
        if exc.reason != "bad_credentials":
            raise
        # verify_code speaks of API keys (CLI words); say what the form asked for.
        raise DecisionRefused(
            "bad_credentials",
            f"The code in the form is not {approver}'s one-time code or API key for this request",
            value=approver,
            hint="Use the code from your own notification (it differs per approver and "
            f"request); after {MAX_UI_PROOF_FAILURES} wrong ones the form is locked for you",
        ) from None
    return Vote(
        approver=approver,
        approved=answer.approved,
        # The form belongs to one pause of this request: the answer is bound to its digest.
        digest=request.digest,
        channel=CHANNEL,
        comment=answer.comment or None,
    )


def count_ui_answer(
    request: ApprovalRequestRecord, answer: Mapping[str, Any] | None, flow_run_id: UUID
) -> tuple[ApprovalRequestRecord, ApprovalDecision | None] | None:
    """Verify and count one form answer; a refusal is audited and logged, never raised.

    Returns the request after the vote and, when it settled it, the decision
    (``None`` when the answer was refused).
    """
    try:
        vote = _checked_vote(request, answer)
    except DecisionRefused as exc:
        name = answer.get("approver") if answer is not None else None
        actor = name.strip() if isinstance(name, str) else None
        refused(request, exc, channel=CHANNEL, actor=actor or None)
        _log_refusal(flow_run_id, exc)
        return None
    try:
        # The run was resumed with this answer: a settling vote also claims the resume.
        return settle_vote(request.id, vote, resume=False, known=request, resumed=True)
    except DecisionRefused as exc:
        _log_refusal(flow_run_id, exc)
        return None


def _log_refusal(flow_run_id: UUID, exc: DecisionRefused) -> None:
    # The run's own Prefect logs: where the person who submitted the form looks.
    flow_run_logger(flow_run_id=flow_run_id).warning(
        "Approval answer not counted (%s): %s The run is paused again for a valid answer.",
        exc.reason,
        exc,
    )
