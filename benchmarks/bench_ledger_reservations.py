"""Ledger throughput with budget reservations, with concurrent writer processes.

Each writer process makes metered calls against one shared budget: reserve the
worst case (one conditional UPDATE), settle the actual cost (and write the cost
entry), as `instrument()` does for every LLM call. The budget is set to 60 % of
the total worst-case demand, so writers contend for its last dollars; the
overspend (settled total above the limit) is reported and must be zero.
Baseline, in the same run: the same writers only writing cost entries (no
budget). Run on SQLite and on PostgreSQL (WFLO_BENCH_POSTGRES_URL, default the
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

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="wflo-bench-"))

POSTGRES = os.environ.get(
    "WFLO_BENCH_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)
WORST_CASE_TOKENS = (1000, 1000)  # input, max output


def _writer(url: str, calls: int, limit: str, mode: str, seed: int) -> tuple[int, int, float]:
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = url
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_POOL_SIZE"] = "1"
    import random

    from wflo_prefect.costs import Budget, BudgetExceeded, metered_call, record_llm_usage
    from wflo_prefect.ledger import get_ledger

    get_ledger().ensure_schema()
    rng = random.Random(seed)
    budget = Budget(Decimal(limit), scope="global", name="bench")
    settled = refused = 0
    start = time.perf_counter()
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
    return settled, refused, time.perf_counter() - start


def _run(url: str, writers: int, calls: int, mode: str, limit: Decimal) -> dict[str, object]:
    context = multiprocessing.get_context("forkserver")
    with context.Pool(writers) as pool:
        pool.map(abs, range(writers))  # start the processes before timing
        start = time.perf_counter()
        results = pool.starmap(
            _writer, [(url, calls, str(limit), mode, seed) for seed in range(writers)]
        )
        wall = time.perf_counter() - start
    settled = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
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


def _overspend(url: str, limit: Decimal) -> tuple[Decimal, Decimal, int]:
    from wflo_prefect.ledger import Ledger

    ledger = Ledger.from_url(url)
    try:
        [window] = ledger.costs.windows("bench|")
        entries = ledger.costs.entries()
        return window.spent_usd, max(window.spent_usd - limit, Decimal(0)), len(entries)
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
    print(f"{args.writers} writer processes x {args.calls} calls; budget ${limit} (60 % of demand)")
    header = ("backend", "variant", "calls/s", "settled", "refused", "overspend")
    print("{:<11} {:<22} {:>9} {:>8} {:>8} {:>10}".format(*header))
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            rates = {}
            for mode in ("baseline", "reserve+settle"):
                url, handle = _fresh_url(backend, Path(tmp))
                try:
                    Ledger.from_url(url).ensure_schema()
                    result = _run(url, args.writers, args.calls, mode, limit)
                    rate = total / float(result["wall"])  # type: ignore[arg-type]
                    rates[mode] = rate
                    over = "-"
                    if mode != "baseline":
                        _spent, overspend, entries = _overspend(url, limit)
                        assert entries == result["settled"], "each settled call recorded once"
                        over = f"${overspend}"
                    print(
                        f"{backend:<11} {mode:<22} {rate:>9.0f} {result['settled']:>8} "
                        f"{result['refused']:>8} {over:>10}"
                    )
                finally:
                    _drop(handle)
            ratio = rates["reserve+settle"] / rates["baseline"]
            print(f"{backend:<11} ratio reserve+settle / record-only: {ratio:.2f}x")


if __name__ == "__main__":
    main()
