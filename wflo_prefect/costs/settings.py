"""Settings of cost governance (``PREFECT_INTEGRATIONS_WFLO_COSTS_*``)."""

from __future__ import annotations

import os
from typing import Literal

from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field

from wflo_prefect.costs.custom_price import CustomPrice

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
            "Deprecated and ignored: a request's input is counted with a tokenizer before it "
            "is sent (docs/costs.md, 'The hold guarantee'). Kept so existing settings load."
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
    budget_lease_seconds: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Budget leases: each process holds a slice of a budget and holds calls on it in "
            "memory, syncing with the ledger at least this often (idle leases are given back "
            "after this long). 0 holds every call on the budget's ledger row instead "
            "(slower, and the budget's spend is exact at every moment)."
        ),
    )
    default_max_output_tokens: int = Field(
        default=4096,
        ge=1,
        description=(
            "Output tokens assumed for the worst case when a request sets no maximum and "
            "the model's own output limit is not known."
        ),
    )
    central_budgets: bool = Field(
        default=True,
        description=(
            "Governed flow runs read the saved `wflo Central Budget` blocks when they start "
            "(one API read per run) and are held to those that match them. Off: only the "
            "budgets in the flows' code apply."
        ),
    )
    price_refresh: bool = Field(
        default=False,
        description=(
            "Price calls from a refreshed copy of genai-prices' data stored under the Prefect "
            "home (`wflo costs prices refresh`), refreshed in the background when missing or "
            "stale. Off: nothing is ever fetched and genai-prices' bundled data is used."
        ),
    )
    price_refresh_url: str | None = Field(
        default=None,
        description=(
            "Where the refresh downloads genai-prices' data (a JSON list of providers); "
            "empty: genai-prices' own source (`genai_prices.update_prices.DEFAULT_UPDATE_URL`)."
        ),
    )
    price_refresh_max_age_hours: float = Field(
        default=24,
        gt=0,
        description=(
            "With `price_refresh` on, a stored copy older than this is refreshed in a "
            "background thread (the calls meanwhile use the data at hand)."
        ),
    )


_PREFIX = "PREFECT_INTEGRATIONS_WFLO_COSTS_"
_NAMES = tuple(_PREFIX + name.upper() for name in CostSettings.model_fields)
_cache: tuple[tuple[str | None, ...], CostSettings] | None = None


def get_cost_settings() -> CostSettings:
    """The cost settings, re-read whenever one of their ``PREFECT_INTEGRATIONS_WFLO_COSTS_*``
    variables changes (they are on the path of every LLM call, so not re-read otherwise)."""
    global _cache
    environ = os.environ
    key = tuple(environ.get(name) for name in _NAMES)
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = CostSettings()
    _cache = (key, settings)
    return settings
