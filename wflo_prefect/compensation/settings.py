"""Settings of crash recovery (``PREFECT_INTEGRATIONS_WFLO_RECOVERY_*``)."""

from __future__ import annotations

from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field

__all__ = ["RecoverySettings", "get_recovery_settings"]


class RecoverySettings(PrefectBaseSettings):
    """How a run with outstanding compensations shows it is alive, and when it is not."""

    model_config = build_settings_config(("integrations", "wflo", "recovery"))

    heartbeat_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often a flow run with pending compensations marks itself alive "
        "(ledger rows touched, `wflo.flow-run.heartbeat` Prefect event emitted).",
    )
    stale_after_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A non-final run whose last heartbeat is older than this is taken to be "
        "dead by `wflo compensate sweep`: it is marked Crashed and its compensations run.",
    )
    zombie_after_seconds: float = Field(
        default=90.0,
        ge=10,
        description="The zombie automation marks a run Crashed after this long without a "
        "heartbeat (Prefect's proactive triggers need at least 10 s).",
    )


def get_recovery_settings() -> RecoverySettings:
    """Read the recovery settings now."""
    return RecoverySettings()
