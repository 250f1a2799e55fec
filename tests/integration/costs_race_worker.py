"""A worker process of the budget race test: spends from one shared budget.

Kept in its own module so spawned processes can import it by name.
"""

from __future__ import annotations

import os
import random
from decimal import Decimal

LIMIT = Decimal("0.0300")


def _warm_up() -> None:
    # Load genai-prices' data once in the forkserver, not once per worker.
    from wflo_prefect.costs import find_price

    find_price("openai", "gpt-4o-mini").cost(1, 1)


_warm_up()


def spend(
    ledger_url: str,
    calls: int,
    seed: int,
    lease_seconds: str = "1",
    flush: bool = True,
    limit: str = str(LIMIT),
) -> tuple[int, int]:
    """Make ``calls`` metered calls against the shared 'race' budget; (settled, refused).

    With ``flush=False`` the process keeps its budget leases open when it returns,
    as a process that is killed next would.
    """
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = ledger_url
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_POOL_SIZE"] = "1"
    os.environ["PREFECT_INTEGRATIONS_WFLO_COSTS_BUDGET_LEASE_SECONDS"] = lease_seconds
    from wflo_prefect.costs import Budget, BudgetExceeded, flush_leases, metered_call

    budget = Budget(Decimal(limit), scope="global", name="race")
    rng = random.Random(seed)
    settled = refused = 0
    for _ in range(calls):
        try:
            with metered_call(
                "openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000, budgets=[budget]
            ) as call:
                call.settle(input_tokens=1000, output_tokens=rng.randint(600, 1000))
                settled += 1
        except BudgetExceeded:
            refused += 1
    if flush:
        flush_leases()
    return settled, refused
