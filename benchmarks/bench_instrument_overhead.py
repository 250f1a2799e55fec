"""Per-call overhead of instrument() against the raw client, on a local OpenAI server.

The same official `openai` client calls the local fake OpenAI server (tests/fakes,
run in its own process so it does not compete with the client for the GIL, as a
real provider would not) raw and instrumented, in alternating rounds, with one
active budget so every instrumented call estimates, holds, sends, settles and
writes its cost entry (SQLite ledger by default; --ledger postgresql for the
PostgreSQL test server).
Reports the median per-call time of each, the ratio and the time added per call.
Aim: under 1 ms added per call.

    .venv/bin/python benchmarks/bench_instrument_overhead.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

_home = tempfile.mkdtemp(prefix="wflo-bench-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_HOME", _home)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

POSTGRES = os.environ.get(
    "WFLO_BENCH_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)
MESSAGES = [{"role": "user", "content": "Give me one sentence about budgets."}]


def _per_call(client: object, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        client.chat.completions.create(  # type: ignore[attr-defined]
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=100
        )
    return (time.perf_counter() - start) / calls


def _serve(conn: object) -> None:
    """Run the fake OpenAI server in this (child) process until told to stop."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        conn.send(server.url)  # type: ignore[attr-defined]
        conn.recv()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ledger", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()

    admin = name = None
    if args.ledger == "sqlite":
        url = f"sqlite:///{Path(_home) / 'ledger.db'}"
    else:
        import sqlalchemy as sa

        name = f"wflo_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = url

    import multiprocessing

    import openai

    from wflo_prefect import Budget, instrument
    from wflo_prefect.costs import use_budgets
    from wflo_prefect.ledger import get_ledger, reset_ledger_cache

    raw_times: list[float] = []
    metered_times: list[float] = []
    try:
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
        server.start()
        try:
            base = f"{parent.recv()}/v1"
            raw = openai.OpenAI(base_url=base, api_key="sk-bench", max_retries=0)
            metered = instrument(openai.OpenAI(base_url=base, api_key="sk-bench", max_retries=0))
            with use_budgets(Budget(Decimal("1000000"), scope="global", name="bench")):
                _per_call(raw, 20)
                _per_call(metered, 20)  # warm up: migrations, price data, connections
                for _ in range(args.rounds):
                    raw_times.append(_per_call(raw, args.calls))
                    metered_times.append(_per_call(metered, args.calls))
            recorded = len(get_ledger().costs.entries())
        finally:
            parent.send("stop")
            server.join(10)
    finally:
        reset_ledger_cache()
        if admin is not None:
            import sqlalchemy as sa

            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    raw_ms = statistics.median(raw_times) * 1000
    metered_ms = statistics.median(metered_times) * 1000
    print(f"ledger: {args.ledger}; {args.rounds} rounds x {args.calls} calls; {recorded} recorded")
    print(f"raw client          {raw_ms:7.3f} ms per call")
    print(f"instrumented client {metered_ms:7.3f} ms per call")
    print(f"added per call      {metered_ms - raw_ms:7.3f} ms")
    print(f"ratio               {metered_ms / raw_ms:7.2f}x")


if __name__ == "__main__":
    main()
