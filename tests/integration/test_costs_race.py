"""Many processes spending from one budget never overrun it (PostgreSQL and SQLite)."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from costs_race_worker import LIMIT, spend

from wflo_prefect.ledger.models import utcnow
from wflo_prefect.testing import temporary_ledger

PROCESSES = 20
CALLS_EACH = 10


def _race(url: str, *, lease_seconds: str = "1", killed: bool = False) -> None:
    """20 processes race for one budget: settled total <= limit, each call recorded once.

    The processes come from a ``forkserver``: like ``spawn`` they share nothing with
    this process (no connections, no threads), but they fork from one server that
    imported wflo once, instead of each spending ~3 s of CPU importing Prefect.
    With ``killed``, the processes are killed with their budget leases still open;
    expiring the abandoned holds must then charge what they spent and free the rest.
    """
    with temporary_ledger(url) as ledger:
        ledger.ensure_schema()  # migrate once, before the processes start
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["wflo_prefect.costs", "costs_race_worker"])
        # Killed processes spend from a roomy budget, so their leases are still open.
        limit = Decimal(1) if killed else LIMIT
        args = [
            (url, CALLS_EACH, seed, lease_seconds, not killed, str(limit))
            for seed in range(PROCESSES)
        ]
        with context.Pool(PROCESSES) as pool:
            results = pool.starmap(spend, args)
        # Leaving the pool kills its processes (SIGTERM: no exit handlers run).
        if killed:
            [window] = ledger.costs.windows("race|")
            assert window.reserved_usd > 0, "the killed processes left leases behind"
            now = utcnow()
            assert ledger.costs.expire_stale(now, leases_older_than=now + timedelta(seconds=1))
        settled = sum(r[0] for r in results)
        refused = sum(r[1] for r in results)
        assert settled + refused == PROCESSES * CALLS_EACH
        if not killed:
            assert refused > 0, "the budget must be contended for the test to mean anything"
        [window] = ledger.costs.windows("race|")
        entries = ledger.costs.entries()
        assert len(entries) == settled, "every settled call is recorded exactly once"
        assert window.spent_usd == sum((e.cost_usd for e in entries), Decimal(0))
        assert window.spent_usd <= limit
        assert window.reserved_usd == 0, "no hold is left behind"


@pytest.mark.postgres
def test_concurrent_processes_never_overspend_a_postgres_budget(postgres_url: str) -> None:
    """20 processes (as on many machines) share one PostgreSQL budget without overspending."""
    _race(postgres_url)


def test_concurrent_processes_never_overspend_a_sqlite_budget(tmp_path: Path) -> None:
    """20 processes on one machine share one SQLite budget without overspending."""
    _race(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.mark.postgres
def test_each_call_held_on_the_budget_row_never_overspends(postgres_url: str) -> None:
    """With leases turned off, every call holds its worst case on the window row itself."""
    _race(postgres_url, lease_seconds="0")


@pytest.mark.postgres
def test_killed_processes_leave_nothing_lost_or_held(postgres_url: str) -> None:
    """Processes killed holding leases: their pending spend is charged, the rest freed."""
    _race(postgres_url, lease_seconds="600", killed=True)
