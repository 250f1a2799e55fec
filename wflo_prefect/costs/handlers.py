"""Python callbacks on budget alerts: ``on_budget_alert`` and ``on_budget_exceeded``.

The same moments that emit the ``wflo.budget.*`` Prefect events call the handlers
registered in this process, with a typed :class:`BudgetEvent`: a threshold crossed
(once per budget window), a window past its limit (``alert`` budgets, once per
window), and a call a ``halt`` budget refused (once per run and budget). A handler
runs in the thread that made the call, after the ledger has recorded it; whatever
it raises is logged (``budget.handler_failed``) and never reaches the run.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, overload

from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.observability.logging import get_logger

__all__ = [
    "BudgetEvent",
    "BudgetHandler",
    "clear_budget_handlers",
    "handler_thresholds",
    "notify_handlers",
    "on_budget_alert",
    "on_budget_exceeded",
]

_log = get_logger("costs")


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """What a budget handler is told.

    ``kind`` is ``threshold`` (``threshold`` says which), ``exceeded`` (an ``alert``
    budget's window went past its limit) or ``refused`` (a ``halt`` budget refused a
    call, which stops the run with :class:`~wflo_prefect.BudgetExceeded`).
    """

    kind: Literal["threshold", "exceeded", "refused"]
    budget: str
    key: str
    limit_usd: Decimal
    spent_usd: Decimal
    window_start: str
    threshold: Decimal | None = None
    attempted_usd: Decimal | None = None
    on_exceeded: str = "halt"
    flow_run_id: str | None = None
    flow_name: str | None = None

    @property
    def current(self) -> Decimal:
        """Spent in the window (the seeds' ``cost.current``)."""
        return self.spent_usd

    @property
    def limit(self) -> Decimal:
        """The budget's limit (the seeds' ``cost.limit``)."""
        return self.limit_usd

    @property
    def fraction(self) -> Decimal:
        """Spent as a fraction of the limit."""
        return self.spent_usd / self.limit_usd if self.limit_usd else Decimal(0)


BudgetHandler = Callable[[BudgetEvent], object]


@dataclass(frozen=True, slots=True)
class _Registration:
    handler: BudgetHandler
    threshold: Decimal | None  # None: on_budget_exceeded
    budget: str | None


_lock = threading.Lock()
_handlers: list[_Registration] = []


def _fraction(value: object) -> Decimal:
    try:
        fraction = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except ArithmeticError:
        fraction = Decimal(-1)
    if isinstance(value, bool) or not Decimal(0) < fraction <= Decimal(1):
        raise InvalidArgumentError(
            "on_budget_alert takes a threshold as a fraction of the limit, > 0 and <= 1",
            value=value,
            hint="e.g. on_budget_alert(0.75, handler) for 75 %",
            docs="costs.md#python-handlers",
        )
    return fraction


def _check(handler: object, where: str) -> BudgetHandler:
    if not callable(handler):
        raise InvalidArgumentError(
            f"{where} takes a callable that accepts a BudgetEvent",
            value=handler,
            hint=f"e.g. {where}(lambda event: print(event.budget, event.current))",
            docs="costs.md#python-handlers",
        )
    return handler


@overload
def on_budget_alert(
    threshold: object, handler: None = None, *, budget: str | None = None
) -> Callable[[BudgetHandler], BudgetHandler]: ...
@overload
def on_budget_alert(
    threshold: object, handler: BudgetHandler, *, budget: str | None = None
) -> BudgetHandler: ...
def on_budget_alert(
    threshold: object, handler: BudgetHandler | None = None, *, budget: str | None = None
) -> BudgetHandler | Callable[[BudgetHandler], BudgetHandler]:
    """Call ``handler(event)`` when a budget's spend reaches ``threshold`` (a fraction of
    its limit, e.g. ``0.75``), once per budget window; only budget ``budget`` when given.

    A threshold the budget does not list among its ``alert_thresholds`` is watched for
    the handler as well (it claims its own once-per-window marker, but sends no
    notification). Works as a decorator when ``handler`` is omitted.
    """
    fraction = _fraction(threshold)

    def register(fn: BudgetHandler) -> BudgetHandler:
        with _lock:
            _handlers.append(_Registration(_check(fn, "on_budget_alert"), fraction, budget))
        return fn

    return register if handler is None else register(handler)


@overload
def on_budget_exceeded(
    handler: None = None, *, budget: str | None = None
) -> Callable[[BudgetHandler], BudgetHandler]: ...
@overload
def on_budget_exceeded(handler: BudgetHandler, *, budget: str | None = None) -> BudgetHandler: ...
def on_budget_exceeded(
    handler: BudgetHandler | None = None, *, budget: str | None = None
) -> BudgetHandler | Callable[[BudgetHandler], BudgetHandler]:
    """Call ``handler(event)`` when a ``halt`` budget refuses a call (once per run and
    budget) or an ``alert`` budget's window goes past its limit (once per window);
    only budget ``budget`` when given. Works as a decorator when ``handler`` is omitted."""

    def register(fn: BudgetHandler) -> BudgetHandler:
        with _lock:
            _handlers.append(_Registration(_check(fn, "on_budget_exceeded"), None, budget))
        return fn

    return register if handler is None else register(handler)


def clear_budget_handlers() -> None:
    """Forget every registered handler (e.g. between tests)."""
    with _lock:
        _handlers.clear()


def handler_thresholds(budget: str) -> tuple[Decimal, ...]:
    """The thresholds handlers watch on budget ``budget``."""
    with _lock:
        registered = list(_handlers)
    return tuple(
        sorted(
            {
                r.threshold
                for r in registered
                if r.threshold is not None and r.budget in (None, budget)
            }
        )
    )


def notify_handlers(event: BudgetEvent) -> int:
    """Call the handlers ``event`` concerns; how many ran without raising."""
    with _lock:
        registered = list(_handlers)
    called = 0
    for item in registered:
        if item.budget not in (None, event.budget):
            continue
        if event.kind == "threshold":
            if item.threshold is None or event.threshold is None:
                continue
            if item.threshold != event.threshold:
                continue
        elif item.threshold is not None:
            continue
        called += _call(item.handler, event)
    return called


def _call(handler: BudgetHandler, event: BudgetEvent) -> int:
    name = getattr(handler, "__qualname__", repr(handler))
    try:
        result: Any = handler(event)
        if inspect.iscoroutine(result):
            result.close()
            raise TypeError("async handlers are not supported; pass a plain function")
    except Exception as exc:  # a handler must never break the run or lose its entry
        _log.warning(
            "budget.handler_failed",
            handler=name,
            budget=event.budget,
            kind=event.kind,
            error=f"{type(exc).__name__}: {exc}",
        )
        return 0
    return 1
