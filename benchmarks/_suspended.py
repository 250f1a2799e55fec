"""bench_scale's suspended phase: deployed runs that suspend at their gates (no process held).

``N`` flow runs of ``scale_suspended_flow.py`` (deployed from ``benchmarks/`` onto
the stack's ``process`` work pool) are created through the API; the stack's worker
starts a process for each, which suspends at its gate and exits. With all N
suspended, the worker's process tree is measured against its size before (memory
per suspended run held by processes) and the Prefect database's growth per run
(what a waiting run costs the server instead). Then every request is approved
through the approval service; the worker starts each run again and it passes its
gate. Reported: runs lost, submission (run created -> Suspended, by the server's
clocks), resume-to-continue (decision sent -> the flow's next line, which includes
the worker's poll and a new process), the RSS of one flow-run process (what a run
paused in its own process would hold while it waits).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _sampler import rss, tree_rss
from _stack import BIN, POSTGRES_URL

__all__ = ["suspended"]

HERE = Path(__file__).resolve().parent

DEPLOY = """
import sys
from prefect import flow
deployment = flow.from_source(
    source=sys.argv[1], entrypoint="scale_suspended_flow.py:suspended_gate"
).deploy(name="bench-scale-suspended", work_pool_name=sys.argv[2], print_next_steps=False)
print(deployment)
"""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _database_size(database: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("select pg_database_size(:d)"), {"d": database}).scalar_one()
            )
    finally:
        engine.dispose()


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class _Watch:
    """Samples the worker's process tree each second: total RSS, flow-run processes."""

    def __init__(self, worker: int) -> None:
        self.worker = worker
        self.peak_children = 0
        self.child_rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            _, children = tree_rss(self.worker)
            self.peak_children = max(self.peak_children, len(children))
            self.child_rss.extend(r for r in (rss(c) for c in children) if r > 50e6)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def suspended(
    env: dict[str, str],
    api: str,
    service: str,
    key: str,
    pids: dict[str, int],
    database: str,
    runs: int,
    timeout: float,
) -> None:
    """Run the suspended phase and print its figures."""
    client = httpx.Client(timeout=120)
    out = Path(tempfile.mkdtemp(prefix="wflo-bench-suspended-"))
    deployed = subprocess.run(
        [str(BIN / "python"), "-c", DEPLOY, str(HERE), "wflo-process"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    deployment = deployed.stdout.strip().splitlines()[-1]
    worker = pids["process-worker"]
    worker_before, _ = tree_rss(worker)
    db_before = _database_size(database)
    watch = _Watch(worker)
    ids = []
    for i in range(runs):
        made = client.post(
            f"{api}/deployments/{deployment}/create_flow_run",
            json={"parameters": {"i": i, "out": str(out)}},
        )
        made.raise_for_status()
        ids.append(made.json()["id"])
    flt = {"flow_runs": {"id": {"any_": ids}}}

    def states() -> list[dict[str, Any]]:
        return list(client.post(f"{api}/flow_runs/filter", json=flt).json())

    started = time.monotonic()
    deadline = started + timeout
    found = states()
    while time.monotonic() < deadline:
        found = states()
        if all(r["state_name"] in ("Suspended", "Failed", "Crashed") for r in found):
            break
        time.sleep(2)
    all_suspended = time.monotonic() - started
    submitted = [
        (_time(r["state"]["timestamp"]) - _time(r["created"])) * 1000
        for r in found
        if r["state_name"] == "Suspended"
    ]
    # The flow-run processes exit after suspending: wait until the worker has none.
    settle = time.monotonic() + 120
    while tree_rss(worker)[1] and time.monotonic() < settle:
        time.sleep(1)
    worker_waiting, left = tree_rss(worker)
    db_waiting = _database_size(database)
    suspended_count = sum(r["state_name"] == "Suspended" for r in found)

    decided: dict[int, float] = {}
    errors: list[str] = []

    def approve(request: dict[str, Any]) -> None:
        sent = time.time()
        answer = client.post(
            f"{service}/api/approvals/{request['id']}/decision",
            headers={"X-API-Key": key},
            json={"approve": True, "digest": request["digest"]},
        )
        if answer.status_code == 200:
            decided[int(request["details"]["i"])] = sent
        else:
            errors.append(f"{answer.status_code} {answer.text[:200]}")

    inbox = client.get(f"{service}/api/approvals", headers={"X-API-Key": key}).json()
    mine = [r for r in inbox if r["details"].get("suspended")]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(approve, mine))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = states()
        if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in found):
            break
        time.sleep(2)
    watch.stop()
    completed = sum(r["state_type"] == "COMPLETED" for r in found)
    continued = {int(p.stem): float(p.read_text()) for p in out.glob("*.continued")}
    resume = [(continued[i] - t) * 1000 for i, t in decided.items() if i in continued]
    per_process = _pct([float(r) for r in watch.child_rss], 0.5)
    print(
        f"suspended (deployed on the process worker): {runs} runs; all suspended after "
        f"{all_suspended:.0f} s ({suspended_count} Suspended, at most {watch.peak_children} "
        f"flow-run processes at once); runs lost: {runs - completed}"
    )
    print(
        f"  submission (run created -> Suspended): p50 {_pct(submitted, 0.5) / 1000:.1f} s, "
        f"p99 {_pct(submitted, 0.99) / 1000:.1f} s"
    )
    print(
        f"  memory per suspended run: processes "
        f"{(worker_waiting - worker_before) / max(1, suspended_count) / 1e6:.2f} MB "
        f"(worker tree {worker_before / 1e6:.0f} -> {worker_waiting / 1e6:.0f} MB, "
        f"{len(left)} flow-run processes left); Prefect database "
        f"{(db_waiting - db_before) / max(1, suspended_count) / 1e3:.0f} kB/run; "
        f"one flow-run process (what a run paused in its own process holds): "
        f"{per_process / 1e6:.0f} MB RSS"
    )
    print(
        f"  approvals {len(decided)} (errors {len(errors)} {errors[:2]}); resume-to-continue "
        f"(decision -> worker starts the run again -> next line): p50 "
        f"{_pct(resume, 0.5) / 1000:.1f} s, p99 {_pct(resume, 0.99) / 1000:.1f} s "
        f"(n={len(resume)})"
    )
    print(json.dumps({"suspended_lost": runs - completed}))
