"""Settings of cost governance (``PREFECT_INTEGRATIONS_WFLO_COSTS_*``)."""

from __future__ import annotations

import os
from typing import Literal

from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field

from wflo_prefect.costs.prices import CustomPrice

__all__ = ["CostSettings", "get_cost_settings"]


class CostSettings(PrefectBaseSettings):
    """How calls are priced and budgets are windowed."""

    model_config = build_settings_config(("integrations", "wflo", "costs"))

    timezone: str = Field(
        default="UTC",
        description="IANA time zone in which daily, weekly and monthly budget windows start.",
        examples=["Europe/Berlin"],
    )
    unpriced: Literal["error", "warn"] = Field(
        default="error",
        description=(
            "A call to a model with no known price: `error` refuses it with UnknownModelPrice; "
            "`warn` records it unpriced (cost 0) and logs a warning."
        ),
    )
    custom_prices: list[CustomPrice] = Field(
        default_factory=list,
        description="Custom prices (a JSON list of CustomPrice objects), checked first.",
    )
    chars_per_token: int = Field(
        default=4,
        ge=1,
        description=(
            "Characters per token when estimating a request's input tokens before it is sent "
            "(a cheap approximation; the actual usage is settled afterwards)."
        ),
    )
    reservation_timeout_seconds: int = Field(
        default=3600,
        ge=1,
        description=(
            "A hold older than this is presumed abandoned (its process died) and is given "
            "back when a budget would otherwise refuse a call; a late settle still counts."
        ),
    )
    default_max_output_tokens: int = Field(
        default=4096,
        ge=1,
        description="Output tokens assumed for the worst case when a request sets no maximum.",
    )


_PREFIX = "PREFECT_INTEGRATIONS_WFLO_COSTS_"
_cache: tuple[tuple[tuple[str, str], ...], CostSettings] | None = None


def get_cost_settings() -> CostSettings:
    """The cost settings, re-read whenever a ``PREFECT_INTEGRATIONS_WFLO_COSTS_*`` variable
    changes (they are on the path of every LLM call, so not re-read otherwise)."""
    global _cache
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_PREFIX)))
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = CostSettings()
    _cache = (key, settings)
    return settings
