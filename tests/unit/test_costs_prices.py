"""Prices: genai-prices' bundled data offline, custom prices, unknown models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from wflo_prefect import CustomPrice, UnknownModelPrice, WfloUsageError, estimate_cost
from wflo_prefect.costs import clear_custom_prices, find_price, register_price


@pytest.fixture(autouse=True)
def _no_custom_prices() -> None:
    clear_custom_prices()


def test_known_model_is_priced_from_bundled_data_as_decimal() -> None:
    """gpt-4o-mini is priced offline from genai-prices: $0.15 in / $0.60 out per million."""
    price = find_price("openai", "gpt-4o-mini")
    assert price.source == "genai-prices"
    cost = price.cost(1_000_000, 1_000_000)
    assert isinstance(cost, Decimal)
    assert cost == Decimal("0.75")


def test_cached_input_tokens_are_billed_at_the_cached_rate() -> None:
    """Cached input (part of input_tokens) costs the cached rate, the rest the input rate."""
    full = estimate_cost("openai", "gpt-4o-mini", input_tokens=1_000_000)
    half_cached = estimate_cost(
        "openai", "gpt-4o-mini", input_tokens=1_000_000, cached_input_tokens=500_000
    )
    assert full == Decimal("0.15")
    assert half_cached == Decimal("0.075") + Decimal("0.0375")


def test_custom_price_is_used_first_and_computed_exactly() -> None:
    """A registered custom price wins over genai-prices and is exact Decimal arithmetic."""
    register_price(
        CustomPrice(
            provider="openai",
            model="gpt-4o-mini",
            input_per_mtok=Decimal("2.50"),
            output_per_mtok=Decimal("10"),
            cached_input_per_mtok=Decimal("1.25"),
        )
    )
    cost = estimate_cost(
        "openai", "gpt-4o-mini", input_tokens=1000, output_tokens=500, cached_input_tokens=200
    )
    assert cost == Decimal("0.00725")  # 800*2.5 + 200*1.25 + 500*10, per million


def test_custom_price_applies_only_within_its_effective_dates() -> None:
    """effective_from / effective_to bound when a custom price applies."""
    register_price(
        CustomPrice(
            provider="acme",
            model="m1",
            input_per_mtok=1,
            output_per_mtok=2,
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
            effective_to=datetime(2026, 2, 1, tzinfo=UTC),
        )
    )
    assert find_price("acme", "m1", at=datetime(2026, 1, 15, tzinfo=UTC)).source == "custom"
    with pytest.raises(UnknownModelPrice):
        find_price("acme", "m1", at=datetime(2026, 2, 1, tzinfo=UTC))


def test_float_prices_become_their_decimal_repr() -> None:
    """0.1 given as a float is Decimal('0.1'), not its binary expansion."""
    assert CustomPrice(
        provider="p", model="m", input_per_mtok=0.1, output_per_mtok=0.2
    ).input_per_mtok == Decimal("0.1")


def test_unknown_model_names_provider_model_and_how_to_add_a_price() -> None:
    """An unknown model is a usage error naming provider and model and the fix."""
    with pytest.raises(UnknownModelPrice) as info:
        find_price("openai", "gpt-nonexistent-9")
    error = info.value
    assert isinstance(error, WfloUsageError)
    assert "gpt-nonexistent-9" in str(error)
    assert "'openai'" in str(error)
    assert "CustomPrice" in str(error)
    assert "WfloCustomPrice" in str(error)


def test_unpriced_models_can_be_recorded_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """With COSTS_UNPRICED=warn an unknown model is priced at 0 and flagged unpriced."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_COSTS_UNPRICED", "warn")
    price = find_price("acme", "mystery")
    assert not price.priced
    assert price.cost(1000, 1000) == Decimal(0)


def test_custom_prices_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Custom prices can come from PREFECT_INTEGRATIONS_WFLO_COSTS_CUSTOM_PRICES (JSON)."""
    prices = [{"provider": "acme", "model": "m2", "input_per_mtok": "3", "output_per_mtok": "4"}]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_COSTS_CUSTOM_PRICES", json.dumps(prices))
    assert estimate_cost("acme", "m2", input_tokens=1_000_000, output_tokens=1_000_000) == 7


def test_flat_prices_match_genai_prices_own_calculation_for_every_bundled_model() -> None:
    """The per-token rates read off genai-prices once give its exact result, for every model."""
    import random
    from datetime import UTC, datetime

    from genai_prices import data_snapshot

    from wflo_prefect.costs.prices import _linear_rates, _usage

    rng = random.Random(7)
    compared = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            price = model.get_prices(datetime.now(UTC))
            rates = _linear_rates(price)
            if rates is None:
                continue  # tiered: calculated by genai-prices call by call
            base, per_input, per_output, per_read, per_write = rates
            for _ in range(2):
                i, o = rng.randint(0, 300_000), rng.randint(0, 50_000)
                r = rng.randint(0, i)
                w = rng.randint(0, i - r)
                try:
                    expected = price.calc_price(_usage(i, o, r, w))["total_price"]
                except Exception:  # noqa: S112 - a usage genai-prices refuses for this model
                    continue
                million = 1_000_000
                got = (
                    base
                    + (i - r - w) * per_input / million
                    + o * per_output / million
                    + r * per_read / million
                    + w * per_write / million
                )
                assert got == expected, f"{provider.id}/{model.id} {i=} {o=} {r=} {w=}"
                compared += 1
    assert compared > 1000
