"""The budgeting model on the costs side: which budgets a call counts against, and
which alerts a window's spend calls for. Pure: no I/O, no ledger, no clock.

The window arithmetic (``fits``, what a lease may take) is
:mod:`wflo_prefect.ledger.budget_model`, shared with the store that enforces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budget import Budget
from wflo_prefect.ledger.budget_model import WindowState

__all__ = ["BoundBudget", "alerts_due", "bind_budgets", "scope_value"]


@dataclass(frozen=True, slots=True)
class BoundBudget:
    """A budget resolved for one call: its key and window."""

    budget: Budget
    key: str
    window_start: datetime
    window_end: datetime | None


def scope_value(budget: Budget, who: Attribution) -> str | None:
    """The value of the budget's scope for a call by ``who`` (``None``: it does not apply)."""
    if budget.scope == "global":
        return "*"
    if budget.scope == "tag":
        return budget.scope_value if budget.scope_value in who.tags else None
    actual = {
        "flow_run": who.flow_run_id,
        "flow": who.flow_name,
        "deployment": who.deployment_id,
        "user": who.user,
    }[budget.scope]
    if budget.scope_value is not None and actual != budget.scope_value:
        return None
    return actual


def bind_budgets(
    budgets: Sequence[Budget], who: Attribution, moment: datetime
) -> tuple[list[BoundBudget], list[Budget]]:
    """The budgets a call by ``who`` at ``moment`` counts against (one per key), and
    those that did not apply only because the call's attribution has no value for
    their scope (a ``user`` budget and no known user...)."""
    bound: dict[str, BoundBudget] = {}
    unresolved: list[Budget] = []
    for budget in budgets:
        value = scope_value(budget, who)
        if value is None:
            if budget.scope != "tag" and budget.scope_value is None:
                unresolved.append(budget)
            continue
        key = f"{budget.display_name}|{budget.scope}={value}"
        start, end = budget.window(moment)
        bound.setdefault(key, BoundBudget(budget, key, start, end))
    return list(bound.values()), unresolved


def alerts_due(
    budget: Budget,
    state: WindowState,
    pending: Decimal = Decimal(0),
    extra: Sequence[Decimal] = (),
) -> list[str]:
    """The alert markers (thresholds, then ``exceeded``) the window's spend (plus
    ``pending``, spend not yet moved to the window) has reached and not yet fired.
    ``extra`` thresholds (those Python handlers watch) count as well."""
    if budget.on_exceeded == "ignore" or state.limit_usd <= 0:
        return []
    spent = state.spent_usd + pending
    used = spent / state.limit_usd
    own = budget.alert_thresholds
    thresholds = sorted((*own, *(t for t in extra if t not in own)))
    markers = [str(t) for t in thresholds if used >= t]
    if spent > state.limit_usd:
        markers.append("exceeded")
    return [m for m in markers if m not in state.alerts_fired]
