"""Errors of cost governance.

::

    WfloUsageError
    └── UnknownModelPrice     no price for a provider/model: add a custom price
    WfloRuntimeError
    └── BudgetExceeded        a call would overrun a budget with ``on_exceeded="halt"``
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from wflo_prefect.errors import WfloRuntimeError, WfloUsageError

__all__ = ["BudgetExceeded", "UnknownModelPrice"]


class UnknownModelPrice(WfloUsageError, LookupError):
    """No price is known for a provider's model."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        super().__init__(
            f"No price is known for model {model!r} of provider {provider!r}",
            value=f"{provider}/{model}",
            hint=(
                "Add a custom price: `register_price(CustomPrice(provider="
                f"{provider!r}, model={model!r}, input_per_mtok=..., output_per_mtok=...))`, "
                "a `WfloCustomPrice` block, or PREFECT_INTEGRATIONS_WFLO_COSTS_CUSTOM_PRICES; "
                "or set PREFECT_INTEGRATIONS_WFLO_COSTS_UNPRICED=warn to record such calls "
                "unpriced"
            ),
            docs="costs.md#prices",
        )


class BudgetExceeded(WfloRuntimeError):
    """A call was refused before it was sent: it would overrun a budget.

    Carries the budget's ``budget_name``, ``limit_usd``, ``spent_usd`` (settled
    plus held in the current window) and ``attempted_usd`` (the call's worst case).
    A governed run that raises it ends in a Failed state named ``BudgetExceeded``.
    """

    #: Name of the Failed state a governed run ends in (see ``_runtime``).
    prefect_state_name: ClassVar[str] = "BudgetExceeded"

    def __init__(
        self,
        budget_name: str,
        *,
        limit_usd: Decimal,
        spent_usd: Decimal,
        attempted_usd: Decimal,
        window_start: str | None = None,
    ) -> None:
        self.budget_name = budget_name
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.attempted_usd = attempted_usd
        self.window_start = window_start
        super().__init__(
            f"Budget {budget_name!r} would be exceeded: limit ${limit_usd}, "
            f"spent ${_fmt(spent_usd)}, attempted ${_fmt(attempted_usd)}; the request was "
            "not sent",
            hint="Raise the budget's max_usd, wait for its next period, or lower max_tokens.",
            docs="costs.md#budgets",
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Prefect persists failed states' exceptions; keep them picklable.
        return (
            _rebuild,
            (
                self.budget_name,
                self.limit_usd,
                self.spent_usd,
                self.attempted_usd,
                self.window_start,
            ),
        )


def _rebuild(
    name: str, limit: Decimal, spent: Decimal, attempted: Decimal, window: str | None
) -> BudgetExceeded:
    return BudgetExceeded(
        name, limit_usd=limit, spent_usd=spent, attempted_usd=attempted, window_start=window
    )


def _fmt(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount else "0"
