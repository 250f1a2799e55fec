"""Scale on `wflo stack`: N concurrent runs waiting at approval gates, approved via the service.

Starts a stack (Prefect server on PostgreSQL with the stack's tuning defaults,
``SERVER_TUNING``; PostgreSQL ledger; approval service with the loopback wake-up off) and:

1. **Gates, paused in-process.** ``--drivers`` processes (workers' stand-ins) start
   ``--runs`` flow runs in total, concurrently (async flows, each paused in-process at
   ``arequire_approval`` with its own approver list), against the stack's API. Reported:
   runs lost (did not complete after approval), submission latency (flow called -> its
   gate reached: run created and started through the API), memory per waiting run (the
   drivers' RSS growth while all wait, / runs), approvals per second through the
   approval service's REST API (``--approvers`` concurrent clients), and
   resume-to-continue (decision request sent -> the flow's next line) at that load.
   Each waiting gate's safety-net poll of its run is ``--fallback-poll`` s (wake-ups
   come from Prefect's events; the poll is what a thousand waiting runs cost the
   server while nothing happens).
2. **Gates, suspended** (``--suspended N``, see ``_suspended.py``): deployed runs on the
   stack's process worker that suspend at their gates (their processes exit), approved
   through the service and started again by the worker.
3. **Budget.** Two processes spend concurrently from one global budget in the stack's
   PostgreSQL ledger until it refuses; reported: spent, limit, overspend (must be 0).

Throughout, ``_sampler.py`` records CPU per process tree (server, drivers, approval
service), PostgreSQL connections and the load average per phase, and the server log
is searched for pool and statement timeouts: the evidence for which resource ran out.

    .venv/bin/python benchmarks/bench_scale.py [--runs 1000] [--drivers 2] [--approvers 8]
        [--suspended 20] [--fallback-poll 120] [--timeout 1800] [--skip-budget]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _sampler import Sampler, count_in_log
from _scale_scripts import DRIVER, SAVE_APPROVERS, SPENDER, WINDOW
from _stack import BIN, POSTGRES_URL, free_port, stack_up
from _suspended import suspended

from wflo_prefect.stack.spec import SERVER_TUNING

KEY = "scale-key-" + uuid.uuid4().hex
#: Process trees the sampler watches (name -> pid); drivers join when started.
PIDS: dict[str, int] = {}
SAMPLER: Sampler | None = None


def _phase(name: str) -> None:
    if SAMPLER is not None:
        SAMPLER.phase = name


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _env(stack_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for line in (stack_dir / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    return env


def _rss_of(pid: int) -> int:
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) * 1024
    if children.exists():
        for child in children.read_text().split():
            total += _rss_of(int(child))
    return total


def _connections(database: str) -> Callable[[], int]:
    """Counts the PostgreSQL connections to the stack's two databases."""
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    query = sa.text("select count(*) from pg_stat_activity where datname in (:a, :b)")

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(query, {"a": database, "b": f"{database}_ledger"}).scalar_one())

    return count


