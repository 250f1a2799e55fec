"""Prices of LLM calls: custom prices first, then genai-prices' bundled data (offline).

Money is :class:`~decimal.Decimal` throughout. Prices are per million tokens.
Token counts follow one convention: ``input_tokens`` is every input token of the
call, *including* ``cached_input_tokens`` (which are billed at the cached rate).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wflo_prefect.costs.errors import UnknownModelPrice

__all__ = [
    "CustomPrice",
    "Price",
    "clear_custom_prices",
    "cost_of",
    "find_price",
    "register_price",
]

_MILLION = Decimal(1_000_000)


class CustomPrice(BaseModel):
    """A price you set for a provider's model (per million tokens, USD)."""

    model_config = ConfigDict(frozen=True)

    provider: str = Field(description="Provider id, e.g. `openai`.", examples=["openai"])
    model: str = Field(description="Model name as the API reports it.", examples=["my-ft-model"])
    input_per_mtok: Decimal = Field(ge=0, description="USD per million input tokens.")
    output_per_mtok: Decimal = Field(ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="USD per million cached input tokens (default: input)."
    )
    effective_from: datetime | None = Field(
        default=None, description="First moment the price applies (inclusive); empty: always."
    )
    effective_to: datetime | None = Field(
        default=None, description="Moment the price stops applying (exclusive); empty: never."
    )

    @field_validator("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", mode="before")
    @classmethod
    def _exact_decimal(cls, value: Any) -> Any:
        # float -> Decimal through its shortest repr, never its binary expansion.
        return Decimal(repr(value)) if isinstance(value, float) else value

    def applies(self, provider: str, model: str, at: datetime) -> bool:
        """Whether this price is the one for ``provider``/``model`` at ``at``."""
        if self.provider.lower() != provider.lower() or self.model.lower() != model.lower():
            return False
        if self.effective_from is not None and at < _aware(self.effective_from):
            return False
        return not (self.effective_to is not None and at >= _aware(self.effective_to))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Price:
    """The price that applies to one provider's model, wherever it came from."""

    provider: str
    model: str
    source: Literal["custom", "genai-prices", "unpriced"]
    custom: CustomPrice | None = None

    @property
    def priced(self) -> bool:
        """False when no price is known and the call is recorded unpriced."""
        return self.source != "unpriced"

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        *,
        cache_write_tokens: int = 0,
        at: datetime | None = None,
    ) -> Decimal:
        """The cost in USD of a call with these token counts."""
        if self.source == "unpriced":
            return Decimal(0)
        if self.custom is not None:
            c = self.custom
            cached_rate = c.cached_input_per_mtok
            if cached_rate is None:
                cached_rate = c.input_per_mtok
            uncached = max(input_tokens - cached_input_tokens, 0)
            custom_total = (
                uncached * c.input_per_mtok
                + cached_input_tokens * cached_rate
                + output_tokens * c.output_per_mtok
            )
            return custom_total / _MILLION
        from genai_prices import Usage, calc_price

        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cached_input_tokens or None,
            cache_write_tokens=cache_write_tokens or None,
        )
        result = calc_price(
            usage, self.model, provider_id=self.provider, genai_request_timestamp=at
        )
        total: Decimal = result.total_price
        return total


_custom: list[CustomPrice] = []
_lock = threading.Lock()


def register_price(price: CustomPrice) -> None:
    """Use ``price`` in this process (checked before settings and genai-prices)."""
    with _lock:
        _custom.insert(0, price)


def clear_custom_prices() -> None:
    """Forget the prices registered with :func:`register_price`."""
    with _lock:
        _custom.clear()


def _genai_has(provider: str, model: str) -> bool:
    from genai_prices import data_snapshot

    try:
        data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return False
    return True


def find_price(provider: str, model: str, *, at: datetime | None = None) -> Price:
    """The price of ``provider``'s ``model`` at ``at`` (default now).

    Raises:
        UnknownModelPrice: no price is known and unpriced calls are not allowed
            (``PREFECT_INTEGRATIONS_WFLO_COSTS_UNPRICED=error``, the default).
    """
    from wflo_prefect.costs.settings import get_cost_settings

    moment = at or datetime.now(UTC)
    with _lock:
        registered = list(_custom)
    settings = get_cost_settings()
    for custom in [*registered, *settings.custom_prices]:
        if custom.applies(provider, model, moment):
            return Price(provider, model, "custom", custom)
    if _genai_has(provider, model):
        return Price(provider, model, "genai-prices")
    if settings.unpriced == "warn":
        from wflo_prefect.observability.logging import get_logger

        get_logger("costs").warning(
            "costs.unpriced_model",
            provider=provider,
            model=model,
            hint="recorded with cost 0; add a custom price to price it",
        )
        return Price(provider, model, "unpriced")
    raise UnknownModelPrice(provider, model)


def cost_of(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    *,
    at: datetime | None = None,
) -> Decimal:
    """The cost in USD of one call (raises :class:`UnknownModelPrice` when unpriced)."""
    return find_price(provider, model, at=at).cost(
        input_tokens, output_tokens, cached_input_tokens, at=at
    )
