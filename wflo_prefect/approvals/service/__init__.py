"""The approval service (``wflo approvals serve``): Slack, signed links, REST API."""

from wflo_prefect.approvals.service.app import create_app

__all__ = ["create_app"]
