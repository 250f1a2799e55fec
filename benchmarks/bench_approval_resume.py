"""Approval gates resumed through Prefect's API, as the UI's Resume button does.

Against a started ``prefect server`` (not the test harness): a flow passes N
gates one after another; for each, an approver thread waits until the run is
paused at the gate, waits a random 50-200 ms (the approver reading), then calls
``resume_flow_run(run_id, run_input=<the form's answer>)``, which is the request
the UI's Resume dialog sends. The figure is resume-to-continue: from that call to
the first line of flow code after the gate. Baseline in the same run: Prefect's
own ``pause_flow_run(wait_for_input=...)`` resumed the same way, with a 1 s poll
and with its default 10 s poll.

    .venv/bin/python benchmarks/bench_approval_resume.py [--gates 30]
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


def _paused_request(seen: set[str]) -> Any:
    from wflo_prefect.approvals.prefect_run import read_state
    from wflo_prefect.ledger import get_ledger

    while True:
        for request in get_ledger().approvals.list_requests(status="pending", limit=5):
            if request.keyset and request.keyset not in seen and request.flow_run_id:
                state = read_state(request.flow_run_id)
                if state is not None and state.is_paused():
                    seen.add(request.keyset)
                    return request
        time.sleep(0.01)


def bench_wflo(gates: int, calls: list[float] | None = None) -> list[float]:
    """wflo's gate, answered through ``resume_flow_run`` with the form's fields.

    ``calls`` collects how long each ``resume_flow_run`` call itself took (the
    server's part, the same for any waiter).
    """
    from prefect import flow
    from prefect.flow_runs import resume_flow_run

    from wflo_prefect import require_approval

    started: dict[int, float] = {}
    continued: dict[int, float] = {}

    @flow(name="wflo-gate-resume")
    def gated() -> None:
        for i in range(gates):
            require_approval("bench", details={"i": i}, timeout=600)
            continued[i] = time.perf_counter()

    def approver() -> None:
        seen: set[str] = set()
        for i in range(gates):
            request = _paused_request(seen)
            time.sleep(random.uniform(0.05, 0.2))
            started[i] = time.perf_counter()
            answer = {"decision": "approve", "approver": "bench", "comment": ""}
            resume_flow_run(request.flow_run_id, run_input=answer)
            if calls is not None:
                calls.append(time.perf_counter() - started[i])

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    gated()
    thread.join()
    return [continued[i] - started[i] for i in range(gates)]


def bench_prefect(gates: int, poll: int | None) -> list[float]:
    """Prefect's own ``pause_flow_run(wait_for_input=...)``, resumed with typed input."""
    from prefect import flow
    from prefect.context import FlowRunContext
    from prefect.flow_runs import pause_flow_run, resume_flow_run
    from prefect.input import RunInput

    from wflo_prefect.approvals.prefect_run import read_state

    class Answer(RunInput):
        decision: str = "approve"

    started: dict[int, float] = {}
    continued: dict[int, float] = {}
    run_id: list[Any] = []

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
            while True:
                state = read_state(run_id[0])
                if state is not None and state.is_paused():
                    break
                time.sleep(0.01)
            time.sleep(random.uniform(0.05, 0.2))
            started[i] = time.perf_counter()
            resume_flow_run(run_id[0], run_input={"decision": "approve"})
            while i not in continued:
                time.sleep(0.005)

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    paused()
    thread.join()
    return [continued[i] - started[i] for i in range(gates)]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gates", type=int, default=30)
    parser.add_argument("--default-poll-gates", type=int, default=3)
    args = parser.parse_args()
    with started_server():
        print(f"before: {_load()}")
        bench_wflo(2)  # warm-up: imports, the ledger's migration, the event stream
        calls: list[float] = []
        wflo = bench_wflo(args.gates, calls)
        one = bench_prefect(max(5, args.gates // 3), 1)
        default = bench_prefect(args.default_poll_gates, None)
        print(f"after:  {_load()}")
    print("\nresume-to-continue through Prefect's API (resume_flow_run with run input)")
    print(f"{'variant':44} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    rows = [
        ("wflo gate (event-stream wake-up)", wflo),
        ("  of which the resume_flow_run call itself", calls),
        ("Prefect pause_flow_run, poll_interval=1", one),
        ("Prefect pause_flow_run, default poll (10 s)", default),
    ]
    for name, values in rows:
        p50, p99, top = (x * 1000 for x in (_pct(values, 0.5), _pct(values, 0.99), max(values)))
        print(f"{name:44} {len(values):>4} {p50:>8.1f} {p99:>8.1f} {top:>8.1f}")
    wflo_p99 = _pct(wflo, 0.99)
    print(f"\nratio p50 wflo / Prefect 1 s poll: {_pct(wflo, 0.5) / _pct(one, 0.5):.3f}x")
    print(f"p99 at or under 150 ms: {'yes' if wflo_p99 <= 0.150 else 'NO'}")


if __name__ == "__main__":
    main()
