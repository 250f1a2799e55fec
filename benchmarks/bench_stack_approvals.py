"""Approvals across machines, on `wflo stack`: resume-to-continue through Prefect only.

Starts a stack (`wflo stack up`: Prefect server on PostgreSQL, PostgreSQL ledger,
approval service with the loopback wake-up **off**), a flow run in its own process
that passes N approval gates one after another, and answers each gate, in turn, by:

* **service, Prefect only**: the stack's approval service REST API (vote recorded,
  run resumed through Prefect's API; the gate wakes on the run's state event from
  Prefect's events websocket), the path a decision from another host takes;
* **Prefect REST API**: `POST /api/flow_runs/{id}/resume` with the form's answer, as
  the Prefect UI (or any client on another host) submits it; the gate wakes on the
  `Running` event, verifies the answer and records the vote;
* **baseline, loopback wake**: a second approval service with the loopback wake-up on
  (the same-host shortcut: a datagram to the gate's loopback port).

Resume-to-continue: from just before the decision's HTTP request is sent to the first
line of flow code after the gate (both clocks are this host's). Each decision comes
50-200 ms after the run is `Paused`.

    .venv/bin/python benchmarks/bench_stack_approvals.py [--samples 30]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _stack import BIN, POSTGRES_URL, free_port, stack_up

KEY = "bench-key-" + uuid.uuid4().hex
PATHS = ("service, Prefect only", "Prefect REST API", "baseline, loopback wake")

GATES = """
import json, sys, time
from wflo_prefect import governed_flow, require_approval

@governed_flow(name="bench-stack-approvals")
def gates(n: int) -> None:
    for i in range(n):
        require_approval("bench gate", details={"i": i}, approvers=["ann"],
                         principals="bench-approvers", timeout=900)
        print(json.dumps({"i": i, "t": time.time()}), flush=True)

gates(int(sys.argv[1]))
"""

SAVE_APPROVERS = """
import sys
from wflo_prefect.approvals import Approvers, Principal, hash_api_key
Approvers(users=[Principal(name="ann", api_key_hashes=[hash_api_key(sys.argv[1])])]).save(
    "bench-approvers", overwrite=True)
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _env(stack_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for line in (stack_dir / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env


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


def _wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout} s")


class Bench:
    """The stack, the gated run, and the three ways to decide."""

    def __init__(self, stack_dir: Path, ports: dict[str, int]) -> None:
        self.api = f"http://127.0.0.1:{ports['server']}/api"
        self.service = f"http://127.0.0.1:{ports['approvals']}"
        self.baseline = f"http://127.0.0.1:{ports['baseline']}"
        self.env = _env(stack_dir)
        self.client = httpx.Client(timeout=60)
        self.lines: queue.Queue[dict[str, float]] = queue.Queue()
        self.flow_run_id: str | None = None

    def read(self, stream: Any) -> None:
        for line in stream:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def pending(self, i: int) -> dict[str, Any]:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            inbox = self.client.get(
                f"{self.service}/api/approvals", headers={"X-API-Key": KEY}
            ).json()
            for request in inbox:
                if request["details"].get("i") == i:
                    return dict(request)
            time.sleep(0.02)
        raise SystemExit(f"gate {i} never asked")

    def paused(self, flow_run_id: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = self.client.get(f"{self.api}/flow_runs/{flow_run_id}").json()["state"]
            if state and state["type"] == "PAUSED":
                return
            time.sleep(0.02)
        raise SystemExit("the run never paused")

    def decide(self, path: str, request: dict[str, Any]) -> None:
        if path == PATHS[1]:
            answer = self.client.post(
                f"{self.api}/flow_runs/{request['flow_run_id']}/resume",
                json={"run_input": {"decision": "approve", "approver": "ann", "code": KEY}},
            )
            assert answer.status_code in (200, 201), answer.text
            assert answer.json().get("status") == "ACCEPT", answer.text
            return
        base = self.service if path == PATHS[0] else self.baseline
        answer = self.client.post(
            f"{base}/api/approvals/{request['id']}/decision",
            headers={"X-API-Key": KEY},
            json={"approve": True, "digest": request["digest"]},
        )
        assert answer.status_code == 200, answer.text


def run(samples: int) -> dict[str, list[float]]:
    """Start everything, answer ``samples`` gates per path, stop everything."""
    stack_dir = Path(tempfile.mkdtemp(prefix="wflo-bench-stack-"))
    database = f"wflo_bench_{uuid.uuid4().hex[:8]}"
    ports = {k: free_port() for k in ("server", "approvals", "metrics", "baseline")}
    up = stack_up(stack_dir, database, ports)
    processes: list[subprocess.Popen[str]] = []
    try:
        if up.returncode != 0:
            raise SystemExit(up.stdout + up.stderr)
        bench = Bench(stack_dir, ports)
        subprocess.run([str(BIN / "python"), "-c", SAVE_APPROVERS, KEY], env=bench.env, check=True)
        baseline_env = {**bench.env, "PREFECT_INTEGRATIONS_WFLO_APPROVALS_LOOPBACK_WAKE": "true"}
        processes.append(
            subprocess.Popen(
                [str(BIN / "wflo"), "approvals", "serve", "--port", str(ports["baseline"])],
                env=baseline_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_http(f"{bench.baseline}/healthz")
        total = samples * len(PATHS)
        gates = subprocess.Popen(
            [str(BIN / "python"), "-c", GATES, str(total)],
            env=bench.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        processes.append(gates)
        threading.Thread(target=bench.read, args=(gates.stdout,), daemon=True).start()
        results: dict[str, list[float]] = {p: [] for p in PATHS}
        order = [PATHS[i % len(PATHS)] for i in range(total)]
        for i, path in enumerate(order):
            request = bench.pending(i)
            bench.paused(str(request["flow_run_id"]))
            time.sleep(random.uniform(0.05, 0.2))
            sent = time.time()
            bench.decide(path, request)
            line = bench.lines.get(timeout=300)
            assert line["i"] == i, line
            results[path].append((line["t"] - sent) * 1000)
        gates.wait(timeout=120)
        return results
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        subprocess.run(
            [str(BIN / "wflo"), "stack", "down", "--dir", str(stack_dir)],
            capture_output=True,
            check=False,
        )
        _drop(database)


def main() -> None:
    """Print resume-to-continue p50/p99 per path and the ratio to the loopback baseline."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=30, help="decisions per path")
    args = parser.parse_args()
    # Stop the stack on SIGTERM too (the `finally` below runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = os.getloadavg()[0]
    results = run(args.samples)
    print(f"resume-to-continue on wflo stack (load average at start {load:.1f})")
    print(f"{'path':28} {'n':>4} {'p50 ms':>8} {'p99 ms':>8}")
    for path, values in results.items():
        print(f"{path:28} {len(values):>4} {_pct(values, 0.5):8.0f} {_pct(values, 0.99):8.0f}")
    base = results[PATHS[2]]
    for path in PATHS[:2]:
        ratio50 = _pct(results[path], 0.5) / _pct(base, 0.5)
        ratio99 = _pct(results[path], 0.99) / _pct(base, 0.99)
        print(f"ratio {path} / loopback baseline: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
