"""The budgets active for the code running now (a context variable).

``governed_flow(budget=...)`` and ``governed_task(budget=...)`` push their budgets
here for the duration of the run. Prefect runs a flow's tasks in a copy of the
flow's context (its thread-pool task runner uses ``contextvars.copy_context()``),
so tasks inside a governed flow are held to the flow's budgets as well as their own.
:func:`use_budgets` does the same for any block of code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from wflo_prefect.costs.budget import Budget

__all__ = ["active_budgets", "use_budgets"]

_ACTIVE: ContextVar[tuple[Budget, ...]] = ContextVar("wflo_active_budgets", default=())


def active_budgets() -> tuple[Budget, ...]:
    """The budgets every LLM call made now is checked against."""
    return _ACTIVE.get()


@contextmanager
def use_budgets(*budgets: Budget) -> Iterator[tuple[Budget, ...]]:
    """Hold every LLM call made inside the block to ``budgets`` (plus those already active)."""
    current = _ACTIVE.get()
    added = tuple(b for b in budgets if b not in current)
    token = _ACTIVE.set(current + added)
    try:
        yield current + added
    finally:
        _ACTIVE.reset(token)
