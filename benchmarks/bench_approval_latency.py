"""Approval gates: how fast a decision reaches the waiting run, and a request reaches people.

One process, one Prefect API (a temporary local server), one SQLite ledger.

* resume-to-continue: from the moment a decision is made to the first line of
  flow code after the gate, for wflo's gate (decision from the CLI/API path, and
  an answer submitted like the Prefect UI does) against Prefect's own
  ``pause_flow_run(wait_for_input=...)`` with its default 10 s poll and a 1 s poll,
  all in the same run;
* pause-to-notification-delivered: from the run's ``Paused`` state to the
  notification arriving at a local webhook receiver and a local Slack Web API.

    .venv/bin/python benchmarks/bench_approval_latency.py [--samples 40]
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

_home = tempfile.mkdtemp(prefix="wflo-bench-")
os.environ.setdefault("PREFECT_HOME", _home)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.setdefault(
    "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL", f"sqlite:///{Path(_home) / 'ledger.db'}"
)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.slack_server import FakeSlack  # noqa: E402
from fakes.webhook_receiver import WebhookReceiver  # noqa: E402
from prefect import flow  # noqa: E402
from prefect.context import FlowRunContext  # noqa: E402
from prefect.flow_runs import pause_flow_run, resume_flow_run  # noqa: E402
from prefect.input import RunInput  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from wflo_prefect import SlackApprovalChannel, WebhookApprovalChannel, require_approval  # noqa: E402
from wflo_prefect.approvals import Vote, decide  # noqa: E402
from wflo_prefect.approvals.prefect_run import read_state  # noqa: E402
from wflo_prefect.ledger import get_ledger  # noqa: E402


class Answer(RunInput):
    """The input Prefect's own pause waits for."""

    approve: bool = False


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _row(name: str, values: list[float]) -> tuple[str, int, float, float]:
    return name, len(values), _pct(values, 0.5) * 1000, _pct(values, 0.99) * 1000


def _paused_request(seen: set[str]) -> Any:
    while True:
        for request in get_ledger().approvals.list_requests(status="pending", limit=5):
            if request.keyset and request.keyset not in seen and request.flow_run_id:
                state = read_state(request.flow_run_id)
                if state is not None and state.is_paused():
                    seen.add(request.keyset)
                    return request
        time.sleep(0.01)


def bench_wflo(samples: int, mode: str) -> list[float]:
    """Decision (``api``: wflo's decide; ``ui``: Prefect resume with the form) to continue."""
    started: dict[int, float] = {}
    continued: dict[int, float] = {}

    @flow(name=f"wflo-gate-{mode}")
    def gated() -> None:
        for i in range(samples):
            require_approval("bench", details={"i": i, "mode": mode}, timeout=600)
            continued[i] = time.perf_counter()

    def approver() -> None:
        seen: set[str] = set()
        for i in range(samples):
            request = _paused_request(seen)
            time.sleep(random.uniform(0.05, 0.2))
            started[i] = time.perf_counter()
            if mode == "api":
                decide(request.id, Vote("bench", True, request.digest, "api"))
            else:
                answer = {
                    "approve": True,
                    "approver": "bench",
                    "code": "",
                    "comment": "",
                    "digest": request.digest,
                }
                resume_flow_run(request.flow_run_id, run_input=answer)

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    gated()
    thread.join()
    return [continued[i] - started[i] for i in range(samples)]


def bench_prefect(samples: int, poll: int | None) -> list[float]:
    """Prefect's own pause_flow_run(wait_for_input=...), resumed with typed input."""
    started: dict[int, float] = {}
    continued: dict[int, float] = {}
    run_id: list[Any] = []

    @flow(name=f"prefect-pause-{poll or 'default'}")
    def paused() -> None:
        context = FlowRunContext.get()
        assert context is not None
        assert context.flow_run is not None
        run_id.append(context.flow_run.id)
        for i in range(samples):
            if poll is None:
                pause_flow_run(wait_for_input=Answer, timeout=600)
            else:
                pause_flow_run(wait_for_input=Answer, timeout=600, poll_interval=poll)
            continued[i] = time.perf_counter()

    def approver() -> None:
        while not run_id:
            time.sleep(0.01)
        for i in range(samples):
            while True:
                state = read_state(run_id[0])
                if state is not None and state.is_paused() and i not in started:
                    break
                time.sleep(0.01)
            time.sleep(random.uniform(0.05, 0.2))
            started[i] = time.perf_counter()
            resume_flow_run(run_id[0], run_input={"approve": True})
            while i not in continued:
                time.sleep(0.005)

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    paused()
    thread.join()
    return [continued[i] - started[i] for i in range(samples)]


