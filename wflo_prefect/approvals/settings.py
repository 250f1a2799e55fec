"""Settings of approval gates (``PREFECT_INTEGRATIONS_WFLO_APPROVALS_*``)."""

from __future__ import annotations

from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field, SecretStr

__all__ = ["ApprovalSettings", "get_approval_settings"]


class ApprovalSettings(PrefectBaseSettings):
    """How gates wait, and how the approval service signs and verifies links."""

    model_config = build_settings_config(("integrations", "wflo", "approvals"))

    service_url: str = Field(
        default="http://127.0.0.1:8787",
        description="Public base URL of `wflo approvals serve`; e-mailed links point here.",
        examples=["https://approvals.example.com"],
    )
    link_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs e-mailed approve / reject links (HMAC-SHA256). "
        "The gate and the service must share it.",
    )
    link_ttl_seconds: int = Field(
        default=86400, ge=1, description="How long an e-mailed decision link stays valid."
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Slack app signing secret; the service refuses interactivity requests "
        "not signed with it.",
    )
    fallback_poll_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Safety-net poll of the paused run; wake-up normally comes from "
        "Prefect's events within milliseconds.",
    )
    loopback_wake: bool = Field(
        default=True,
        description="Also wake a gate waiting on this host with a datagram to its loopback "
        "port when a decision is recorded here (a shortcut past Prefect's event pipeline). "
        "Off: decisions reach the run only through Prefect's API and events, as they do "
        "from another host; `wflo stack up` turns it off.",
    )
    heartbeat_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often a waiting gate marks itself alive in the ledger; a request "
        "whose waiter is silent for three periods is settled by the service or "
        "`wflo approvals sweep`.",
    )


def get_approval_settings() -> ApprovalSettings:
    """Read the approval settings now."""
    return ApprovalSettings()
