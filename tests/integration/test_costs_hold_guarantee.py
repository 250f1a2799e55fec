"""A halting budget is never overrun: the hold is an upper bound of what the provider bills.

The provider is :class:`BillingOpenAI`: it bills prompts with the model's real
vocabulary and every answer uses the whole ``max_tokens`` (or the model's own output
limit when none is given), so each call costs its worst case. Prompts in Chinese,
JSON and code are the ones ``characters / 4`` under-counted by 26-77%.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest
from fakes.billing_openai_server import BillingAnthropic, BillingOpenAI, prompt_tokens

from wflo_prefect import Budget, BudgetExceeded, InvalidArgumentError, instrument
from wflo_prefect.costs import flush_leases, metered_call, use_budgets
from wflo_prefect.costs.prices import find_price
from wflo_prefect.ledger import Ledger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.prompt_corpus import corpus

PROMPTS = dict(corpus(scale=20))


@pytest.fixture
def billing() -> Iterator[BillingOpenAI]:
    with BillingOpenAI() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def client(billing: BillingOpenAI) -> openai.OpenAI:
    return instrument(openai.OpenAI(base_url=f"{billing.url}/v1", api_key="sk-t", max_retries=0))


def _messages(prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": prompt},
    ]


def _spend_until_halted(
    client: openai.OpenAI, budget: Budget, model: str, prompt: str, max_tokens: int | None
) -> int:
    extra = {} if max_tokens is None else {"max_tokens": max_tokens}
    sent: list[int] = []

    def spend() -> None:
        for _ in range(200):
            client.chat.completions.create(
                model=model,
                messages=_messages(prompt),
                **extra,
            )
            sent.append(1)

    with use_budgets(budget), pytest.raises(BudgetExceeded):
        spend()
    return len(sent)


@pytest.mark.parametrize(
    "kind", ["chinese", "json", "python", "chinese+code+json", "hindi", "logs", "emoji"]
)
def test_a_halting_budget_is_never_overrun_by_real_token_counts(
    ledger: Ledger, client: openai.OpenAI, billing: BillingOpenAI, kind: str
) -> None:
    """The budget holds 4.95 calls at their true cost: the fifth must be refused, since
    its hold is at least its true cost (an under-estimate would send it and overrun)."""
    prompt = PROMPTS[kind]
    true_cost = find_price("openai", "gpt-4o").cost(prompt_tokens("gpt-4o", _messages(prompt)), 50)
    budget = Budget(true_cost * Decimal("4.95"), scope="global", name=f"halt-{kind}")
    sent = _spend_until_halted(client, budget, "gpt-4o", prompt, 50)
    flush_leases()
    assert sent == 4 == len(billing.requests)
    entries = ledger.costs.entries()
    assert [e.cost_usd for e in entries] == [true_cost] * 4
    spent = sum((e.cost_usd for e in entries), Decimal(0))
    assert spent <= budget.max_usd, f"{kind}: spent {spent} of {budget.max_usd}"
    [window] = ledger.costs.windows()
    assert window.spent_usd == spent <= window.limit_usd


def test_without_max_tokens_the_models_output_limit_is_held(
    ledger: Ledger, client: openai.OpenAI, billing: BillingOpenAI
) -> None:
    """A request without max_tokens is billed up to 16,384 output tokens on gpt-4o-mini."""
    budget = Budget(Decimal("0.05"), scope="global", name="no-max")
    sent = _spend_until_halted(client, budget, "gpt-4o-mini", PROMPTS["json"], None)
    flush_leases()
    entries = ledger.costs.entries()
    assert sent == len(entries) >= 3
    assert all(e.output_tokens == 16_384 for e in entries)
    assert sum((e.cost_usd for e in entries), Decimal(0)) <= budget.max_usd


def test_a_bad_settle_records_nothing_and_gives_the_hold_back(ledger: Ledger) -> None:
    """settle(input=100, cached=5000) recorded -$0.006, lowering the budget's spend."""
    budget = Budget(Decimal("1"), scope="global", name="bad-usage")
    with (
        use_budgets(budget),
        metered_call("openai", "gpt-4o", input_tokens=100, max_output_tokens=100) as call,
    ):
        with pytest.raises(InvalidArgumentError, match="cached_input_tokens"):
            call.settle(input_tokens=100, output_tokens=10, cached_input_tokens=5000)
        assert not call.closed
    flush_leases()
    assert ledger.costs.entries() == []
    [window] = ledger.costs.windows()
    assert (window.spent_usd, window.reserved_usd) == (0, 0)


