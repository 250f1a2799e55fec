"""What Prefect loads through the ``prefect.collections`` entry point.

Importing this module defines wflo's block types (so Prefect's block registry and
``prefect block register -m wflo_prefect._collection`` know them) and registers the
``docker-sandbox`` worker type. The package itself imports its public names lazily.
"""

from __future__ import annotations

from wflo_prefect.approvals.channels import (
    EmailApprovalChannel,
    PagerDutyApprovalChannel,
    SlackApprovalChannel,
    WebhookApprovalChannel,
)
from wflo_prefect.approvals.principals import Approvers
from wflo_prefect.costs.blocks import WfloBudget, WfloCentralBudget, WfloCustomPrice
from wflo_prefect.policies.blocks import WfloPolicySet
from wflo_prefect.sandbox.worker import DockerSandboxWorker

__all__ = [
    "Approvers",
    "DockerSandboxWorker",
    "EmailApprovalChannel",
    "PagerDutyApprovalChannel",
    "SlackApprovalChannel",
    "WebhookApprovalChannel",
    "WfloBudget",
    "WfloCentralBudget",
    "WfloCustomPrice",
    "WfloPolicySet",
]
