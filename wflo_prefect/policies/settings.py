"""Settings of the policy engine (``PREFECT_INTEGRATIONS_WFLO_POLICIES_*``)."""

from __future__ import annotations

from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field

__all__ = ["PolicySettings", "get_policy_settings"]


class PolicySettings(PrefectBaseSettings):
    """How often the watchdog evaluates time-based policies during a run."""

    model_config = build_settings_config(("integrations", "wflo", "policies"))

    watchdog_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between two evaluations of the time-based policies "
        "(`run_time`, `execution_time`) of a running governed flow.",
    )


def get_policy_settings() -> PolicySettings:
    """Read the policy settings now."""
    return PolicySettings()
