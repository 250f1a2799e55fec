"""Budget leases: calls held in memory on a slice of the budget, on SQLite and PostgreSQL.

A lease must never let a budget be overrun, must lose nothing when its process
dies or stalls, must give idle money back, and must not hide a threshold alert.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from wflo_prefect.costs import Budget, BudgetExceeded, flush_leases, metered_call
from wflo_prefect.costs import leases as lease_book
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.costs import HoldRequest, LeaseCharge, NewCostEntry
from wflo_prefect.ledger.models import utcnow

LEASE_ENV = "PREFECT_INTEGRATIONS_WFLO_COSTS_BUDGET_LEASE_SECONDS"
#: gpt-4o-mini, 1,000 tokens in and 1,000 out: the worst case and (here) the actual cost.
PER_CALL = Decimal("0.00075")
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_leftover_leases() -> Iterator[None]:
    yield
    flush_leases()


def _call(budget: Budget) -> None:
    with metered_call(
        "openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000, budgets=[budget]
    ) as call:
        call.settle(input_tokens=1000, output_tokens=1000)


def _window(ledger: Ledger, name: str):  # type: ignore[no-untyped-def]
    [window] = ledger.costs.windows(f"{name}|")
    return window


def _input_only_call(tokens: int, budget_name: str) -> None:
    """One gpt-4o-mini call of ``tokens`` input tokens ($0.15 a million) on a $1 budget."""
    with metered_call(
        "openai",
        "gpt-4o-mini",
        input_tokens=tokens,
        max_output_tokens=0,
        budgets=[Budget(Decimal(1), scope="global", name=budget_name)],
    ) as call:
        call.settle(input_tokens=tokens, output_tokens=0)


def test_leased_calls_write_entries_and_reach_the_window_when_the_lease_syncs(
    any_ledger: Ledger,
) -> None:
    """Calls on a lease write their entries at once; the window sees them at the sync."""
    budget = Budget(Decimal(10), scope="global", name="lazy")
    for _ in range(3):
        _call(budget)
    window = _window(any_ledger, "lazy")
    assert window.spent_usd == 0, "settled calls stay on the lease until it syncs"
    assert window.reserved_usd >= PER_CALL * lease_book.LEASE_CALLS - PER_CALL
    assert len(any_ledger.costs.entries()) == 3
    flush_leases()
    window = _window(any_ledger, "lazy")
    assert window.spent_usd == PER_CALL * 3
    assert window.reserved_usd == 0


@pytest.mark.parametrize("lease_seconds", ["1", "0"], ids=["leases", "per-call"])
def test_budget_is_spent_to_the_last_call_and_never_beyond(
    any_ledger: Ledger, monkeypatch: pytest.MonkeyPatch, lease_seconds: str
) -> None:
    """With or without leases, exactly the calls that fit are made; the next is refused."""
    monkeypatch.setenv(LEASE_ENV, lease_seconds)
    budget = Budget(PER_CALL * 40 + Decimal("0.0001"), scope="global", name="exact")
    made = 0
    for _ in range(60):
        try:
            _call(budget)
        except BudgetExceeded:
            break
        made += 1
    assert made == 40, "every call that fits is made, the first that does not is refused"
    flush_leases()
    window = _window(any_ledger, "exact")
    assert window.spent_usd == PER_CALL * 40
    assert window.reserved_usd == 0


def test_a_lease_never_takes_more_than_its_share_of_what_is_left(any_ledger: Ledger) -> None:
    """Opening and growing a lease: at most 1/share of limit - spent - reserved."""
    costs = any_ledger.costs
    request = HoldRequest("share|global=*", START, None, Decimal(1), Decimal(10))
    opened = costs.open_lease(request, minimum_usd=Decimal(0), share=4, owner="test")
    assert opened.lease_id is not None
    assert opened.granted_usd == Decimal("0.25")
    # The holder spent 0.2 of it in one call, then syncs asking for more.
    entry = NewCostEntry(provider="openai", model="gpt-4o-mini", cost_usd=Decimal("0.2"))
    charge = LeaseCharge(opened.lease_id, opened.window_id, Decimal("0.2"), via_entry=True)
    costs.settle([], entry, [charge])
    synced = costs.sync_lease(
        opened.lease_id, request, entries_usd=Decimal("0.2"), want_usd=Decimal(10), share=1
    )
    # spent 0.2, the lease keeps 0.05: 0.75 is left, and no more may be granted.
    assert synced.charged_usd == Decimal("0.2")
    assert synced.granted_usd == Decimal("0.75")
    assert synced.state is not None
    assert synced.state.spent_usd + synced.state.reserved_usd == Decimal(1)


def test_a_dead_holders_lease_is_expired_with_what_it_spent(any_ledger: Ledger) -> None:
    """A process that dies holding a lease: its calls are charged, the rest is freed."""
    budget = Budget(Decimal(10), scope="global", name="orphan")
    for _ in range(3):
        _call(budget)
    lease_book._forget_after_fork()  # this process now knows nothing of the lease: as if dead
    assert _window(any_ledger, "orphan").reserved_usd > 0
    now = utcnow()
    assert any_ledger.costs.expire_stale(now, leases_older_than=now - timedelta(seconds=30)) == 0
    assert any_ledger.costs.expire_stale(now, leases_older_than=now + timedelta(seconds=1)) == 1
    window = _window(any_ledger, "orphan")
    assert window.spent_usd == PER_CALL * 3
    assert window.reserved_usd == 0


def test_a_call_in_flight_when_its_lease_was_expired_is_charged_once(any_ledger: Ledger) -> None:
    """A stalled holder whose lease was expired: its late call is charged to the window
    directly, its next call opens a new lease, nothing is counted twice."""
    budget = Budget(Decimal(10), scope="global", name="stalled")
    _call(budget)
    with metered_call(
        "openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000, budgets=[budget]
    ) as late:
        now = utcnow()  # meanwhile another process expires the lease
        assert any_ledger.costs.expire_stale(now, leases_older_than=now + timedelta(seconds=1))
        late.settle(input_tokens=1000, output_tokens=1000)
    assert _window(any_ledger, "stalled").spent_usd == PER_CALL * 2
    _call(budget)
    flush_leases()
    window = _window(any_ledger, "stalled")
    assert window.spent_usd == PER_CALL * 3
    assert window.spent_usd == sum(e.cost_usd for e in any_ledger.costs.entries())
    assert window.reserved_usd == 0


def test_an_idle_lease_is_given_back_without_being_asked(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease keeper returns an idle lease's money and charges its spend by itself."""
    monkeypatch.setenv(LEASE_ENV, "0.2")
    _call(Budget(Decimal(10), scope="global", name="idle"))
    deadline = time.monotonic() + 5
    while _window(ledger, "idle").reserved_usd and time.monotonic() < deadline:
        time.sleep(0.05)
    window = _window(ledger, "idle")
    assert window.reserved_usd == 0
    assert window.spent_usd == PER_CALL


