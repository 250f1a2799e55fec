"""Notification channels of approval gates, each a Prefect Block."""

from wflo_prefect.approvals.channels.base import ApprovalChannel, ApprovalMessage, Delivery
from wflo_prefect.approvals.channels.email import EmailApprovalChannel
from wflo_prefect.approvals.channels.pagerduty import PagerDutyApprovalChannel
from wflo_prefect.approvals.channels.slack import SlackApprovalChannel
from wflo_prefect.approvals.channels.webhook import (
    WebhookApprovalChannel,
    sign_webhook,
    verify_webhook_signature,
)

__all__ = [
    "ApprovalChannel",
    "ApprovalMessage",
    "Delivery",
    "EmailApprovalChannel",
    "PagerDutyApprovalChannel",
    "SlackApprovalChannel",
    "WebhookApprovalChannel",
    "sign_webhook",
    "verify_webhook_signature",
]