def test_warn_mode_prices_an_unpriced_answer_as_the_requested_model(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A response naming an unknown dated model was recorded at $0 though gpt-4o was held."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_COSTS_UNPRICED", "warn")
    with metered_call("openai", "gpt-4o", input_tokens=1000, max_output_tokens=100) as call:
        entry = call.settle(input_tokens=1000, output_tokens=100, model="gpt-4o-2099-01-01")
    assert entry is not None
    assert entry.model == "gpt-4o-2099-01-01"
    assert entry.priced
    assert entry.cost_usd == find_price("openai", "gpt-4o").cost(1000, 100) > 0


@pytest.mark.postgres
def test_twenty_processes_on_real_prompts_never_overrun_a_postgres_budget(
    postgres_url: str, billing: BillingOpenAI
) -> None:
    """20 processes send Chinese, JSON and code prompts to one PostgreSQL budget; the
    server bills real token counts: what it billed is all recorded, and within the limit."""
    import multiprocessing

    from costs_billing_race_worker import spend

    from wflo_prefect.testing import temporary_ledger

    kinds = ["chinese", "json", "python", "chinese+code+json", "hindi"]
    prompts = [PROMPTS[k] for k in kinds] * 2
    limit = Decimal("0.60")
    with temporary_ledger(postgres_url) as ledger:
        ledger.ensure_schema()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["wflo_prefect.costs", "costs_billing_race_worker"])
        args = [(postgres_url, f"{billing.url}/v1", prompts, str(limit)) for _ in range(20)]
        with context.Pool(20) as pool:
            results = pool.starmap(spend, args)
        sent = sum(r[0] for r in results)
        assert sum(r[1] for r in results) > 0, "the budget must be contended"
        assert sent == len(billing.requests)
        [window] = ledger.costs.windows("real|")
        entries = ledger.costs.entries()
        assert len(entries) == sent
        assert window.spent_usd == sum((e.cost_usd for e in entries), Decimal(0))
        assert window.spent_usd <= limit
        assert window.reserved_usd == 0


@pytest.mark.parametrize("kind", ["chinese", "json", "python", "russian"])
def test_an_unpublished_tokenizer_does_not_overrun_a_halting_budget(
    ledger: Ledger, kind: str
) -> None:
    """Anthropic: billed by the most token-hungry real vocabulary; the hold still covers it."""
    prompt = PROMPTS[kind]
    with BillingAnthropic() as server:
        client = instrument(anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0))
        billed = server.input_tokens({"messages": [{"role": "user", "content": prompt}]})
        true_cost = find_price("anthropic", "claude-sonnet-4-5").cost(billed, 50)
        budget = Budget(true_cost * Decimal("3.95"), scope="global", name=f"ant-{kind}")
        sent: list[int] = []

        def spend() -> None:
            for _ in range(50):
                client.messages.create(
                    model="claude-sonnet-4-5",
                    max_tokens=50,
                    messages=[{"role": "user", "content": prompt}],
                )
                sent.append(1)

        with use_budgets(budget), pytest.raises(BudgetExceeded):
            spend()
        flush_leases()
        assert 2 <= len(sent) == len(server.requests) <= 3
        spent = sum((e.cost_usd for e in ledger.costs.entries()), Decimal(0))
        assert spent <= budget.max_usd
