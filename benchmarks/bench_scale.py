"""Scale on `wflo stack`: N concurrent runs waiting at approval gates, approved via the service.

Starts a stack (Prefect server on PostgreSQL, PostgreSQL ledger, approval service with
the loopback wake-up off) and:

1. **Gates.** ``--drivers`` processes (workers' stand-ins) start ``--runs`` flow runs in
   total, concurrently (async flows, each paused in-process at ``arequire_approval``
   with its own approver list), against the stack's API. Reported: runs lost (did not
   complete after approval), submission latency (flow called -> its gate reached: run
   created and started through the API), memory per waiting run (the drivers' RSS
   growth while all wait, / runs), approvals per second through the approval service's
   REST API (``--approvers`` concurrent clients), and resume-to-continue (decision
   request sent -> the flow's next line) at that load.
2. **Budget.** Two processes spend concurrently from one global budget in the stack's
   PostgreSQL ledger until it refuses; reported: spent, limit, overspend (must be 0).

    .venv/bin/python benchmarks/bench_scale.py [--runs 1000] [--drivers 2] [--approvers 8]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _stack import BIN, POSTGRES_URL, free_port, stack_up

KEY = "scale-key-" + uuid.uuid4().hex

DRIVER = """
import asyncio, json, os, sys, time
import anyio.to_thread
from prefect import flow
from wflo_prefect import arequire_approval

def rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

def say(**kv) -> None:
    print(json.dumps(kv), flush=True)

@flow(name="bench-scale-gate", persist_result=False)
async def gated(i: int, called: float) -> int:
    say(kind="gate", i=i, submitted=time.time() - called)
    await arequire_approval("scale gate", details={"i": i}, approvers=["ann"],
                            principals="scale-approvers", timeout=3600)
    say(kind="continued", i=i, t=time.time())
    return i

async def main(first: int, count: int) -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = count + 16
    say(kind="rss", phase="before", rss=rss())
    async def one(i: int) -> None:
        try:
            await gated(i, time.time())
            say(kind="done", i=i)
        except BaseException as exc:
            say(kind="lost", i=i, error=repr(exc)[:300])
    tasks = [asyncio.create_task(one(i)) for i in range(first, first + count)]
    await asyncio.sleep(0)
    while (await asyncio.to_thread(sys.stdin.readline)).strip() != "rss":
        pass
    say(kind="rss", phase="waiting", rss=rss())
    await asyncio.gather(*tasks)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""

SPENDER = """
import json, sys
from decimal import Decimal
from wflo_prefect.costs import Budget, BudgetExceeded, flush_leases, metered_call
budget = Budget(Decimal(sys.argv[1]), scope="global", name=sys.argv[2])
settled = refused = 0
while refused < 20:
    try:
        with metered_call("openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000,
                          budgets=[budget]) as call:
            call.settle(input_tokens=1000, output_tokens=800)
            settled += 1
    except BudgetExceeded:
        refused += 1
flush_leases()
print(json.dumps({"settled": settled, "refused": refused}))
"""

WINDOW = """
import json, sys
from wflo_prefect.ledger import get_ledger
[window] = get_ledger().costs.windows(sys.argv[1] + "|")
print(json.dumps({"spent": str(window.spent_usd), "reserved": str(window.reserved_usd)}))
"""

SAVE_APPROVERS = """
import sys
from wflo_prefect.approvals import Approvers, Principal, hash_api_key
Approvers(users=[Principal(name="ann", api_key_hashes=[hash_api_key(sys.argv[1])])]).save(
    "scale-approvers", overwrite=True)
"""


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
    for count in per:
        drivers.append(Driver(env, first, count))
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
    with ThreadPoolExecutor(args.approvers) as pool:
        # The inbox lists at most 200 requests: approve them, ask again, until it is empty.
        for _ in range(args.runs):  # bounded: each round decides at least one or stops
            pending = [r for r in _inbox(client, service) if int(r["details"]["i"]) not in decided]
            before = len(decided)
            list(pool.map(approve, pending))
            if not pending or len(decided) == before:
                break
    approving = time.monotonic() - t0
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
    parser.add_argument("--drivers", type=int, default=2)
    parser.add_argument("--approvers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--skip-budget", action="store_true")
    args = parser.parse_args()
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
        state = json.loads((stack_dir / "state.json").read_text())
        args.server_pid = next(
            c["pid"] for c in state["components"] if c["name"] == "prefect-server"
        )
        subprocess.run([str(BIN / "python"), "-c", SAVE_APPROVERS, KEY], env=env, check=True)
        gates(env, ports, args)
        if not args.skip_budget:
            budget(env)
    finally:
        subprocess.run(
            [str(BIN / "wflo"), "stack", "down", "--dir", str(stack_dir)],
            capture_output=True,
            check=False,
        )
        _drop(database)


if __name__ == "__main__":
    sys.exit(main())