def test_threshold_alerts_are_not_delayed_by_a_lease(ledger: Ledger) -> None:
    """Crossing a threshold on a lease syncs it at once: the alert fires, once."""
    budget = Budget(PER_CALL * 100, scope="global", name="watched", alert_thresholds=(0.05,))
    for _ in range(6):
        _call(budget)
    fired = [e for e in ledger.audit.recent(event_prefix="budget.threshold")]
    assert len(fired) == 1
    assert fired[0].payload["budget"] == "watched"
    assert Decimal(fired[0].payload["spent_usd"]) >= PER_CALL * 5


RACY = HoldRequest(
    "racy|global=*", datetime(1970, 1, 1, tzinfo=UTC), None, Decimal(1), Decimal("0.5")
)


def _another_hold(ledger: Ledger) -> Callable[[], object]:
    """Another caller's hold on half the budget, and how it gives it back."""
    ids = ledger.costs.reserve([RACY])
    assert isinstance(ids, list)
    return lambda: ledger.costs.release(ids)


def _another_processes_lease(ledger: Ledger) -> Callable[[], object]:
    """Another process's lease on half the budget, and how it gives it back."""
    lease = ledger.costs.open_lease(RACY, minimum_usd=RACY.amount_usd, share=1, owner="elsewhere:1")
    assert lease.lease_id is not None
    return lambda: ledger.costs.sync_lease(
        lease.lease_id, RACY, give_back_usd=lease.held_usd, close=True
    )


@pytest.mark.parametrize(
    ("lease_seconds", "holder", "given_back"),
    [
        ("0", _another_hold, "before the refusal's state is read"),
        ("10", _another_hold, "before the refusal's state is read"),
        ("10", _another_processes_lease, "after the refusal's state is read"),
    ],
    ids=["hold-on-window", "hold-with-leases-on", "other-process-lease"],
)
def test_a_call_refused_just_before_money_came_back_is_held_not_refused(
    any_ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    lease_seconds: str,
    holder: Callable[[Ledger], Callable[[], object]],
    given_back: str,
) -> None:
    """Money given back while a refusal is judged: the call is held, not refused on
    figures of two moments (a refusal and the money that was to come back)."""
    monkeypatch.setenv(LEASE_ENV, lease_seconds)
    give_back = holder(any_ledger)
    read_state = any_ledger.costs.window
    pending = [give_back]

    def racing(budget_key: str, window_start: datetime):  # type: ignore[no-untyped-def]
        if pending and given_back.startswith("before"):
            pending.pop()()
        state = read_state(budget_key, window_start)
        if pending:
            pending.pop()()
        return state

    monkeypatch.setattr(any_ledger.costs, "window", racing)
    _input_only_call(4_000_000, "racy")  # $0.60: fits only once the other half is back
    assert not pending, "the money came back while the call was judged"
    flush_leases()
    window = _window(any_ledger, "racy")
    assert window.spent_usd == Decimal("0.6")
    assert window.reserved_usd == 0


