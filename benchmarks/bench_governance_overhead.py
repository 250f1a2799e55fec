"""The cost of governance itself: governed tasks against plain Prefect tasks.

The baseline is what a user runs: a started `prefect server` (its own process, SQLite),
not ``prefect_test_harness``. Each round runs a flow of N sequential tasks per variant
(plain Prefect; governed on a SQLite ledger; governed on a PostgreSQL ledger), in
alternating order, for a trivial task body and a realistic one (~3 ms of JSON and
hashing). Per-task figures time the flow's task loop from inside the flow (a flow
run's fixed start and end, ~1 s on Prefect's tick, are printed apart as whole-run
times). Medians per task are printed in absolute terms beside the ratio of the
medians and the median of each round's ratio ("paired": every round runs the variants
back to back, so it cancels the machine's slower and faster spells), with a 90%
bootstrap interval of that median: on a noisy machine, run more rounds until the
interval is narrow enough to say which side of the aim the figure is on.
Aim: governed / plain <= 1.10x per task.

    .venv/bin/python benchmarks/bench_governance_overhead.py [--tasks 100] [--rounds 5]
        [--postgres-url URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _prefect_server import quiet_console, started_server

POSTGRES_URL = os.environ.get(
    "WFLO_TEST_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)
DOCUMENT = {"items": [{"id": i, "name": f"item-{i}", "tags": ["a", "b", "c"]} for i in range(150)]}


#: (wall, process CPU, garbage-collector pauses) of each flow's task loop, timed inside the flow.
LOOP: list[tuple[float, float, float]] = []
_GC_PAUSES: list[float] = []
_gc_started = 0.0


def _gc_pause(phase: str, info: dict[str, int]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _GC_PAUSES.append(time.perf_counter() - _gc_started)


@contextmanager
def _timed_loop() -> Iterator[None]:
    """Time the tasks themselves: a flow run's fixed start and end are reported apart.

    Prefect ends a flow run on a ~1 s tick here (a flow of 3 or of 100 trivial tasks
    both take ~1.08 s), so whole-run time divided by the task count moves in steps
    of 10 ms per task whenever the tasks cross a tick, whatever governs them.

    Every loop starts from a full collection: the collector's full passes over
    Prefect's heap (~100 ms each here, a few per thousand tasks) otherwise land in
    whichever variant's loop happens to be running, ~0.9 ms per task on a round of
    150. Collections inside the loop stay in its time, and their pauses are printed.
    """
    gc.collect()
    _GC_PAUSES.clear()
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        LOOP.append((time.perf_counter() - start, time.process_time() - start_cpu, sum(_GC_PAUSES)))


def paired_interval(ratios: list[float], level: float = 0.90) -> tuple[float, float]:
    """A bootstrap interval of the median of ``ratios`` (fixed seed: reruns agree)."""
    draw = random.Random(0)
    medians = sorted(statistics.median(draw.choices(ratios, k=len(ratios))) for _ in range(2000))
    tail = (1 - level) / 2
    return medians[int(tail * len(medians))], medians[int((1 - tail) * len(medians)) - 1]


def trivial(x: int) -> int:
    """A task that does nothing: the cost of the task machinery alone."""
    return x


def realistic(x: int) -> int:
    """About 3 ms of real work: round-trip a JSON document and hash it, ten times."""
    digest = b"\0"
    for _ in range(10):
        text = json.dumps(DOCUMENT)
        digest = hashlib.sha256(json.dumps(json.loads(text), sort_keys=True).encode()).digest()
    return digest[0] + x


@contextmanager
def postgres_database(server_url: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the ledger, dropped afterwards (None if unreachable)."""
    import sqlalchemy as sa

    name = f"wflo_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable at {server_url}: {exc.orig}; skipping that variant")
        admin.dispose()
        yield None
        return
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(False)
    finally:
        from wflo_prefect.ledger import reset_ledger_cache

        reset_ledger_cache()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run this process on one CPU and the server on the others (less contention noise)",
    )
    parser.add_argument("--bodies", default="trivial,realistic", help="task bodies to run")
    args = parser.parse_args()
    server_cpus = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        server_cpus = set(cpus[1:])
        os.sched_setaffinity(0, {cpus[0]})
    # Run logs go to the API at Prefect's default level (INFO), as a user's do; only the
    # console stays quiet.
    quiet_console()
    gc.callbacks.append(_gc_pause)

    with started_server(cpus=server_cpus) as api:
        from prefect import flow, task

        from wflo_prefect import governed_flow, governed_task
        from wflo_prefect.testing import temporary_ledger

        def flows(body: Callable[[int], int]) -> dict[str, Callable[[int], int]]:
            plain_task = task(body, name=body.__name__)
            governed = governed_task(body, name=body.__name__)

            @flow(name=f"plain-{body.__name__}")
            def plain_flow(n: int) -> int:
                with _timed_loop():
                    return sum(plain_task(i) for i in range(n))

            @governed_flow(name=f"governed-{body.__name__}")
            def governed_flow_(n: int) -> int:
                with _timed_loop():
                    return sum(governed(i) for i in range(n))

            return {"plain": plain_flow, "governed": governed_flow_}

        with postgres_database(args.postgres_url) as pg_url:
            ledgers: dict[str, str | None] = {"sqlite": None}
            if pg_url is not None and not args.no_postgres:
                ledgers["postgresql"] = pg_url
            print(f"Prefect API: started server at {api}")
            print(f"flow of {args.tasks} sequential tasks, {args.rounds} rounds, medians")
            print(f"load average at start: {os.getloadavg()[0]:.2f}")
            if server_cpus:
                mine = sorted(os.sched_getaffinity(0))
                print(f"pinned: this process on CPUs {mine}, the server on {sorted(server_cpus)}")
            bodies = {"trivial": trivial, "realistic": realistic}
            for body in (bodies[name] for name in args.bodies.split(",")):
                variants = flows(body)
                runs: list[tuple[str, Callable[[int], int], str | None]] = [
                    ("plain prefect", variants["plain"], None)
                ]
                runs += [
                    (f"governed, {db}", variants["governed"], url) for db, url in ledgers.items()
                ]
                times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
                cpu: dict[str, list[float]] = {name: [] for name, _, _ in runs}
                runs_wall: dict[str, list[float]] = {name: [] for name, _, _ in runs}
                paused: dict[str, list[float]] = {name: [] for name, _, _ in runs}
                for round_ in range(args.rounds + 1):  # round 0 warms every path up
                    order = runs if round_ % 2 == 0 else list(reversed(runs))
                    for name, fn, url in order:
                        with temporary_ledger(url):
                            fn(2)
                            start = time.perf_counter()
                            fn(args.tasks)
                            whole = time.perf_counter() - start
                            elapsed, used, collecting = LOOP[-1]
                        if round_:
                            times[name].append(elapsed / args.tasks)
                            cpu[name].append(used / args.tasks)
                            paused[name].append(collecting / args.tasks)
                            runs_wall[name].append(whole)
                print(f"\n{body.__name__}: wall per task in each round, ms (the spread)")
                for name, samples in times.items():
                    print(f"  {name:22} " + " ".join(f"{t * 1000:6.2f}" for t in samples))
                print(f"{body.__name__}: whole flow runs of {args.tasks} tasks (median)")
                for name, samples in runs_wall.items():
                    print(f"  {name:22} {statistics.median(samples) * 1000:8.1f} ms")
                base = statistics.median(times["plain prefect"])
                base_cpu = statistics.median(cpu["plain prefect"])
                print(
                    f"{body.__name__} task body      wall per task   paired [90% interval]"
                    "   process CPU per task        GC pauses per task"
                )
                for name, samples in times.items():
                    median = statistics.median(samples)
                    used = statistics.median(cpu[name])
                    # Each round runs every variant back to back: the median of the
                    # per-round ratios cancels the machine's slower and faster spells.
                    ratios = [s / b for s, b in zip(samples, times["plain prefect"], strict=True)]
                    low, high = paired_interval(ratios)
                    print(
                        f"  {name:22} {median * 1000:6.2f} ms {median / base:6.3f}x"
                        f" {statistics.median(ratios):6.3f}x [{low:5.3f}-{high:5.3f}]"
                        f"   {used * 1000:6.2f} ms (+{(used - base_cpu) * 1000:5.2f}) "
                        f"{used / base_cpu:6.3f}x"
                        f"   {statistics.mean(paused[name]) * 1e6:5.0f} µs"
                    )
            print(
                "\naim: governed / plain <= 1.10x per task (wall). Process CPU is this process's"
                " during the task loop (Prefect client + wflo + the ledger writer thread), not"
                " the server's."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
