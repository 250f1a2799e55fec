"""What a budget had left after a given LLM call, read from the ledger's cost entries.

A budget's spend in a window is the sum of the cost entries its scope covers in that
window; "left after a call" counts the entries up to and including that call. This is
what the call's span (``wflo.budget.remaining_usd``) and ``wflo debug`` show. It counts
settled calls only: money held for calls still in flight is not subtracted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.models import CostEntryRow

if TYPE_CHECKING:
    from wflo_prefect.costs.enforcement import BoundBudget
    from wflo_prefect.ledger.costs import BudgetRecord, CostEntry

__all__ = ["remaining_after", "spent_in_window", "tightest_after"]

_COLUMNS = {
    "flow_run": CostEntryRow.flow_run_id,
    "flow": CostEntryRow.flow_name,
    "deployment": CostEntryRow.deployment_id,
    "user": CostEntryRow.user,
}


def spent_in_window(
    scope: str, value: str, start: datetime, until: datetime, *, end: datetime | None = None
) -> Decimal:
    """USD of the cost entries of ``scope=value`` from ``start`` up to ``until`` (inclusive)."""
    upper = until if end is None else min(until, end)
    where: list[Any] = [CostEntryRow.occurred_at >= start, CostEntryRow.occurred_at <= upper]
    if scope in _COLUMNS:
        where.append(_COLUMNS[scope] == value)
    with get_ledger().transaction() as session:
        if scope == "tag":
            rows = session.execute(
                select(CostEntryRow.cost_usd, CostEntryRow.tags).where(*where)
            ).all()
            return sum((Decimal(c) for c, tags in rows if value in (tags or [])), Decimal(0))
        total = session.execute(select(func.sum(CostEntryRow.cost_usd)).where(*where)).scalar()
    return Decimal(str(total or 0)).quantize(Decimal("1e-10"))


def tightest_after(bound: Sequence[BoundBudget], entry: CostEntry) -> tuple[str, Decimal] | None:
    """The budget (of those a call was held on) with the least left after it, and that amount."""
    best: tuple[str, Decimal] | None = None
    for item in bound:
        value = item.key.partition("|")[2].partition("=")[2]
        spent = spent_in_window(
            item.budget.scope, value, item.window_start, entry.occurred_at, end=item.window_end
        )
        left = item.budget.max_usd - spent
        if best is None or left < best[1]:
            best = (item.budget.display_name, left)
    return best


def _scope_value(record: BudgetRecord, entry: CostEntry) -> str | None:
    if record.scope == "global":
        return "*"
    if record.scope == "tag":
        return record.scope_value if record.scope_value in entry.tags else None
    actual = {
        "flow_run": entry.flow_run_id,
        "flow": entry.flow_name,
        "deployment": entry.deployment_id,
        "user": entry.user,
    }.get(record.scope)
    if record.scope_value is not None and actual != record.scope_value:
        return None
    return actual


def remaining_after(
    budgets: Sequence[BudgetRecord], entry: CostEntry
) -> list[tuple[str, Decimal, Decimal]]:
    """Each registered budget covering ``entry``: (name, limit, left after the call)."""
    from wflo_prefect.costs.budget import window_bounds

    shown = []
    for record in budgets:
        value = _scope_value(record, entry)
        if value is None:
            continue
        start, end = window_bounds(
            record.period,  # type: ignore[arg-type]
            ZoneInfo(record.timezone),
            entry.occurred_at,
        )
        spent = spent_in_window(record.scope, value, start, entry.occurred_at, end=end)
        shown.append((record.name, record.max_usd, record.max_usd - spent))
    return shown
