"""Prices of LLM calls: custom prices first, then genai-prices' data.

Vertex AI calls (provider ``google-vertex``) are priced from wflo's Vertex table
where Vertex's list price differs from the Gemini API's, else from genai-prices'
``google`` (Gemini API) data; see :mod:`wflo_prefect.costs.shipped_prices`.

genai-prices' data is the copy bundled with the package (offline), or with
``PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH`` on, a refreshed copy (see
:mod:`wflo_prefect.costs.price_refresh`).

Money is :class:`~decimal.Decimal` throughout. Prices are per million tokens.
Token counts follow one convention: ``input_tokens`` is every input token of the
call, *including* ``cached_input_tokens`` (which are billed at the cached rate).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any, Literal

from wflo_prefect.costs.custom_price import CustomPrice
from wflo_prefect.costs.errors import UnknownModelPrice
from wflo_prefect.costs.price_refresh import stored_snapshot
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.costs.shipped_prices import shipped_price, vertex_price
from wflo_prefect.costs.usage import MONEY_CONTEXT, check_usage

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

__all__ = [
    "CustomPrice",
    "Price",
    "clear_custom_prices",
    "cost_of",
    "find_price",
    "register_price",
]

_MILLION = Decimal(1_000_000)

#: wflo provider ids genai-prices lists under another id (its ``google`` prices are
#: the Gemini API's; Vertex AI's differences are in wflo's Vertex table).
_GENAI_PROVIDER = {"google-vertex": "google"}


def genai_provider(provider: str) -> str:
    """The genai-prices provider id that prices wflo's ``provider``."""
    return _GENAI_PROVIDER.get(provider.lower(), provider)


@dataclass(frozen=True, slots=True)
class Price:
    """The price that applies to one provider's model, wherever it came from."""

    provider: str
    model: str
    #: ``wflo``: a price wflo ships for a model genai-prices does not list.
    source: Literal["custom", "genai-prices", "wflo", "unpriced"]
    custom: CustomPrice | None = None
    #: The genai-prices data the price comes from (bundled or refreshed); None: the current.
    data: DataSnapshot | None = field(default=None, repr=False, compare=False)

    @property
    def priced(self) -> bool:
        """False when no price is known and the call is recorded unpriced."""
        return self.source != "unpriced"

    @property
    def refreshed_at(self) -> datetime | None:
        """When the refreshed genai-prices data this price comes from was fetched (UTC).

        None for a custom price, or a price from genai-prices' bundled data.
        """
        if self.source != "genai-prices" or self.data is None or not self.data.from_auto_update:
            return None
        return self.data.timestamp.astimezone(UTC)

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        *,
        cache_write_tokens: int = 0,
        details: Mapping[str, int] | None = None,
        service_tier: str | None = None,
        at: datetime | None = None,
    ) -> Decimal:
        """The cost in USD of a call with these token counts.

        ``details``: usage details genai-prices prices (``cache_write_1h_tokens``,
        ``input_audio_tokens``, ``output_audio_tokens``...), each part of its side's
        total; ``service_tier``: OpenAI's tier (``priority``, ``flex``...). Raises
        :class:`~wflo_prefect.errors.InvalidArgumentError` for counts no call can have.
        Computed in :data:`~wflo_prefect.costs.usage.MONEY_CONTEXT`, not the caller's.
        """
        check_usage(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, details)
        with localcontext(MONEY_CONTEXT):
            return +self._cost(
                input_tokens,
                output_tokens,
                cached_input_tokens,
                cache_write_tokens,
                dict(details or {}),
                service_tier,
                at,
            )

    def _cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        cache_write_tokens: int,
        details: dict[str, int],
        service_tier: str | None,
        at: datetime | None,
    ) -> Decimal:
        if self.source == "unpriced":
            return Decimal(0)
        if self.custom is not None:
            c = self.custom
            cached_rate = c.cached_input_per_mtok
            if cached_rate is None:
                cached_rate = c.input_per_mtok
            audio_rate = c.input_audio_per_mtok
            audio = 0  # uncached audio input, billed at the audio rate when one is set
            if audio_rate is not None:
                cached_audio = details.get("cache_audio_read_tokens", 0)
                audio = max(details.get("input_audio_tokens", 0) - cached_audio, 0)
            uncached = input_tokens - cached_input_tokens - audio
            custom_total = (
                max(uncached, 0) * c.input_per_mtok
                + cached_input_tokens * cached_rate
                + audio * (audio_rate or 0)
                + output_tokens * c.output_per_mtok
            )
            return custom_total / _MILLION
        from genai_prices import data_snapshot

        data = self.data or data_snapshot.get_snapshot()
        provider = genai_provider(self.provider)
        tier = None if service_tier in (None, "auto", "default", "standard") else service_tier
        rates = None
        if not details and tier is None:
            _provider, info = data.find_provider_model(self.model, None, provider, None)
            rates = _linear_rates(info.get_prices(at or datetime.now(UTC)))
        if rates is None:
            usage = _usage(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens)
            for key, value in details.items():
                setattr(usage, key, value or None)
            if cached_input_tokens and details.get("input_audio_tokens"):
                # genai-prices needs the cached part of the audio once both are
                # reported; unreported, none of the audio is cached (the dearer case).
                usage.cache_audio_read_tokens = details.get("cache_audio_read_tokens", 0)
            result = data.calc(
                usage,
                self.model,
                provider,
                None,
                at,
                price_context={"service_tier": tier} if tier else None,
            )
            total: Decimal = result.total_price
            return total
        base, per_input, per_output, per_cache_read, per_cache_write = rates
        uncached = input_tokens - cached_input_tokens - cache_write_tokens
        return (
            base
            + uncached * per_input / _MILLION
            + output_tokens * per_output / _MILLION
            + cached_input_tokens * per_cache_read / _MILLION
            + cache_write_tokens * per_cache_write / _MILLION
        )