_HOLDER = """
import os, sys, time
from decimal import Decimal
os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = sys.argv[1]
os.environ["PREFECT_INTEGRATIONS_WFLO_COSTS_BUDGET_LEASE_SECONDS"] = "0.3"
from wflo_prefect.costs import Budget, metered_call
budget = Budget(Decimal(1), scope="global", name="shared")
with metered_call("openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000,
                  budgets=[budget]) as call:
    call.settle(input_tokens=1000, output_tokens=1000)
print("leased", flush=True)
time.sleep(120)
"""


def test_a_call_waits_for_another_processes_idle_lease_instead_of_being_refused(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call that fits only once another process's lease comes back waits for it."""
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), ledger.engine.url.render_as_string(hide_password=False)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "leased"
        window = _window(ledger, "shared")
        held_elsewhere = window.reserved_usd
        assert held_elsewhere > PER_CALL, "the other process holds a lease"
        # This side waits up to two of its lease times and a bit (20.5 s here); the
        # holder gives its idle lease back after 0.3 s, however busy the machine is.
        monkeypatch.setenv(LEASE_ENV, "10")
        # Fits only if the other process's lease is given back: 1 - spent - a little.
        _input_only_call(int((Decimal(1) - PER_CALL * 2) / Decimal("0.00000015")), "shared")
        flush_leases()
        window = _window(ledger, "shared")
        assert window.spent_usd <= Decimal(1)
        assert window.reserved_usd == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_call_on_a_lease_and_on_a_window_at_once_is_charged_to_both(
    any_ledger: Ledger,
) -> None:
    """Several budgets: a roomy one held on its lease, a nearly spent one on its window."""
    roomy = Budget(Decimal(10), scope="global", name="roomy")
    tight = Budget(PER_CALL * 3, scope="global", name="tight")
    secondary = Budget(Decimal(10), scope="tag", scope_value="x", name="unused")
    for _ in range(3):
        with metered_call(
            "openai",
            "gpt-4o-mini",
            input_tokens=1000,
            max_output_tokens=1000,
            budgets=[roomy, tight, secondary],
        ) as call:
            assert len(call.hold.slices) == 1, "the tight budget is held on its window"
            assert len(call.hold.reservation_ids) == 1
            call.settle(input_tokens=1000, output_tokens=1000)
    with pytest.raises(BudgetExceeded) as refused:
        _call_on([roomy, tight])
    assert refused.value.budget_name == "tight"
    flush_leases()
    for name in ("roomy", "tight"):
        window = _window(any_ledger, name)
        assert window.spent_usd == PER_CALL * 3, name
        assert window.reserved_usd == 0, name
    assert len(any_ledger.costs.entries()) == 3


def _call_on(budgets: list[Budget]) -> None:
    with metered_call(
        "openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000, budgets=budgets
    ) as call:
        call.settle(input_tokens=1000, output_tokens=1000)


def test_a_dead_holder_of_two_leases_loses_nothing_on_either(any_ledger: Ledger) -> None:
    """Two leased budgets per call (one charged through the entry, one on its lease row):
    when the holder dies, expiring both charges each exactly what was spent."""
    first = Budget(Decimal(10), scope="global", name="first")
    second = Budget(Decimal(10), scope="global", name="second")
    for _ in range(3):
        _call_on([first, second])
    lease_book._forget_after_fork()
    now = utcnow()
    assert any_ledger.costs.expire_stale(now, leases_older_than=now + timedelta(seconds=1)) == 2
    for name in ("first", "second"):
        window = _window(any_ledger, name)
        assert window.spent_usd == PER_CALL * 3, name
        assert window.reserved_usd == 0, name


def test_threads_sharing_one_lease_never_overspend(any_ledger: Ledger) -> None:
    """8 threads of one process spend one budget to its limit through one lease."""
    from concurrent.futures import ThreadPoolExecutor

    budget = Budget(PER_CALL * 100, scope="global", name="threads")

    def spend(_: int) -> tuple[int, int]:
        settled = refused = 0
        for _ in range(30):
            try:
                _call(budget)
                settled += 1
            except BudgetExceeded:
                refused += 1
        return settled, refused

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(spend, range(8)))
    settled = sum(r[0] for r in results)
    assert sum(r[1] for r in results) == 240 - settled
    assert settled == 100, "the budget is used up to its last call, and never beyond"
    flush_leases()
    window = _window(any_ledger, "threads")
    assert window.spent_usd == PER_CALL * settled
    assert window.spent_usd <= budget.max_usd
    assert window.reserved_usd == 0
    assert len(any_ledger.costs.entries()) == settled
