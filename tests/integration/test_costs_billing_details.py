"""Usage details the providers bill differently, end to end through the official
clients: OpenAI's ``service_tier`` (priority is 1.7x on gpt-4o) and Anthropic's
1-hour cache writes (2x the input rate, 5-minute ones 1.25x). Each is held at its
rate before the call and settled at the rate the response names."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from fakes.anthropic_server import FakeAnthropic
from fakes.billing_openai_server import BillingOpenAI, prompt_tokens

from wflo_prefect import Budget, BudgetExceeded, instrument
from wflo_prefect.costs import flush_leases, use_budgets
from wflo_prefect.costs.prices import find_price
from wflo_prefect.ledger import Ledger

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullets."}]
MILLION = Decimal(1_000_000)


@pytest.fixture
def billing() -> Iterator[BillingOpenAI]:
    with BillingOpenAI() as server:
        yield server  # type: ignore[misc]


def test_openai_priority_tier_is_held_and_settled_at_its_price(
    ledger: Ledger, billing: BillingOpenAI
) -> None:
    """A priority request costs 1.7x a standard one; under a budget of 1.5 standard
    bills the standard call is sent and the priority one refused before the wire."""
    client = instrument(openai.OpenAI(base_url=f"{billing.url}/v1", api_key="sk-t", max_retries=0))
    tokens = prompt_tokens("gpt-4o", MESSAGES)
    standard = find_price("openai", "gpt-4o").cost(tokens, 50)
    priority = find_price("openai", "gpt-4o").cost(tokens, 50, service_tier="priority")
    assert priority == standard * Decimal("1.7")
    messages: Any = MESSAGES
    client.chat.completions.create(
        model="gpt-4o", messages=messages, max_tokens=50, service_tier="priority"
    )
    with use_budgets(Budget(standard * Decimal("1.5"), scope="global", name="tier")):
        client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=50)
        with pytest.raises(BudgetExceeded):
            client.chat.completions.create(
                model="gpt-4o", messages=messages, max_tokens=50, service_tier="priority"
            )
    flush_leases()
    assert len(billing.requests) == 2
    assert [e.cost_usd for e in ledger.costs.entries()] == [priority, standard]


@pytest.mark.parametrize(("ttl", "write_rate"), [("1h", "6"), ("5m", "3.75")])
def test_anthropic_cache_writes_are_billed_at_their_lifetimes_rate(
    ledger: Ledger, ttl: str, write_rate: str
) -> None:
    """claude-sonnet-4-5: input $3, 5-minute writes $3.75, 1-hour writes $6, output
    $15 per million; the hold (all input as writes at the asked lifetime) covers it."""
    with FakeAnthropic() as server:
        server.cache_write_tokens = 10_000
        client = instrument(anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0))
        system: Any = [
            {
                "type": "text",
                "text": "You are a careful analyst. " * 2_000,
                "cache_control": {"type": "ephemeral", "ttl": ttl},
            }
        ]
        reply = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=50, system=system, messages=MESSAGES
        )
    usage = reply.usage
    assert usage.cache_creation_input_tokens == 10_000
    expected = (
        usage.input_tokens * Decimal(3)
        + 10_000 * Decimal(write_rate)
        + usage.output_tokens * Decimal(15)
    ) / MILLION
    [entry] = ledger.costs.entries()
    assert entry.cost_usd == expected


def test_openai_audio_in_and_out_is_held_and_settled_at_the_audio_rates(
    ledger: Ledger, billing: BillingOpenAI
) -> None:
    """gpt-audio: $2.5 / $10 text, $32 / $64 audio per million. An inline audio input
    and an audio answer are priced at the audio rates; under a budget of 1.5 bills
    the second call is refused (a hold at text rates would let it through)."""
    client = instrument(openai.OpenAI(base_url=f"{billing.url}/v1", api_key="sk-t", max_retries=0))
    wav = base64.b64encode(b"\x01" * 30_000).decode()
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Transcribe and answer."},
                {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
            ],
        }
    ]
    audio_in = 30_000 // 100  # the fake bills one token per 100 bytes
    text_in = prompt_tokens("gpt-audio", messages)
    bill = (text_in * Decimal("2.5") + audio_in * 32 + 50 * 64) / MILLION
    options: Any = {"voice": "alloy", "format": "wav"}
    with use_budgets(Budget(bill * Decimal("1.5"), scope="global", name="audio")):
        client.chat.completions.create(
            model="gpt-audio",
            messages=messages,
            max_tokens=50,
            modalities=["text", "audio"],
            audio=options,
        )
        with pytest.raises(BudgetExceeded):
            client.chat.completions.create(
                model="gpt-audio",
                messages=messages,
                max_tokens=50,
                modalities=["text", "audio"],
                audio=options,
            )
    flush_leases()
    assert len(billing.requests) == 1
    [entry] = ledger.costs.entries()
    assert (entry.input_tokens, entry.output_tokens) == (text_in + audio_in, 50)
    assert entry.cost_usd == bill