def _usage(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> Any:
    from genai_prices import Usage

    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read or None,
        cache_write_tokens=cache_write or None,
    )


_Rates = tuple[Decimal, Decimal, Decimal, Decimal, Decimal]
# genai-prices' ModelPrice objects (kept alive here, so their ids stay theirs) -> rates.
_rates: dict[int, tuple[Any, _Rates | None]] = {}


def _linear_rates(model_price: Any) -> _Rates | None:
    """A flat (untiered) genai-prices price as (per request, then USD per million input,
    output, cache-read and cache-write tokens), read off genai-prices' own calculation
    once per price; ``None`` for tiered prices, which are calculated call by call.

    genai-prices' calculation costs ~100 us a call; on the path of every LLM call
    (priced twice: the worst case, then the actual) this makes pricing ~50x cheaper.
    ``tests/unit/test_costs_prices.py`` checks both agree for every bundled model.
    """
    known = _rates.get(id(model_price))
    if known is not None and known[0] is model_price:
        return known[1]
    from genai_prices.types import TieredPrices

    rates: _Rates | None = None
    if not any(isinstance(v, TieredPrices) for v in vars(model_price).values()):
        try:

            def calc(i: int, o: int, r: int, w: int) -> Decimal:
                total: Decimal = model_price.calc_price(_usage(i, o, r, w))["total_price"]
                return total

            base = calc(0, 0, 0, 0)
            m = 1_000_000
            rates = (
                base,
                calc(m, 0, 0, 0) - base,
                calc(0, m, 0, 0) - base,
                calc(m, 0, m, 0) - base,
                calc(m, 0, 0, m) - base,
            )
        except Exception:  # a price genai-prices cannot split this way: calculate per call
            rates = None
    with _lock:
        _rates[id(model_price)] = (model_price, rates)
    return rates


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


def _genai_data(provider: str, model: str, refreshed: DataSnapshot | None) -> DataSnapshot | None:
    """The genai-prices data that prices ``provider``'s ``model``: the refreshed copy when it
    has the model, else the bundled data; None when neither has it."""
    from genai_prices import data_snapshot

    candidates = [refreshed] if refreshed is not None else []
    for data in [*candidates, data_snapshot.get_snapshot()]:
        try:
            data.find_provider_model(model, None, genai_provider(provider), None)
        except LookupError:
            continue
        return data
    return None


def find_price(provider: str, model: str, *, at: datetime | None = None) -> Price:
    """The price of ``provider``'s ``model`` at ``at`` (default now).

    Raises:
        UnknownModelPrice: no price is known and unpriced calls are not allowed
            (``PREFECT_INTEGRATIONS_WFLO_COSTS_UNPRICED=error``, the default).
    """
    moment = at or datetime.now(UTC)
    with _lock:
        registered = list(_custom)
    settings = get_cost_settings()
    for custom in [*registered, *settings.custom_prices]:
        if custom.applies(provider, model, moment):
            return Price(provider, model, "custom", custom)
    vertex = vertex_price(provider, model, moment)
    if vertex is not None:
        return Price(provider, model, "wflo", vertex)
    data = _genai_data(provider, model, stored_snapshot(settings))
    if data is not None:
        return Price(provider, model, "genai-prices", data=data)
    shipped = shipped_price(provider, model, moment)
    if shipped is not None:
        return Price(provider, model, "wflo", shipped)
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
