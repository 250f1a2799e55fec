"""A worker of the real-token budget race: sends real prompts through the instrumented
openai client to a server that bills real token counts and whole ``max_tokens``.

Kept in its own module so forkserver processes can import it by name.
"""

from __future__ import annotations

import os
from decimal import Decimal


def _warm_up() -> None:
    # Load genai-prices' data and the vocabularies once in the forkserver.
    from wflo_prefect.costs import find_price
    from wflo_prefect.costs.tokens import text_tokens

    find_price("openai", "gpt-4o").cost(1, 1)
    text_tokens("warm", "openai", "gpt-4o")


_warm_up()


def spend(ledger_url: str, base_url: str, prompts: list[str], limit: str) -> tuple[int, int]:
    """Send each prompt (max_tokens=50) against the shared 'real' budget; (sent, refused)."""
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = ledger_url
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_POOL_SIZE"] = "1"
    import openai

    from wflo_prefect import instrument
    from wflo_prefect.costs import Budget, BudgetExceeded, flush_leases, use_budgets

    client = instrument(openai.OpenAI(base_url=base_url, api_key="sk-t", max_retries=0))
    budget = Budget(Decimal(limit), scope="global", name="real")
    sent = refused = 0
    with use_budgets(budget):
        for prompt in prompts:
            try:
                client.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=50,
                )
                sent += 1
            except BudgetExceeded:
                refused += 1
    flush_leases()
    return sent, refused
