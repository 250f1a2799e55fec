"""Budgets work in their own decimal context, not the caller's: code that sets
``localcontext(prec=3)`` (or traps ``Inexact``) around its LLM calls gets the same
holds, leases, charges and entries as code that does not."""

from __future__ import annotations

from decimal import Decimal, Inexact, localcontext

import pytest

from wflo_prefect import Budget, BudgetExceeded
from wflo_prefect.costs import flush_leases, metered_call, record_llm_usage, use_budgets
from wflo_prefect.costs.prices import find_price
from wflo_prefect.ledger import Ledger

IN, OUT = 123_457, 7_891


def _spend(budget: Budget, calls: int) -> None:
    with use_budgets(budget):
        for _ in range(calls):
            with metered_call("openai", "gpt-4o", input_tokens=IN, max_output_tokens=OUT) as call:
                call.settle(input_tokens=IN, output_tokens=OUT)
        record_llm_usage("openai", "gpt-4o", IN, OUT)


@pytest.mark.parametrize("trap_inexact", [False, True])
def test_a_callers_decimal_context_changes_no_hold_charge_or_entry(
    ledger: Ledger, trap_inexact: bool
) -> None:
    """Under prec=3 the lease sizing raised decimal.InvalidOperation before the call
    was sent; spend, reserved money and entries must be exact, and the halt holds."""
    cost = find_price("openai", "gpt-4o").cost(IN, OUT)
    halting = Budget(cost * Decimal("1.5"), scope="global", name="tight")
    with localcontext() as ctx:
        ctx.prec = 3
        if trap_inexact:
            ctx.traps[Inexact] = True
        _spend(Budget("1000", scope="global", name="roomy"), 3)
        flush_leases()
        with use_budgets(halting):
            with metered_call("openai", "gpt-4o", input_tokens=IN, max_output_tokens=OUT) as call:
                call.settle(input_tokens=IN, output_tokens=OUT)
            with pytest.raises(BudgetExceeded):
                metered_call("openai", "gpt-4o", input_tokens=IN, max_output_tokens=OUT).__enter__()
        flush_leases()
    entries = ledger.costs.entries()
    assert [e.cost_usd for e in entries] == [cost] * 5
    windows = {w.budget_key: w for w in ledger.costs.windows()}
    roomy = next(w for k, w in windows.items() if "roomy" in k)
    tight = next(w for k, w in windows.items() if "tight" in k)
    assert (roomy.spent_usd, roomy.reserved_usd) == (cost * 4, 0)
    assert (tight.spent_usd, tight.reserved_usd) == (cost, 0)
