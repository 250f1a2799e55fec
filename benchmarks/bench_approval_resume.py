"""Approval gates resumed through Prefect's API, as the UI's Resume button does.

Against a started ``prefect server`` (not the test harness): a flow passes N
gates one after another; for each, an approver thread waits until the run is
paused at the gate, waits a random 50-200 ms (the approver reading), then sends
the request the UI's Resume dialog sends: one ``POST /flow_runs/{id}/resume`` with
``{"run_input": <the form's answer>}``, over a kept-alive connection as a browser
holds one. The figure is resume-to-continue: from sending that request to the
first line of flow code after the gate. A second wflo variant answers through
Prefect's Python helper ``prefect.flow_runs.resume_flow_run`` instead, which
builds a client and reads the run before it posts the same request (what a script
pays). Baseline in the same run: Prefect's own ``pause_flow_run(wait_for_input=...)``
resumed by the UI's request, with a 1 s poll and with its default 10 s poll.

    .venv/bin/python benchmarks/bench_approval_resume.py [--gates 60]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _prefect_server import started_server

_home = tempfile.mkdtemp(prefix="wflo-bench-resume-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.setdefault(
    "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL", f"sqlite:///{Path(_home) / 'ledger.db'}"
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


#: Resume requests the server answered 503 (database locked) and that were sent again.
RETRIED: list[Any] = []


class UIResume:
    """The UI's Resume dialog: one POST per answer over a kept-alive connection."""

    def __init__(self) -> None:
        import httpx

        self._client = httpx.Client(base_url=os.environ["PREFECT_API_URL"], timeout=30)

    def __call__(self, flow_run_id: Any, answer: dict[str, Any]) -> None:
        for attempt in range(6):
            response = self._client.post(
                f"/flow_runs/{flow_run_id}/resume", json={"run_input": answer}
            )
            # A SQLite-backed server answers 503 while its database is locked; the
            # approver (like Prefect's own client) tries again, and the retry's time counts.
            if response.status_code != 503:
                break
            RETRIED.append(flow_run_id)
            time.sleep(0.05 * 2**attempt)
        response.raise_for_status()
        status = response.json()["status"]
        if status != "ACCEPT":
            raise SystemExit(f"the server did not accept the resume: {response.text}")

    def is_paused(self, flow_run_id: Any) -> bool:
        response = self._client.get(f"/flow_runs/{flow_run_id}")
        response.raise_for_status()
        state = response.json().get("state") or {}
        return bool(state.get("type") == "PAUSED")

    def close(self) -> None:
        self._client.close()


def _helper_resume(flow_run_id: Any, answer: dict[str, Any]) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(flow_run_id, run_input=answer)


def _paused_request(seen: set[str], ui: UIResume) -> Any:
    from wflo_prefect.ledger import get_ledger

    while True:
        for request in get_ledger().approvals.list_requests(status="pending", limit=5):
            fresh = request.keyset and request.keyset not in seen and request.flow_run_id
            if fresh and ui.is_paused(request.flow_run_id):
                seen.add(request.keyset)
                return request
        time.sleep(0.02)


def bench_wflo(gates: int, *, helper: bool = False) -> list[float]:
    """wflo's gate, answered with the form's fields by the UI's request (or Prefect's helper)."""
    from prefect import flow

    from wflo_prefect import require_approval

    started: dict[int, float] = {}
    continued: dict[int, float] = {}
    ui = UIResume()
    resume = _helper_resume if helper else ui

    @flow(name="wflo-gate-resume")
    def gated() -> None:
        for i in range(gates):
            require_approval("bench", details={"i": i}, timeout=600)
            continued[i] = time.perf_counter()

    def approver() -> None:
        seen: set[str] = set()
        for i in range(gates):
            request = _paused_request(seen, ui)
            time.sleep(random.uniform(0.05, 0.2))
            started[i] = time.perf_counter()
            resume(request.flow_run_id, {"decision": "approve", "approver": "bench", "comment": ""})

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    gated()
    thread.join()
    ui.close()
    return [continued[i] - started[i] for i in range(gates)]


def bench_prefect(gates: int, poll: int | None) -> list[float]:
    """Prefect's own ``pause_flow_run(wait_for_input=...)``, resumed by the UI's request."""
    from prefect import flow
    from prefect.context import FlowRunContext
    from prefect.flow_runs import pause_flow_run
    from prefect.input import RunInput

    class Answer(RunInput):
        decision: str = "approve"

    started: dict[int, float] = {}
    continued: dict[int, float] = {}
    run_id: list[Any] = []
    ui = UIResume()

    @flow(name=f"prefect-pause-{poll or 'default'}")
    def paused() -> None:
        context = FlowRunContext.get()
        assert context is not None
        assert context.flow_run is not None
        run_id.append(context.flow_run.id)
        for i in range(gates):
            if poll is None:
                pause_flow_run(wait_for_input=Answer, timeout=600)
            else:
                pause_flow_run(wait_for_input=Answer, timeout=600, poll_interval=poll)
            continued[i] = time.perf_counter()

    def approver() -> None:
        while not run_id:
            time.sleep(0.01)
        for i in range(gates):
            while not ui.is_paused(run_id[0]):
                time.sleep(0.02)
            time.sleep(random.uniform(0.05, 0.2))
            started[i] = time.perf_counter()
            ui(run_id[0], {"decision": "approve"})
            while i not in continued:
                time.sleep(0.005)

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    paused()
    thread.join()
    ui.close()
    return [continued[i] - started[i] for i in range(gates)]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gates", type=int, default=60)
    parser.add_argument("--default-poll-gates", type=int, default=3)
    args = parser.parse_args()
    with started_server():
        print(f"before: {_load()}")
        bench_wflo(2)  # warm-up: imports, the ledger's migration, the event stream
        wflo = bench_wflo(args.gates)
        helper = bench_wflo(max(10, args.gates // 3), helper=True)
        one = bench_prefect(max(5, args.gates // 6), 1)
        default = bench_prefect(args.default_poll_gates, None)
        print(f"after:  {_load()}")
    print("\nresume-to-continue through Prefect's API (POST /flow_runs/{id}/resume with run_input)")
    print(f"{'variant':50} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    rows = [
        ("wflo gate, the UI's request", wflo),
        ("wflo gate, Prefect's resume_flow_run helper", helper),
        ("Prefect pause_flow_run, poll_interval=1", one),
        ("Prefect pause_flow_run, default poll (10 s)", default),
    ]
    for name, values in rows:
        p50, p99, top = (x * 1000 for x in (_pct(values, 0.5), _pct(values, 0.99), max(values)))
        print(f"{name:50} {len(values):>4} {p50:>8.1f} {p99:>8.1f} {top:>8.1f}")
    wflo_p99 = _pct(wflo, 0.99)
    print(f"\nresume requests retried after a 503 (server database locked): {len(RETRIED)}")
    print(f"\nratio p50 wflo / Prefect 1 s poll: {_pct(wflo, 0.5) / _pct(one, 0.5):.3f}x")
    print(f"ratio p99 wflo / Prefect 1 s poll: {wflo_p99 / _pct(one, 0.99):.3f}x")
    print(f"p99 at or under 150 ms (the UI's request): {'yes' if wflo_p99 <= 0.150 else 'NO'}")


if __name__ == "__main__":
    main()
