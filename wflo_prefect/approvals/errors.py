"""Errors of approval gates.

::

    WfloRuntimeError
    ├── ApprovalRejected      a listed approver said no (control flow, not a code failure)
    ├── ApprovalTimeout       nobody decided before the last deadline
    └── ApprovalGateError     the gate could not pause, resume or settle the run
    WfloUsageError
    └── DecisionRefused       a decision was not accepted (wrong person, digest, replay, expiry)

``ApprovalRejected`` and ``ApprovalTimeout`` are outcomes of a human process:
spans around a gate that ends in one of them are not marked ERROR.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wflo_prefect.errors import WfloRuntimeError, WfloUsageError

if TYPE_CHECKING:
    from wflo_prefect.approvals.decision import ApprovalDecision

__all__ = ["ApprovalGateError", "ApprovalRejected", "ApprovalTimeout", "DecisionRefused"]

DOCS = "approvals.md"


class ApprovalRejected(WfloRuntimeError):
    """An approver rejected the request (or the gate timed out with ``on_timeout="reject"``)."""

    #: An outcome, not a failure of the code: spans around it are not marked ERROR.
    control_flow = True

    def __init__(self, decision: ApprovalDecision) -> None:
        who = ", ".join(decision.approvers) or decision.channel
        comment = "; ".join(c for c in decision.comments.values() if c)
        super().__init__(
            f"Approval of {decision.action!r} was rejected by {who}"
            + (f" ({comment})" if comment else ""),
            value=decision.request_id,
            hint="Change what the run asks for, or ask the approvers, then run again",
            docs=DOCS,
        )
        self.decision = decision


class ApprovalTimeout(WfloRuntimeError):
    """Nobody decided before the gate's last deadline."""

    control_flow = True

    def __init__(self, action: str, request_id: str, waited_s: float) -> None:
        super().__init__(
            f"Nobody decided on {action!r} within {waited_s:.0f} s",
            value=request_id,
            hint="Raise `timeout=`, add `escalation=` tiers, or choose another `on_timeout=`",
            docs=DOCS,
        )
        self.action = action
        self.request_id = request_id


class ApprovalGateError(WfloRuntimeError):
    """The gate could not pause, resume or settle its flow run."""

    def __init__(self, message: str, *, value: Any, hint: str) -> None:
        super().__init__(message, value=value, hint=hint, docs=DOCS)


class DecisionRefused(WfloUsageError):
    """A decision was not accepted; the request and the run are unchanged.

    ``reason`` is one of ``not_pending``, ``expired``, ``digest_mismatch``,
    ``not_an_approver``, ``self_approval``, ``duplicate``, ``replay``,
    ``bad_credentials``, ``unknown_request``.
    """

    def __init__(self, reason: str, message: str, *, value: Any, hint: str) -> None:
        super().__init__(message, value=value, hint=hint, docs=DOCS)
        self.reason = reason
