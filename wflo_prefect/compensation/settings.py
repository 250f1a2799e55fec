"""Settings of crash recovery and snapshots (``PREFECT_INTEGRATIONS_WFLO_RECOVERY_*``)."""

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
    snapshot_inline_bytes: int = Field(
        default=65536,
        ge=0,
        description="Snapshot data larger than this (as JSON) is stored in Prefect result "
        "storage; the ledger keeps a reference.",
    )
    snapshot_keep: int | None = Field(
        default=None,
        ge=1,
        description="Retention: keep at most this many snapshots of each name (newest); "
        "older ones are deleted when a snapshot is taken. None keeps all.",
    )
    snapshot_max_age_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Retention: delete snapshots older than this when a snapshot is taken. "
        "None keeps them.",
    )


def get_recovery_settings() -> RecoverySettings:
    """Read the recovery settings now."""
    return RecoverySettings()
