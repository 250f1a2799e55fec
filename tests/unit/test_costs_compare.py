"""compare_costs: the same usage priced on a curated class of comparable models."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from wflo_prefect.costs.compare import COMPARABLE_CLASSES, Usage, class_of, compare_costs
from wflo_prefect.costs.prices import find_price
from wflo_prefect.errors import InvalidArgumentError


def test_every_comparable_model_has_a_price_and_its_class() -> None:
    """Each model of the table is priced offline (bundled or shipped) and found in its class."""
    for name, models in COMPARABLE_CLASSES.items():
        assert len(models) >= 5, name
        for provider, model in models:
            assert find_price(provider, model).source in ("genai-prices", "wflo"), model
            assert class_of(provider, model) in COMPARABLE_CLASSES


def test_usage_is_priced_on_the_class_cheapest_first() -> None:
    """Every flagship is priced on the same usage, sorted by cost, the caller's model once;
    figures agree with genai-prices' own calculation (cached tokens at the cache rate)."""
    result = compare_costs("openai", "gpt-4o", [Usage(10_000, 2_000, 4_000)])
    assert result.comparable_class == "flagship"
    costs = [r.cost_usd for r in result.rows]
    assert costs == sorted(costs)
    assert [r.model for r in result.rows if r.yours] == ["gpt-4o"]
    assert len(result.rows) == len(COMPARABLE_CLASSES["flagship"])
    by_model = {(r.provider, r.model): r.cost_usd for r in result.rows}
    usage = GenaiUsage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=4_000)
    for provider, model in (("google", "gemini-2.5-pro"), ("anthropic", "claude-sonnet-4-5")):
        expected = calc_price(usage, model, provider_id=provider).total_price
        assert by_model[(provider, model)] == expected
    # gemini-2.5-pro by hand: 6k at $1.25, 4k cached at $0.125, 2k out at $10 per million.
    assert by_model[("google", "gemini-2.5-pro")] == Decimal("0.028")


def test_a_runs_calls_are_priced_one_by_one() -> None:
    """Several calls are priced call by call (tiers apply per call), then summed."""
    calls = [Usage(150_000, 1_000), Usage(150_000, 1_000)]
    result = compare_costs(None, "google/gemini-2.5-pro", calls, comparable_class="flagship")
    mine = next(r for r in result.rows if r.yours)
    one = find_price("google", "gemini-2.5-pro").cost(150_000, 1_000)
    assert mine.cost_usd == 2 * one
    assert mine.cost_usd < find_price("google", "gemini-2.5-pro").cost(300_000, 2_000)
    assert (result.calls, result.input_tokens) == (2, 300_000)


def test_dated_and_bare_names_resolve() -> None:
    """A dated alias belongs to its model's class; a bare name finds its provider."""
    dated = compare_costs(None, "gpt-4o-2024-08-06", [Usage(1000, 100)])
    assert (dated.provider, dated.comparable_class) == ("openai", "flagship")
    assert [r.model for r in dated.rows].count("gpt-4o") == 0  # listed once, as given
    embed = compare_costs(None, "embed-english-v3.0", [Usage(1_000_000)])
    assert (embed.provider, embed.comparable_class) == ("cohere", "embedding")
    mine = next(r for r in embed.rows if r.yours)
    assert (mine.cost_usd, mine.source) == (Decimal("0.1"), "wflo")


@pytest.mark.parametrize(
    ("provider", "model", "usage", "klass", "message"),
    [
        ("openai", "gpt-9o", Usage(10), None, "no price is known"),
        (None, "nonsense-model", Usage(10), None, "no provider prices it"),
        ("openai", "gpt-3.5-turbo", Usage(10), None, "in no comparable class"),
        ("openai", "gpt-4o", Usage(10), "huge", "Unknown comparable class"),
        ("openai", "gpt-4o", Usage(10, 0, 20), None, "cannot exceed"),
    ],
)
def test_bad_input_is_refused(
    provider: str | None, model: str, usage: Usage, klass: str | None, message: str
) -> None:
    """Unknown models and classes, and usage no call can have, raise InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match=message):
        compare_costs(provider, model, [usage], comparable_class=klass)
