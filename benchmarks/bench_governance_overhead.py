"""The cost of governance itself: governed tasks against plain Prefect tasks.

One process, one Prefect API (a temporary local server), one SQLite ledger. Each
round runs a flow of N sequential tasks twice, plain and governed, in alternating
order, and the ratio of the medians is reported. Aim: at most 1.10x.

    .venv/bin/python benchmarks/bench_governance_overhead.py [--tasks 40] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

_home = tempfile.mkdtemp(prefix="wflo-bench-")
os.environ.setdefault("PREFECT_HOME", _home)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.setdefault(
    "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL", f"sqlite:///{Path(_home) / 'ledger.db'}"
)

from prefect import flow, task  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from wflo_prefect import AuditLog, Policy, governed_flow, governed_task  # noqa: E402


def work(x: int) -> int:
    """A small piece of work, the same in both variants."""
    return sum(i * i for i in range(200)) + x


plain_task = task(work, name="work")
governed = governed_task(work, name="work")
RULE = Policy(condition="operation == 'delete' && params.x > 1000", actions=[AuditLog()])
with_policy = governed_task(work, name="work", operation="compute", policies=[RULE])


@flow
def plain_flow(n: int) -> int:
    return sum(plain_task(i) for i in range(n))


@governed_flow
def governed_flow_(n: int) -> int:
    return sum(governed(i) for i in range(n))


@governed_flow
def policy_flow(n: int) -> int:
    return sum(with_policy(i) for i in range(n))


def timed(fn: object, n: int) -> float:
    start = time.perf_counter()
    fn(n)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    variants = {
        "plain prefect": plain_flow,
        "governed": governed_flow_,
        "+ a CEL policy": policy_flow,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with prefect_test_harness(server_startup_timeout=120):
        for fn in variants.values():  # warm up every path (imports, first API calls, migrations)
            timed(fn, 2)
        order = list(variants.items())
        for i in range(args.rounds):
            for name, fn in order if i % 2 == 0 else reversed(order):
                times[name].append(timed(fn, args.tasks))
    base = statistics.median(times["plain prefect"])
    print(f"flow of {args.tasks} tasks, {args.rounds} rounds (median)")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:15}: {median * 1000:8.1f} ms  ({median / args.tasks * 1000:.2f} ms/task)"
            f"  ratio {median / base:.3f}x"
        )
    print("  aim: governed / plain <= 1.10x")


if __name__ == "__main__":
    main()
