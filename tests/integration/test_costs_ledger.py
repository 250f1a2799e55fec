"""The cost ledger on SQLite and PostgreSQL: atomic holds, settle once, release, alerts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.costs import HoldRequest, NewCostEntry, Refusal
from wflo_prefect.ledger.models import utcnow

START = datetime(2026, 11, 1, tzinfo=UTC)


def _hold(key: str, amount: str, limit: str = "1.00", start: datetime = START) -> HoldRequest:
    return HoldRequest(key, start, None, Decimal(limit), Decimal(amount))


def _entry(cost: str) -> NewCostEntry:
    return NewCostEntry(
        provider="openai", model="gpt-4o-mini", input_tokens=10, cost_usd=Decimal(cost)
    )


def test_holds_fit_until_the_limit_then_are_refused(any_ledger: Ledger) -> None:
    """Holds are granted while spent + reserved + amount <= limit, then refused with the state."""
    costs = any_ledger.costs
    first = costs.reserve([_hold("b|global=*", "0.60")])
    assert isinstance(first, list)
    assert len(first) == 1
    refused = costs.reserve([_hold("b|global=*", "0.50")])
    assert isinstance(refused, Refusal)
    assert refused.reserved_usd == Decimal("0.60")
    assert refused.spent_usd == 0
    exact = costs.reserve([_hold("b|global=*", "0.40")])
    assert isinstance(exact, list), "a hold that exactly reaches the limit fits"


def test_several_budgets_are_held_all_or_nothing(any_ledger: Ledger) -> None:
    """When one of several budgets refuses, none of them keeps a hold."""
    costs = any_ledger.costs
    assert isinstance(costs.reserve([_hold("small|user=ann", "0.9", limit="1")]), list)
    refused = costs.reserve(
        [_hold("big|flow_run=r1", "0.5", limit="100"), _hold("small|user=ann", "0.5", limit="1")]
    )
    assert isinstance(refused, Refusal)
    assert refused.request.budget_key == "small|user=ann"
    assert costs.window("big|flow_run=r1", START) is None or (
        costs.window("big|flow_run=r1", START).reserved_usd == 0  # type: ignore[union-attr]
    )


def test_settle_moves_reserved_to_spent_and_records_once(any_ledger: Ledger) -> None:
    """Settling charges the actual cost, writes one entry; settling again changes nothing."""
    costs = any_ledger.costs
    ids = costs.reserve([_hold("b|flow=f", "0.50")])
    assert isinstance(ids, list)
    entry, states = costs.settle(ids, _entry("0.12"))
    assert entry is not None
    assert entry.cost_usd == Decimal("0.12")
    assert states[0].spent_usd == Decimal("0.12")
    assert states[0].reserved_usd == 0
    again, _ = costs.settle(ids, _entry("0.12"))
    assert again is None
    assert len(costs.entries()) == 1
    assert costs.release(ids) == 0, "a settled hold cannot be released"
    assert costs.reservation_status(ids[0]) == "settled"


def test_release_gives_the_hold_back(any_ledger: Ledger) -> None:
    """Releasing a hold frees its money for the next call and records no entry."""
    costs = any_ledger.costs
    ids = costs.reserve([_hold("b|flow=g", "0.90")])
    assert isinstance(ids, list)
    assert isinstance(costs.reserve([_hold("b|flow=g", "0.20")]), Refusal)
    assert costs.release(ids) == 1
    assert isinstance(costs.reserve([_hold("b|flow=g", "0.20")]), list)
    assert costs.entries() == []


def test_new_period_window_starts_from_zero(any_ledger: Ledger) -> None:
    """Spend in one window does not count in the next (period roll-over)."""
    costs = any_ledger.costs
    ids = costs.reserve([_hold("d|global=*", "1.00")])
    assert isinstance(ids, list)
    costs.settle(ids, _entry("1.00"))
    assert isinstance(costs.reserve([_hold("d|global=*", "0.01")]), Refusal)
    next_day = datetime(2026, 11, 2, tzinfo=UTC)
    assert isinstance(costs.reserve([_hold("d|global=*", "0.50", start=next_day)]), list)


def test_unenforced_holds_always_fit(any_ledger: Ledger) -> None:
    """Holds for alert/ignore budgets are recorded even past the limit."""
    costs = any_ledger.costs
    request = HoldRequest("a|global=*", START, None, Decimal("1"), Decimal("5"), enforce=False)
    ids = costs.reserve([request])
    assert isinstance(ids, list)
    _, states = costs.settle(ids, _entry("5"))
    assert states[0].spent_usd == Decimal("5")


def test_alert_is_claimed_once_per_window(any_ledger: Ledger) -> None:
    """claim_alert returns True once per marker and window, then False."""
    costs = any_ledger.costs
    ids = costs.reserve([_hold("t|global=*", "0.1")])
    assert isinstance(ids, list)
    window = costs.window("t|global=*", START)
    assert window is not None
    assert costs.claim_alert(window.id, "0.5") is True
    assert costs.claim_alert(window.id, "0.5") is False
    assert costs.claim_alert(window.id, "0.75") is True
    refreshed = costs.window("t|global=*", START)
    assert refreshed is not None
    assert refreshed.alerts_fired == ("0.5", "0.75")


def test_abandoned_holds_expire_and_a_late_settle_still_counts(any_ledger: Ledger) -> None:
    """Holds of a dead process are given back; if its call settles after all, it is charged once."""
    costs = any_ledger.costs
    ids = costs.reserve([_hold("x|global=*", "0.90")])
    assert isinstance(ids, list)
    assert isinstance(costs.reserve([_hold("x|global=*", "0.50")]), Refusal)
    assert costs.expire_stale(utcnow() + timedelta(seconds=1)) == 1
    assert costs.reservation_status(ids[0]) == "expired"
    assert isinstance(costs.reserve([_hold("x|global=*", "0.50")]), list)
    entry, states = costs.settle(ids, _entry("0.30"))
    assert entry is not None
    assert states[0].spent_usd == Decimal("0.30")
    assert states[0].reserved_usd == Decimal("0.50"), "only the live hold is still reserved"
    assert costs.settle(ids, _entry("0.30"))[0] is None
    assert costs.expire_stale(utcnow() + timedelta(seconds=1)) == 1  # the 0.50 hold
