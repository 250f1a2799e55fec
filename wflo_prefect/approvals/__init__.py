"""Approval gates: pause a run for people to decide, reach them, resume fast, audit all.

``require_approval(...)`` in a flow or task, or ``approval=ApprovalPolicy(...)``
on a governed flow or task. See docs/approvals.md.
"""

from wflo_prefect.approvals.async_gate import arequire_approval
from wflo_prefect.approvals.channels import (
    EmailApprovalChannel,
    PagerDutyApprovalChannel,
    SlackApprovalChannel,
    WebhookApprovalChannel,
    verify_webhook_signature,
)
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.decisions import Vote
from wflo_prefect.approvals.errors import (
    ApprovalGateError,
    ApprovalRejected,
    ApprovalTimeout,
    DecisionRefused,
)
from wflo_prefect.approvals.gate import require_approval
from wflo_prefect.approvals.guard import ApprovalGuard
from wflo_prefect.approvals.policy import ApprovalPolicy, EscalationTier
from wflo_prefect.approvals.principals import Approvers, Principal, hash_api_key
from wflo_prefect.approvals.run_input import ApprovalInput
from wflo_prefect.approvals.settle import decide, sweep
from wflo_prefect.governance import register_guard

register_guard(ApprovalGuard())

__all__ = [
    "ApprovalDecision",
    "ApprovalGateError",
    "ApprovalInput",
    "ApprovalPolicy",
    "ApprovalRejected",
    "ApprovalTimeout",
    "Approvers",
    "DecisionRefused",
    "EmailApprovalChannel",
    "EscalationTier",
    "PagerDutyApprovalChannel",
    "Principal",
    "SlackApprovalChannel",
    "Vote",
    "WebhookApprovalChannel",
    "arequire_approval",
    "decide",
    "hash_api_key",
    "require_approval",
    "sweep",
    "verify_webhook_signature",
]
