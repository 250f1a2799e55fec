"""The pure budgeting model: one answer to "does it fit", thresholds, lease sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.budgeting import alerts_due, bind_budgets
from wflo_prefect.ledger.budget_model import (
    HoldRequest,
    Refusal,
    WindowState,
    fits,
    fits_without,
    leasable,
    lease_too_small,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
D = Decimal


def _state(
    spent: str, reserved: str = "0", limit: str = "1", fired: tuple[str, ...] = ()
) -> WindowState:
    return WindowState("w", "b|global=*", START, None, D(limit), D(spent), D(reserved), fired)


def test_fits_is_inclusive_of_the_limit() -> None:
    assert fits(D("0.3"), D("0.3"), D("0.4"), D("1"))
    assert not fits(D("0.3"), D("0.3"), D("0.4000000001"), D("1"))


def test_leasable_takes_a_share_of_what_is_left_and_never_goes_negative() -> None:
    assert leasable(D("1"), D("0.2"), D("0.2"), D("10"), 4) == D("0.15")
    assert leasable(D("1"), D("0.2"), D("0.2"), D("0.01"), 4) == D("0.01")
    assert leasable(D("1"), D("0.9"), D("0.2"), D("1"), 4) == 0
    # Rounded down to the ledger's scale: a lease never takes more than its share.
    assert leasable(D("1"), D("0"), D("0"), D("1"), 3) == D("0.3333333333")
    assert leasable(D("1"), D("0.5"), D("0.5"), D("1"), 1, freed=D("0.25")) == D("0.25")


def test_lease_too_small_counts_the_leases_own_free_money() -> None:
    state = _state("0.9", "0.05")
    # left 0.05 (+0 free): 0.05/16 < 2 * 0.01 -> too small
    assert lease_too_small(state, D(0), D("0.01"), 16, 2)
    # with 1.0 of its own free money the lease could still cover the calls
    assert not lease_too_small(state, D("1"), D("0.01"), 16, 2)


def test_fits_without_other_leases() -> None:
    request = HoldRequest("b|global=*", START, None, D("1"), D("0.3"))
    refusal = Refusal(request, D("0.5"), D("0.4"), _state("0.5", "0.4"))
    assert fits_without(refusal, D("0.2"))
    assert not fits_without(refusal, D("0.1"))
    assert not fits_without(Refusal(request, D("0.9"), D("0")), D("1"))
    # Read after the refusal, the state may show the money back: it fits as it is.
    assert fits_without(Refusal(request, D("0.5"), D("0"), _state("0.5", "0")), D("0"))
    assert not fits_without(Refusal(request, D("0.8"), D("0.1"), _state("0.8", "0.1")), D("0.5"))


def test_alerts_due_fires_each_marker_once_and_exceeded_above_the_limit() -> None:
    budget = Budget(max_usd=D("1"), alert_thresholds=[D("0.5"), D("0.8")])
    assert alerts_due(budget, _state("0.49")) == []
    assert alerts_due(budget, _state("0.8")) == ["0.5", "0.8"]
    assert alerts_due(budget, _state("0.8", fired=("0.5",))) == ["0.8"]
    assert alerts_due(budget, _state("1")) == ["0.5", "0.8"]
    assert alerts_due(budget, _state("0.9"), pending=D("0.2")) == ["0.5", "0.8", "exceeded"]
    ignored = Budget(max_usd=D("1"), on_exceeded="ignore")
    assert alerts_due(ignored, _state("5")) == []


def test_bind_budgets_keys_by_scope_and_reports_unresolved_scopes() -> None:
    who = Attribution(flow_run_id="r1", flow_name="f", tags=("team:a",))
    per_run = Budget(max_usd=D("1"), scope="flow_run")
    per_user = Budget(max_usd=D("1"), scope="user")
    tagged = Budget(max_usd=D("1"), scope="tag", scope_value="team:b")
    bound, unresolved = bind_budgets([per_run, per_run, per_user, tagged], who, START)
    assert [b.key for b in bound] == [f"{per_run.display_name}|flow_run=r1"]
    assert unresolved == [per_user]
