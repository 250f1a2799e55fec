"""`on_budget_alert` / `on_budget_exceeded`: Python callbacks at the moments the
`wflo.budget.*` events are emitted, on governed flows on the real Prefect API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from wflo_prefect import (
    Budget,
    BudgetEvent,
    InvalidArgumentError,
    governed_flow,
    governed_task,
    on_budget_alert,
    on_budget_exceeded,
)
from wflo_prefect.costs import clear_budget_handlers, estimate_cost, metered_call
from wflo_prefect.ledger import Ledger

CALL = estimate_cost("openai", "gpt-4o-mini", input_tokens=1000, output_tokens=1000)


@pytest.fixture(autouse=True)
def no_handlers_left() -> Iterator[None]:
    clear_budget_handlers()
    yield
    clear_budget_handlers()


@governed_task
def one_call() -> None:
    with metered_call("openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000) as c:
        c.settle(input_tokens=1000, output_tokens=1000)


@governed_flow(budget=Budget(CALL * 4, on_exceeded="alert", name="watched-alerting"))
def alerting(calls: int) -> int:
    for _ in range(calls):
        one_call()
    return calls


@governed_flow(budget=Budget(CALL * 2, name="watched-halting"))
def halting(calls: int) -> int:
    for _ in range(calls):
        one_call()
    return calls


class Recorder:
    """A handler that keeps every event it is given (from any thread)."""

    def __init__(self) -> None:
        self.events: list[BudgetEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: BudgetEvent) -> None:
        with self._lock:
            self.events.append(event)


def test_alert_handlers_fire_at_their_thresholds_and_at_100_percent_by_default(
    ledger: Ledger,
) -> None:
    """Default thresholds include 100 %; a handler's own threshold (0.6) is watched too;
    each fires once per window with the spend and limit; exceeded fires once."""
    at: dict[str, Recorder] = {t: Recorder() for t in ("0.5", "0.6", "0.75", "1")}
    for threshold, recorder in at.items():
        on_budget_alert(Decimal(threshold), recorder)
    other_budget = Recorder()
    on_budget_alert(0.5, other_budget, budget="some-other-budget")
    exceeded = Recorder()
    on_budget_exceeded(exceeded)

    assert alerting(5, return_state=True).is_completed()
    assert len(ledger.costs.entries()) == 5
    for threshold, recorder in at.items():
        [event] = recorder.events
        assert event.kind == "threshold"
        assert event.budget == "watched-alerting"
        assert event.threshold == Decimal(threshold)
        assert event.limit == CALL * 4
        assert event.current >= event.limit * Decimal(threshold)
    assert at["1"].events[0].current == CALL * 4  # the 4th call reached 100 %
    assert other_budget.events == []
    [over] = exceeded.events
    assert over.kind == "exceeded"
    assert over.current == CALL * 5
    assert over.flow_name == "alerting"
    assert over.on_exceeded == "alert"

    # A second run has its own flow_run window; at 25 % of it nothing is due.
    assert alerting(1, return_state=True).is_completed()
    assert [len(r.events) for r in at.values()] == [1, 1, 1, 1]


def test_exceeded_handlers_are_told_when_a_halting_budget_stops_a_run(ledger: Ledger) -> None:
    """A refused call calls on_budget_exceeded once for the run, with the refused amount."""
    exceeded = Recorder()
    on_budget_exceeded(exceeded, budget="watched-halting")
    state = halting(5, return_state=True)
    assert state.name == "BudgetExceeded"
    [event] = exceeded.events
    assert event.kind == "refused"
    assert event.attempted_usd == CALL
    assert event.spent_usd == CALL * 2
    assert event.limit_usd == CALL * 2
    assert event.fraction == 1
    assert event.flow_run_id == str(state.state_details.flow_run_id)


def test_a_raising_handler_never_breaks_the_run_or_loses_an_entry(ledger: Ledger) -> None:
    """Handlers that raise are logged; the run's outcome and its ledger entries stand,
    and the other handlers still run."""

    def broken(event: BudgetEvent) -> None:
        raise RuntimeError("the pager is down")

    async def not_supported(event: BudgetEvent) -> None:
        return None

    after = Recorder()
    on_budget_alert(0.5, broken)
    on_budget_alert(0.5, not_supported)  # type: ignore[arg-type]
    on_budget_exceeded(broken)
    on_budget_alert(0.5, after)
    on_budget_exceeded(after)

    assert alerting(5, return_state=True).is_completed()
    assert len(ledger.costs.entries()) == 5
    state = halting(5, return_state=True)
    assert state.name == "BudgetExceeded"  # the budget's own error, not the handler's
    assert len(ledger.costs.entries()) == 7
    assert [e.kind for e in after.events] == ["threshold", "exceeded", "threshold", "refused"]


def test_handlers_work_as_decorators() -> None:
    """on_budget_alert(0.9) and on_budget_exceeded() return a decorator."""
    seen: list[str] = []

    @on_budget_alert(0.9)
    def near(event: BudgetEvent) -> None:
        seen.append(event.kind)

    @on_budget_exceeded()
    def over(event: BudgetEvent) -> None:
        seen.append(event.kind)

    assert callable(near)
    assert callable(over)
    assert halting(5, return_state=True).name == "BudgetExceeded"
    assert seen == ["threshold", "refused"]


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, "most", True])
def test_bad_thresholds_are_refused_naming_the_value(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match=repr(bad).replace(".", r"\.")):
        on_budget_alert(bad, print)


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(InvalidArgumentError, match="'not a function'"):
        on_budget_exceeded("not a function")  # type: ignore[call-overload]
