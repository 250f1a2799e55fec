"""The watchdog: a time-based policy halts (Cancelled) or notifies while a step is running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

from wflo_prefect import (
    AuditLog,
    Condition,
    HaltExecution,
    Notify,
    Policy,
    governed_flow,
    governed_task,
)
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail


@pytest.fixture(autouse=True)
def fast_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_POLICIES_WATCHDOG_SECONDS", "0.2")


# `kind == 'flow'`: only the watchdog (which evaluates in the flow's name) can match, so a
# slow start of the task under load cannot make the task-start checkpoint halt it first.
# 3 s, not 1: the same rule is also checked at the step's start, and on a loaded
# machine a flow can take over a second to get there; the test is about the watchdog.
STUCK = Policy(
    name="execution_timeout",
    condition=Condition("kind == 'flow' && execution_time > 3"),
    actions=[HaltExecution(reason="the run took longer than 3 s")],
)


def _read_state(state: object) -> object:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).state  # type: ignore[attr-defined]


def _assert_halted(state: object, marker: Path) -> None:
    assert state.is_cancelled(), state  # type: ignore[attr-defined]
    message = state.message or ""  # type: ignore[attr-defined]
    assert "execution_timeout" in message
    assert "while it was running" in message
    assert not marker.exists()  # the stuck step never finished
    stored = _read_state(state)
    assert stored.is_cancelled()  # type: ignore[attr-defined]
    assert "execution_timeout" in (stored.message or "")  # type: ignore[attr-defined]
    halted = [e for e in audit_trail(state) if e.event == "policy.halted"]
    assert [e.payload.get("watchdog") for e in halted] == [True]


def test_time_policy_halts_a_step_stuck_in_sleep(ledger: Ledger, tmp_path: Path) -> None:
    """A task blocked in one long sleep is interrupted; the run ends Cancelled with the reason."""
    marker = tmp_path / "finished"

    @governed_task
    def stuck_step() -> None:
        time.sleep(600)
        marker.touch()

    @governed_flow(policies=[STUCK])
    def agent() -> None:
        stuck_step()

    state = agent(return_state=True)
    _assert_halted(state, marker)
    [decision] = [
        d for d in ledger.policies.for_flow_run(str(state.state_details.flow_run_id)) if d.matched
    ]
    assert decision.policy_name == "execution_timeout"
    assert decision.context["execution_time"] > 1


def test_time_policy_halts_a_flow_running_in_another_thread(ledger: Ledger, tmp_path: Path) -> None:
    """Off the main thread, the step is interrupted when it next runs Python code."""
    marker = tmp_path / "finished"

    @governed_task
    def busy_step() -> None:
        for _ in range(6000):
            time.sleep(0.1)
        marker.touch()

    @governed_flow(policies=[STUCK])
    def agent() -> None:
        busy_step()

    with ThreadPoolExecutor(1) as pool:
        state = pool.submit(agent, return_state=True).result(timeout=300)
    _assert_halted(state, marker)


def test_time_policy_halts_an_async_flow_awaiting_a_step(ledger: Ledger, tmp_path: Path) -> None:
    """In an async flow, the halt cancels the flow's asyncio task at its await."""
    import asyncio

    marker = tmp_path / "finished"

    @governed_task
    async def stuck_step() -> None:
        await asyncio.sleep(600)
        marker.touch()

    @governed_flow(policies=[STUCK])
    async def agent() -> None:
        await stuck_step()

    state = asyncio.run(agent(return_state=True))  # type: ignore[call-overload]
    _assert_halted(state, marker)


class _Inbox(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, object]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    _Inbox.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Inbox.received
    server.shutdown()


def test_time_policy_notifies_while_the_step_runs_once(
    ledger: Ledger, inbox: tuple[str, list[dict[str, object]]]
) -> None:
    """Notify and AuditLog fire during the step, once, and the run goes on to complete."""
    url, received = inbox
    CustomWebhookNotificationBlock(
        name="ops-hook", url=url, json_data={"text": "{{body}}", "title": "{{subject}}"}
    ).save("watchdog-ops", overwrite=True)
    slow = Policy(
        name="slow-run",
        condition="kind == 'flow' && execution_time > 1",
        actions=[Notify("custom-webhook/watchdog-ops"), AuditLog(severity="high")],
    )

    @governed_task
    def long_step() -> int:
        deadline = time.monotonic() + 300
        while not received and time.monotonic() < deadline:  # waits for the page to arrive
            time.sleep(0.05)
        time.sleep(1)  # several more watchdog ticks: the policy must not fire again
        return len(received)

    @governed_flow(policies=[slow])
    def agent() -> int:
        return long_step()

    state = agent(return_state=True)
    assert state.is_completed()
    assert state.result() == 1
    assert len(received) == 1
    assert "slow-run" in str(received[0]["title"])
    events = [e.event for e in audit_trail(state)]
    assert events.count("policy.notified") == 1
    assert events.count("policy.matched") == 1