def _drop(database: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in (database, f"{database}_ledger"):
            conn.execute(
                sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname=:n"),
                {"n": name},
            )
            conn.execute(sa.text(f'drop database if exists "{name}"'))
    admin.dispose()


class Driver:
    """One driver process and what it reported."""

    def __init__(self, env: dict[str, str], first: int, count: int) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "python"), "-c", DRIVER, str(first), str(count)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                with self.lock:
                    self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["kind"] == kind]

    def ask_rss(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("rss\n")
        self.process.stdin.flush()


def _inbox(client: httpx.Client, service: str) -> list[dict[str, Any]]:
    answer = client.get(f"{service}/api/approvals", headers={"X-API-Key": KEY})
    return list(answer.json())


def gates(env: dict[str, str], ports: dict[str, int], args: argparse.Namespace) -> None:
    """Phase 1: N runs to their gates, all approved through the service."""
    service = f"http://127.0.0.1:{ports['approvals']}"
    api = f"http://127.0.0.1:{ports['server']}/api"
    client = httpx.Client(timeout=120)
    per = [
        args.runs // args.drivers + (1 if d < args.runs % args.drivers else 0)
        for d in range(args.drivers)
    ]
    started = time.monotonic()
    drivers, first = [], 0
    _phase("submit")
    # Each driver's ledger pool is small: the drivers, the server's pool and the
    # approval service share PostgreSQL's max_connections.
    driver_env = {**env, "PREFECT_INTEGRATIONS_WFLO_LEDGER_POOL_SIZE": str(args.ledger_pool)}
    for count in per:
        drivers.append(Driver(driver_env, first, count))
        PIDS[f"driver{len(drivers)}"] = drivers[-1].process.pid
        first += count
    try:
        _measure(drivers, client, api, service, started, args)
    finally:
        for driver in drivers:
            if driver.process.poll() is None:
                driver.process.kill()


def _measure(
    drivers: list[Driver],
    client: httpx.Client,
    api: str,
    service: str,
    started: float,
    args: argparse.Namespace,
) -> None:
    # All waiting: every run reached its gate and is Paused (or was lost on the way).
    deadline = time.monotonic() + args.timeout
    paused = 0
    while time.monotonic() < deadline:
        lost = len(_all(drivers, "lost"))
        paused = client.post(
            f"{api}/flow_runs/count",
            json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}},
        ).json()
        if paused + lost >= args.runs:
            break
        time.sleep(2)
    all_waiting = time.monotonic() - started
    _phase("waiting")
    for driver in drivers:
        driver.ask_rss()
    time.sleep(2)
    rss_before = sum(d.of("rss")[0]["rss"] for d in drivers)
    rss_waiting = sum(e["rss"] for d in drivers for e in d.of("rss") if e["phase"] == "waiting")
    server_rss = _rss_of(int(args.server_pid))
    # Approve every pending request through the service, --approvers at a time.
    decided: dict[int, float] = {}

    errors: list[str] = []

    def approve(request: dict[str, Any]) -> None:
        sent = time.time()
        try:
            answer = client.post(
                f"{service}/api/approvals/{request['id']}/decision",
                headers={"X-API-Key": KEY},
                json={"approve": True, "digest": request["digest"]},
            )
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
            return
        if answer.status_code == 200:
            decided[int(request["details"]["i"])] = sent
        else:
            errors.append(f"{answer.status_code} {answer.text[:200]}")

    t0 = time.monotonic()
    _phase("approve")
    with ThreadPoolExecutor(args.approvers) as pool:
        # The inbox lists at most 200 requests: approve them, ask again, until it is empty.
        for _ in range(args.runs):  # bounded: each round decides at least one or stops
            pending = [r for r in _inbox(client, service) if int(r["details"]["i"]) not in decided]
            before = len(decided)
            list(pool.map(approve, pending))
            if not pending or len(decided) == before:
                break
    approving = time.monotonic() - t0
    _phase("continue")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        finished = len(_all(drivers, "done")) + len(_all(drivers, "lost"))
        if finished >= args.runs or all(d.process.poll() is not None for d in drivers):
            break
        time.sleep(1)
    done = _all(drivers, "done")
    lost = _all(drivers, "lost")
    continued = {e["i"]: e["t"] for e in _all(drivers, "continued")}
    resume = [(continued[i] - t) * 1000 for i, t in decided.items() if i in continued]
    submitted = [e["submitted"] * 1000 for e in _all(drivers, "gate")]
    for driver in drivers:
        if driver.process.poll() is None:
            driver.process.kill()
    print(
        f"runs started {args.runs} in {args.drivers} driver process(es); all waiting after "
        f"{all_waiting:.0f} s; {paused} runs Paused"
    )
    print(
        f"runs lost: {args.runs - len(done)} ({len(lost)} raised: "
        f"{sorted({e['error'] for e in lost})[:3]})"
    )
    print(
        f"submission (flow called -> gate reached): p50 {_pct(submitted, 0.5):.0f} ms, "
        f"p99 {_pct(submitted, 0.99):.0f} ms"
    )
    waiting = max(1, paused)
    print(
        f"memory per waiting run (paused in-process): "
        f"{(rss_waiting - rss_before) / waiting / 1e6:.2f} MB "
        f"(drivers {rss_before / 1e6:.0f} -> {rss_waiting / 1e6:.0f} MB); "
        f"Prefect server RSS {server_rss / 1e6:.0f} MB"
    )
    print(
        f"approvals through the service: {len(decided)} in {approving:.1f} s = "
        f"{len(decided) / approving:.1f}/s with {args.approvers} concurrent clients"
    )
    print(f"decision errors: {len(errors)} {sorted(set(errors))[:3]}")
    print(
        f"resume-to-continue at this load: p50 {_pct(resume, 0.5):.0f} ms, "
        f"p99 {_pct(resume, 0.99):.0f} ms (n={len(resume)})"
    )


def _all(drivers: list[Driver], kind: str) -> list[dict[str, Any]]:
    return [e for d in drivers for e in d.of(kind)]