def bench_delivery(samples: int, channel: str) -> list[float]:
    """Paused state to the notification arriving at the local webhook / Slack server."""
    receiver = WebhookReceiver("bench-secret")
    slack = FakeSlack()
    if channel == "webhook":
        notify: Any = WebhookApprovalChannel(url=receiver.url, secret="bench-secret")  # noqa: S106
    else:
        notify = SlackApprovalChannel(token=slack.token, channel="C0BENCH", base_url=slack.base_url)
    arrivals = receiver.arrived_at

    @flow(name=f"delivery-{channel}")
    def gated() -> None:
        for i in range(samples):
            require_approval(
                "deliver", details={"i": i, "c": channel}, timeout=600, notify=[notify]
            )

    latencies: list[float] = []

    def approver() -> None:
        seen: set[str] = set()
        for i in range(samples):
            request = _paused_request(seen)
            state = read_state(request.flow_run_id)
            assert state is not None
            paused_at = state.timestamp.timestamp()
            while True:
                requested = [
                    at
                    for at, (_ok, body) in zip(arrivals, list(receiver.received), strict=False)
                    if body.get("type") == "approval.requested"
                ]
                if channel == "webhook" and len(requested) > i:
                    arrived = requested[i]
                    break
                if channel == "slack" and len(slack.messages) > i:
                    arrived = float(sorted(slack.messages)[i])
                    break
                time.sleep(0.002)
            latencies.append(arrived - paused_at)
            decide(request.id, Vote("bench", True, request.digest, "api"))

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    try:
        gated()
        thread.join()
    finally:
        receiver.close()
        slack.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--default-poll-samples", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with prefect_test_harness(server_startup_timeout=120):
        wflo_api = bench_wflo(args.samples, "api")
        rows.append(_row("wflo gate, decision via CLI/API (decide)", wflo_api))
        wflo_ui = bench_wflo(args.samples, "ui")
        rows.append(_row("wflo gate, answer via Prefect resume (UI form)", wflo_ui))
        one = bench_prefect(max(5, args.samples // 3), 1)
        rows.append(_row("Prefect pause_flow_run, poll_interval=1", one))
        default = bench_prefect(args.default_poll_samples, None)
        rows.append(_row("Prefect pause_flow_run, default poll (10 s)", default))
        hook = bench_delivery(args.samples // 2, "webhook")
        slack = bench_delivery(args.samples // 2, "slack")
    print("\nresume-to-continue")
    print(f"{'variant':52} {'n':>4} {'p50 ms':>9} {'p99 ms':>9}")
    for name, n, p50, p99 in rows:
        print(f"{name:52} {n:>4} {p50:>9.1f} {p99:>9.1f}")
    wflo_p99 = _pct(wflo_api, 0.99)
    print(f"\nratio p99 wflo (API) / Prefect 1 s poll:     {wflo_p99 / _pct(one, 0.99):.3f}x")
    print(f"ratio p99 wflo (API) / Prefect default poll: {wflo_p99 / _pct(default, 0.99):.3f}x")
    print(f"p99 at or under 150 ms: {'yes' if wflo_p99 <= 0.150 else 'NO'}")
    print("\npause-to-notification-delivered")
    for name, values in (("webhook", hook), ("slack", slack)):
        n, p50, p99 = _row(name, values)[1:]
        print(f"{name:52} {n:>4} {p50:>9.1f} {p99:>9.1f}")


if __name__ == "__main__":
    main()
