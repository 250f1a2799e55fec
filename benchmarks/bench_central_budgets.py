"""The cost of central budgets: reading the saved blocks once per governed flow run.

Against a started `prefect server` (its own process, SQLite), a governed flow of one
task is run with central budgets off (the baseline,
``PREFECT_INTEGRATIONS_WFLO_COSTS_CENTRAL_BUDGETS=false``), on with no block saved,
and on with N blocks saved (one matching the run, the rest for other tags), in
alternating order; medians per flow run beside the ratio. Then, in process: one
read of the N blocks (the API call a run makes), and the per-task cost once the
run's match is cached (what every governed task pays).

    .venv/bin/python benchmarks/bench_central_budgets.py [--rounds 15] [--blocks 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _prefect_server import quiet_console, started_server

_FLAG = "PREFECT_INTEGRATIONS_WFLO_COSTS_CENTRAL_BUDGETS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--blocks", type=int, default=20)
    args = parser.parse_args()
    quiet_console()

    with started_server() as api:
        from prefect import tags
        from prefect.client.orchestration import get_client

        from wflo_prefect import WfloCentralBudget, governed_flow, governed_task
        from wflo_prefect.costs.attribution import Attribution, current_attribution
        from wflo_prefect.costs.central import (
            central_budgets_for,
            clear_central_cache,
            read_central_budgets,
        )
        from wflo_prefect.testing import temporary_ledger

        @governed_task
        def step(x: int) -> int:
            return x + 1

        @governed_flow
        def one_task_flow() -> int:
            return step(1)

        def delete_all() -> None:
            with get_client(sync_client=True) as client:
                for item in read_central_budgets():
                    document = client.read_block_document_by_name(item.name, "wflo-central-budget")
                    client.delete_block_document(document.id)

        def save_blocks(count: int) -> None:
            WfloCentralBudget(max_usd=Decimal("1000"), applies_to="tag:bench").save(
                "bench-matching", overwrite=True
            )
            for i in range(count - 1):
                WfloCentralBudget(max_usd=Decimal("1000"), applies_to=f"tag:other-{i}").save(
                    f"bench-other-{i}", overwrite=True
                )

        def run(variant: str) -> float:
            os.environ[_FLAG] = "false" if variant == "off" else "true"
            start = time.perf_counter()
            with tags("bench"):
                state = one_task_flow(return_state=True)
            elapsed = time.perf_counter() - start
            assert state.is_completed(), state
            return elapsed

        print(f"Prefect API: started server at {api}")
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        results: dict[str, list[float]] = {}
        with temporary_ledger():
            delete_all()
            phases = [("off", 0), ("on, no block", 0), (f"on, {args.blocks} blocks", args.blocks)]
            for name, count in phases:
                delete_all()
                if count:
                    save_blocks(count)
                samples: list[float] = []
                run(name.split(",")[0])  # warm up
                for _ in range(args.rounds):
                    samples.append(run("off" if name == "off" else "on"))
                results[name] = samples

            base = statistics.median(results["off"])
            print(f"\ngoverned flow run of one task, {args.rounds} runs each, medians")
            for name, samples in results.items():
                median = statistics.median(samples)
                print(
                    f"  central budgets {name:16} {median * 1000:7.1f} ms per run "
                    f"{median / base:6.3f}x  (+{(median - base) * 1000:5.1f} ms)"
                )

            os.environ[_FLAG] = "true"
            reads = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                found = read_central_budgets()
                reads.append(time.perf_counter() - start)
            assert len(found) == args.blocks
            print(
                f"\none read of {args.blocks} central budget blocks: "
                f"{statistics.median(reads) * 1000:.2f} ms (median of {args.rounds})"
            )

            who = Attribution(flow_run_id="bench-run", flow_name="bench", tags=("bench",))
            clear_central_cache()
            central_budgets_for(who)  # fills the cache for the run
            n = 20_000
            start = time.perf_counter()
            for _ in range(n):
                central_budgets_for(who)
            hit = (time.perf_counter() - start) / n
            start = time.perf_counter()
            for _ in range(n):
                current_attribution()
            attribution = (time.perf_counter() - start) / n
            print(
                f"per governed task once the run's match is cached: lookup {hit * 1e6:.2f} µs "
                f"+ attribution {attribution * 1e6:.2f} µs (outside a run context)"
            )
            delete_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
