"""Usage and prices are validated; arithmetic is the ledger's, not the caller's; usage
details (1-hour cache writes, audio, service tier) are priced as the provider bills them."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from wflo_prefect.costs import CustomPrice, clear_custom_prices, estimate_cost, register_price
from wflo_prefect.costs.clients._providers import Endpoint
from wflo_prefect.costs.prices import find_price
from wflo_prefect.costs.usage import MAX_TOKENS, check_usage
from wflo_prefect.errors import InvalidArgumentError, WfloError


@pytest.fixture
def custom() -> object:
    register_price(
        CustomPrice(
            provider="acme", model="m1", input_per_mtok=Decimal(1), output_per_mtok=Decimal(2)
        )
    )
    yield
    clear_custom_prices()


def test_a_negative_count_is_refused_not_priced_negative() -> None:
    """Price.cost(1000, -10**6) was -$9.9975."""
    with pytest.raises(InvalidArgumentError, match="output_tokens"):
        find_price("openai", "gpt-4o").cost(1000, -(10**6))


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o"), ("google", "gemini-2.5-pro"), ("acme", "m1")]
)
def test_cached_above_input_is_one_error_for_every_kind_of_price(
    custom: object, provider: str, model: str
) -> None:
    """Was -$0.001 on gpt-4o, a ValueError on a tiered model, clamped on a custom price."""
    with pytest.raises(InvalidArgumentError, match="cached_input_tokens") as info:
        estimate_cost(provider, model, input_tokens=100, cached_input_tokens=5000)
    assert isinstance(info.value, WfloError)
    with pytest.raises(InvalidArgumentError, match="cached_input_tokens"):
        find_price(provider, model).cost(100, 0, 5000)


def test_absurd_counts_are_refused_before_they_reach_the_ledger() -> None:
    """10**20 tokens raised SQLite's OverflowError on insert."""
    with pytest.raises(InvalidArgumentError, match="more tokens than any call"):
        find_price("openai", "gpt-4o").cost(10**20, 0)
    assert find_price("openai", "gpt-4o").cost(MAX_TOKENS, 0) > 0
    for bad in (1.5, True, "10", None):
        with pytest.raises(InvalidArgumentError):
            check_usage(bad, 0)


def test_usage_details_must_fit_their_side() -> None:
    with pytest.raises(InvalidArgumentError, match="cache_write_1h_tokens"):
        check_usage(1000, 0, cache_write_tokens=10, details={"cache_write_1h_tokens": 20})
    with pytest.raises(InvalidArgumentError, match="output_audio_tokens"):
        check_usage(1000, 10, details={"output_audio_tokens": 20})
    with pytest.raises(InvalidArgumentError, match="Unknown usage detail"):
        check_usage(1000, 10, details={"input_smell_tokens": 1})


def test_the_callers_decimal_context_does_not_change_a_cost(custom: object) -> None:
    """localcontext(prec=3) in user code truncated costs."""
    cases = [
        ("openai", "gpt-4o", 123_457, 7_891),
        ("google", "gemini-2.5-pro", 250_001, 1_234),
        ("acme", "m1", 123_457, 7_891),
    ]
    expected = [find_price(p, m).cost(i, o) for p, m, i, o in cases]
    with localcontext() as ctx:
        ctx.prec = 3
        assert [find_price(p, m).cost(i, o) for p, m, i, o in cases] == expected
    assert expected[0] == Decimal("0.3875525")


def test_anthropic_one_hour_cache_writes_are_billed_at_their_rate() -> None:
    """Were billed at the 5-minute rate (-25% on a $3 / $3.75 / $6 model)."""
    response = {
        "model": "claude-sonnet-4-5",
        "usage": {
            "input_tokens": 100,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 10_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 10_000},
            "output_tokens": 0,
        },
    }
    usage = Endpoint("anthropic", "messages").usage_of(response)
    assert usage is not None
    assert usage.details == {"cache_write_1h_tokens": 10_000}
    price = find_price("anthropic", "claude-sonnet-4-5")
    cost = price.cost(
        usage.input_tokens, 0, cache_write_tokens=usage.cache_write_tokens, details=usage.details
    )
    assert cost == Decimal(100 * 3 + 10_000 * 6) / 1_000_000
    five_minutes = price.cost(usage.input_tokens, 0, cache_write_tokens=usage.cache_write_tokens)
    assert five_minutes == Decimal(100 * 3 + 10_000 * Decimal("3.75")) / 1_000_000


def test_openai_service_tier_and_audio_are_read_and_priced() -> None:
    response = {
        "model": "gpt-audio",
        "service_tier": "priority",
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 800},
            "completion_tokens_details": {"audio_tokens": 400},
        },
    }
    usage = Endpoint("openai", "chat").usage_of(response)
    assert usage is not None
    assert usage.service_tier == "priority"
    assert usage.details == {"input_audio_tokens": 800, "output_audio_tokens": 400}
    audio = find_price("openai", "gpt-audio")
    # $2.5 / $10 text, $32 / $64 audio per million.
    expected = (200 * Decimal("2.5") + 800 * 32 + 100 * 10 + 400 * 64) / 1_000_000
    assert audio.cost(1000, 500, details=usage.details) == expected
    gpt4o = find_price("openai", "gpt-4o")
    assert gpt4o.cost(1000, 100, service_tier="priority") == gpt4o.cost(1000, 100) * Decimal("1.7")
    assert gpt4o.cost(1000, 100, service_tier="auto") == gpt4o.cost(1000, 100)


def test_a_priority_request_is_held_at_the_priority_price() -> None:
    estimate = Endpoint("openai", "chat").estimate(
        {"model": "gpt-4o", "messages": [], "max_tokens": 10, "service_tier": "priority"}, 4096
    )
    assert estimate.service_tier == "priority"
    audio = Endpoint("openai", "chat").estimate(
        {"model": "gpt-audio", "messages": [], "max_tokens": 10, "modalities": ["text", "audio"]},
        4096,
    )
    assert audio.details == {"output_audio_tokens": 10}


def test_an_anthropic_request_that_caches_is_held_at_the_cache_write_rate() -> None:
    """Cache writes cost 1.25x (5 minutes) or 2x (1 hour) the input rate; the hold covers it."""
    system = [
        {"type": "text", "text": "x " * 2000, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    body = {"model": "claude-sonnet-4-5", "system": system, "messages": [], "max_tokens": 10}
    estimate = Endpoint("anthropic", "messages").estimate(body, 4096)
    assert estimate.cache_write_tokens == estimate.input_tokens > 2000
    assert estimate.details == {"cache_write_1h_tokens": estimate.input_tokens}
    price = find_price("anthropic", "claude-sonnet-4-5")
    hold = price.cost(
        estimate.input_tokens,
        10,
        cache_write_tokens=estimate.cache_write_tokens,
        details=estimate.details,
    )
    assert (
        hold == price.cost(estimate.input_tokens, 10) + estimate.input_tokens * Decimal(3) / 10**6
    )
    plain = {**body, "system": [{"type": "text", "text": "x " * 2000}]}
    assert Endpoint("anthropic", "messages").estimate(plain, 4096).cache_write_tokens == 0


def test_cohere_embedding_models_are_priced() -> None:
    """genai-prices has no Cohere embed model; wflo ships their prices (was UnknownModelPrice)."""
    price = find_price("cohere", "embed-english-v3.0")
    assert (price.source, price.priced) == ("wflo", True)
    assert price.cost(1_000_000, 0) == Decimal("0.10")
    assert find_price("cohere", "embed-v4.0").cost(1_000_000, 0) == Decimal("0.12")
