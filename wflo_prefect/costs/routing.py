"""Opt-in model routing: when a budget runs low, send requests to a cheaper model.

``ModelRouting(routes={"gpt-4o": "gpt-4o-mini"}, below_remaining=0.2)`` on an
instrumented client sends a request for ``gpt-4o`` to ``gpt-4o-mini`` whenever
one of the call's budgets has less than 20 % of its limit left (spent plus held).
The ledger records the model that answered and the model that was requested.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.context import active_budgets
from wflo_prefect.costs.enforcement import applicable_budgets
from wflo_prefect.ledger import get_ledger

__all__ = ["ModelRouting", "lowest_remaining_share"]


class ModelRouting(BaseModel):
    """Which models to swap for cheaper ones, and when."""

    model_config = ConfigDict(frozen=True)

    routes: dict[str, str] = Field(description="Requested model -> cheaper model.")
    below_remaining: Decimal = Field(
        default=Decimal("0.2"),
        gt=0,
        le=1,
        description="Route when a budget's remaining share is below this fraction.",
    )

    @field_validator("below_remaining", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value

    def target(self, model: str, who: Attribution, budgets: Sequence[Budget] | None = None) -> str:
        """The model to send a request for ``model`` to, now."""
        cheaper = self.routes.get(model)
        if cheaper is None:
            return model
        share = lowest_remaining_share(who, budgets)
        if share is not None and share < self.below_remaining:
            return cheaper
        return model


def lowest_remaining_share(
    who: Attribution, budgets: Sequence[Budget] | None = None
) -> Decimal | None:
    """The smallest remaining share (0..1) of the budgets a call would count against."""
    chosen = active_budgets() if budgets is None else budgets
    lowest: Decimal | None = None
    for bound in applicable_budgets(chosen, who):
        window = get_ledger().costs.window(bound.key, bound.window_start)
        used = (window.spent_usd + window.reserved_usd) if window else Decimal(0)
        share = max(Decimal(1) - used / bound.budget.max_usd, Decimal(0))
        lowest = share if lowest is None else min(lowest, share)
    return lowest
