"""Ledger throughput with budget reservations, with concurrent writer processes.

Each writer process makes metered calls against one shared budget: hold the
worst case before the call, settle the actual cost (and write the cost entry),
as `instrument()` does for every LLM call. The budget is set to 60 % of
the total worst-case demand, so writers contend for its last dollars; the
overspend (settled total above the limit) is reported and must be zero.
Baseline, in the same run: the same writers only writing cost entries (no
budget). Two variants: with budget leases (the default: each process holds a
slice of the budget and holds calls on it in memory) and with each call held on
the budget's window row (``budget_lease_seconds=0``). Writers warm up (connect,
load prices) and then start together; calls/s is over the span of the timed
calls. Run on SQLite and on PostgreSQL (WFLO_BENCH_POSTGRES_URL, default the
test server).

    .venv/bin/python benchmarks/bench_ledger_reservations.py [--writers 8] [--calls 150]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="wflo-bench-"))

POSTGRES = os.environ.get(
    "WFLO_BENCH_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)
WORST_CASE_TOKENS = (1000, 1000)  # input, max output
WARM_UP_MODEL = "gpt-4o"


_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _writer(
    url: str, calls: int, limit: str, mode: str, seed: int, lease_seconds: str
) -> tuple[int, int, float, float]:
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = url
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_POOL_SIZE"] = "1"
    os.environ["PREFECT_INTEGRATIONS_WFLO_COSTS_BUDGET_LEASE_SECONDS"] = lease_seconds
    import random

    from wflo_prefect.costs import (
        Budget,
        BudgetExceeded,
        flush_leases,
        metered_call,
        record_llm_usage,
    )
    from wflo_prefect.ledger import get_ledger

    get_ledger().ensure_schema()
    rng = random.Random(seed)
    budget = Budget(Decimal(limit), scope="global", name="bench")
    # Warm up outside the timed part: connection, price data, statements, budget
    # registration. The warm-up entry is for another model, left out of the totals.
    record_llm_usage("openai", WARM_UP_MODEL, 1, 1, budgets=[])
    with metered_call(
        "openai", "gpt-4o-mini", input_tokens=1, max_output_tokens=1, budgets=[budget]
    ):
        pass  # not settled: released
    flush_leases()
    settled = refused = 0
    _barrier.wait()
    start = time.time()
    for _ in range(calls):
        output = rng.randint(500, WORST_CASE_TOKENS[1])
        if mode == "baseline":
            record_llm_usage("openai", "gpt-4o-mini", WORST_CASE_TOKENS[0], output, budgets=[])
            settled += 1
            continue
        try:
            with metered_call(
                "openai",
                "gpt-4o-mini",
                input_tokens=WORST_CASE_TOKENS[0],
                max_output_tokens=WORST_CASE_TOKENS[1],
                budgets=[budget],
            ) as call:
                call.settle(input_tokens=WORST_CASE_TOKENS[0], output_tokens=output)
                settled += 1
        except BudgetExceeded:
            refused += 1
    flush_leases()  # the spend is on the window when the writer is done
    return settled, refused, start, time.time()


def _run(
    url: str, writers: int, calls: int, mode: str, limit: Decimal, lease_seconds: str
) -> dict[str, float]:
    """Run the writers together (a barrier after their warm-up); calls/s over the span."""
    context = multiprocessing.get_context("forkserver")
    barrier = context.Barrier(writers)
    with context.Pool(writers, initializer=_init, initargs=(barrier,)) as pool:
        results = pool.starmap(
            _writer,
            [(url, calls, str(limit), mode, seed, lease_seconds) for seed in range(writers)],
        )
    settled = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    wall = max(r[3] for r in results) - min(r[2] for r in results)
    return {"settled": settled, "refused": refused, "wall": wall}


def _fresh_url(backend: str, tmp: Path) -> tuple[str, object]:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'ledger-{uuid.uuid4().hex[:6]}.db'}", None
    import sqlalchemy as sa

    name = f"wflo_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    return url, (admin, name)


def _drop(handle: object) -> None:
    if handle is None:
        return
    import sqlalchemy as sa

    admin, name = handle  # type: ignore[misc]
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _overspend(url: str, limit: Decimal) -> tuple[Decimal, Decimal, int, Decimal]:
    from wflo_prefect.ledger import Ledger

    ledger = Ledger.from_url(url)
    try:
        [window] = ledger.costs.windows("bench|")
        entries = [e for e in ledger.costs.entries() if e.model != WARM_UP_MODEL]
        total = sum((e.cost_usd for e in entries), Decimal(0))
        assert window.spent_usd == total, f"spent {window.spent_usd} != entries {total}"
        over = max(window.spent_usd - limit, Decimal(0))
        return window.spent_usd, over, len(entries), window.reserved_usd
    finally:
        ledger.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--calls", type=int, default=150, help="calls per writer")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    multiprocessing.get_context("forkserver").set_forkserver_preload(["wflo_prefect.costs"])
    from wflo_prefect.costs import estimate_cost
    from wflo_prefect.ledger import Ledger

    worst = estimate_cost(
        "openai",
        "gpt-4o-mini",
        input_tokens=WORST_CASE_TOKENS[0],
        output_tokens=WORST_CASE_TOKENS[1],
    )
    limit = (worst * args.writers * args.calls * Decimal("0.6")).quantize(Decimal("0.000001"))
    total = args.writers * args.calls
    print(
        f"{args.writers} writer processes x {args.calls} calls; contended budget ${limit} "
        "(60 % of the worst-case demand); roomy budget 100 times that"
    )
    header = ("backend", "variant", "calls/s", "settled", "refused", "overspend")
    print("{:<11} {:<30} {:>9} {:>8} {:>8} {:>10}".format(*header))
    roomy = limit * 100
    variants = (
        ("record only (baseline)", "baseline", "0", roomy),
        ("leases, budget not reached", "reserve", "1", roomy),
        ("leases, contended to limit", "reserve", "1", limit),
        ("per call, budget not reached", "reserve", "0", roomy),
        ("per call, contended to limit", "reserve", "0", limit),
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            rates = {}
            for label, mode, lease_seconds, budget in variants:
                url, handle = _fresh_url(backend, Path(tmp))
                try:
                    Ledger.from_url(url).ensure_schema()
                    result = _run(url, args.writers, args.calls, mode, budget, lease_seconds)
                    rate = total / result["wall"]
                    rates[label] = rate
                    over = "-"
                    if mode != "baseline":
                        _spent, overspend, entries, reserved = _overspend(url, budget)
                        assert entries == result["settled"], "each settled call recorded once"
                        assert reserved == 0, "no hold is left behind"
                        over = f"${overspend}"
                    print(
                        f"{backend:<11} {label:<30} {rate:>9.0f} {result['settled']:>8.0f} "
                        f"{result['refused']:>8.0f} {over:>10}"
                    )
                finally:
                    _drop(handle)
            base = rates["record only (baseline)"]
            for label, *_rest in variants[1:]:
                print(f"{backend:<11} ratio {label} / record only: {rates[label] / base:.2f}x")


if __name__ == "__main__":
    main()