def budget(env: dict[str, str]) -> None:
    """Phase 2: two processes spend from one budget; overspend must be 0."""
    from decimal import Decimal

    limit, name = Decimal("0.0500"), f"scale-{uuid.uuid4().hex[:6]}"
    spenders = [
        subprocess.Popen(
            [str(BIN / "python"), "-c", SPENDER, str(limit), name],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in spenders]
    window = subprocess.run(
        [str(BIN / "python"), "-c", WINDOW, name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    spent = json.loads(window.stdout.strip().splitlines()[-1])
    overspend = max(Decimal(0), Decimal(spent["spent"]) - limit)
    print(
        f"budget ${limit}: two processes settled {[r['settled'] for r in results]} calls, "
        f"spent ${spent['spent']}, still held ${spent['reserved']}, overspend ${overspend}"
    )


def main() -> None:
    """Start the stack, run both phases, stop the stack."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--drivers", type=int, default=4)
    parser.add_argument("--approvers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--skip-budget", action="store_true")
    parser.add_argument(
        "--suspended",
        type=int,
        default=20,
        help="deployed runs that suspend at their gates on the process worker (0: skip)",
    )
    parser.add_argument(
        "--fallback-poll",
        type=float,
        default=120.0,
        help="each waiting gate's safety-net poll of its run, s (wakes come from events)",
    )
    parser.add_argument(
        "--ledger-pool", type=int, default=2, help="each driver's ledger connection pool"
    )
    args = parser.parse_args()
    from wflo_prefect._offload import MAX_WORKERS

    if -(-args.runs // args.drivers) > MAX_WORKERS:
        # Each paused in-process gate holds one of wflo's worker threads while it waits.
        parser.error(
            f"{args.runs} runs in {args.drivers} drivers is more than {MAX_WORKERS} waiting "
            f"gates per process (wflo's worker threads): use --drivers "
            f"{-(-args.runs // MAX_WORKERS)} or more"
        )
    # Stop the stack on SIGTERM too (the `finally` below runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack_dir = Path(tempfile.mkdtemp(prefix="wflo-bench-scale-"))
    database = f"wflo_scale_{uuid.uuid4().hex[:8]}"
    ports = {k: free_port() for k in ("server", "approvals", "metrics")}
    print(f"load average at start: {os.getloadavg()[0]:.1f}; cores: {os.cpu_count()}")
    up = stack_up(stack_dir, database, ports)
    try:
        if up.returncode != 0:
            raise SystemExit(up.stdout + up.stderr)
        env = _env(stack_dir)
        env["PREFECT_INTEGRATIONS_WFLO_APPROVALS_FALLBACK_POLL_SECONDS"] = str(args.fallback_poll)
        state = json.loads((stack_dir / "state.json").read_text())
        pids = {c["name"]: c["pid"] for c in state["components"]}
        args.server_pid = pids["prefect-server"]
        PIDS.update(server=pids["prefect-server"], approvals=pids["approval-service"])
        global SAMPLER
        SAMPLER = Sampler(lambda: dict(PIDS), _connections(database)).start()
        print("stack settings: " + ", ".join(f"{k}={env[k]}" for k in sorted(SERVER_TUNING)))
        subprocess.run([str(BIN / "python"), "-c", SAVE_APPROVERS, KEY], env=env, check=True)
        gates(env, ports, args)
        if args.suspended:
            _phase("suspended")
            PIDS.update({"process-worker": pids["process-worker"]})
            try:
                suspended(
                    env,
                    f"http://127.0.0.1:{ports['server']}/api",
                    f"http://127.0.0.1:{ports['approvals']}",
                    KEY,
                    pids,
                    database,
                    args.suspended,
                    args.timeout,
                )
            except (httpx.HTTPError, subprocess.CalledProcessError) as exc:
                # Reported, and the budget phase still runs.
                print(f"suspended phase failed: {exc!r}"[:2000])
        if not args.skip_budget:
            _phase("budget")
            budget(env)
    finally:
        if SAMPLER is not None:
            SAMPLER.stop()
            print("resources:")
            SAMPLER.summary()
        log = stack_dir / "logs" / "prefect-server.log"
        print(
            f"server log: {count_in_log(log, 'QueuePool limit')} pool timeouts, "
            f"{count_in_log(log, 'Traceback')} tracebacks, "
            f"{count_in_log(log, 'canceling statement due to statement timeout')} "
            "statement timeouts"
        )
        subprocess.run(
            [str(BIN / "wflo"), "stack", "down", "--dir", str(stack_dir)],
            capture_output=True,
            check=False,
        )
        _drop(database)


if __name__ == "__main__":
    sys.exit(main())
