"""Async governed code: approval waits, holds and guards never stop the event loop.

Decisions are made from another thread through wflo's real decision path
(``decide``), the flow runs against the real Prefect API of the test session.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from approval_support import paused_request, start_flow, wait_for
from prefect import flow
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL
from sqlalchemy import event
from typer.testing import CliRunner

from wflo_prefect import ApprovalPolicy, ApprovalRejected, governed_task
from wflo_prefect.approvals import Vote, decide
from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger

TICK = 0.1


@contextmanager
def statement_threads(ledger: Ledger) -> Iterator[list[int]]:
    """The thread id of every SQL statement the ledger runs inside the block."""
    seen: list[int] = []

    def record(*_: Any) -> None:
        seen.append(threading.get_ident())

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)


def run_async_flow(fn: Any, *args: Any) -> Any:
    """Start an async flow in a background thread (its own event loop)."""
    return start_flow(lambda return_state: asyncio.run(fn(*args, return_state=return_state)))


def test_event_loop_keeps_ticking_while_a_gated_async_task_waits(ledger: Ledger) -> None:
    """A 0.1 s heartbeat keeps >= 70% of its ticks during the wait; no ledger I/O on the loop."""

    @governed_task(approval=ApprovalPolicy())
    async def deploy(version: str) -> str:
        return f"deployed {version}"

    @flow
    async def release() -> dict[str, Any]:
        loop_thread = threading.get_ident()
        stop = asyncio.Event()
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(TICK)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        started = time.monotonic()
        with statement_threads(ledger) as threads:
            result = await deploy("v2")
        waited = time.monotonic() - started
        stop.set()
        await beat
        return {
            "result": result,
            "ticks": ticks,
            "waited": waited,
            "on_loop": sum(1 for t in threads if t == loop_thread),
            "statements": len(threads),
        }

    future = run_async_flow(release)
    request = paused_request("run task deploy")
    assert request.details["version"] == "v2"
    time.sleep(3)  # the gate waits; the heartbeat should go on meanwhile
    decide(request.id, Vote("erin", True, request.digest, "api"))
    out = future.result(timeout=120).result()
    assert out["result"] == "deployed v2"
    assert out["waited"] >= 3
    expected = out["waited"] / TICK
    assert out["ticks"] >= 0.7 * expected, out
    assert out["statements"] > 0
    assert out["on_loop"] == 0, out


def test_gather_of_ten_gated_tasks_waits_for_ten_decisions_at_once(ledger: Ledger) -> None:
    """Ten gated async tasks wait together; each is resumed by its own decision."""

    @governed_task(approval=ApprovalPolicy())
    async def publish(n: int) -> int:
        return n

    @flow
    async def fan_out() -> list[Any]:
        return await asyncio.gather(*(publish(n) for n in range(10)), return_exceptions=True)

    future = run_async_flow(fan_out)

    def ten_pending() -> list[Any]:
        pending = ledger.approvals.list_requests(status="pending")
        found = [r for r in pending if r.action == "run task publish"]
        # Each gate listens for the push that wakes it (its waiter row's address).
        waiters = [ledger.approvals.waiter(r.id) for r in found]
        waiting = all(w is not None and w.wake for w in waiters)
        return found if len(found) == 10 and waiting else []

    requests = wait_for(ten_pending, timeout=120, what="ten pending approval requests")
    assert sorted(r.details["n"] for r in requests) == list(range(10))
    # One gate paused the run; the nine opened while it waits wait on the ledger.
    assert sorted(r.policy.mode for r in requests) == ["await"] * 9 + ["pause"]
    random.Random(13).shuffle(requests)
    # Decide an awaited gate first: its decision must not resume the run another
    # gate paused (that would hand the paused gate an answer it never got).
    requests.sort(key=lambda r: r.policy.mode != "await")
    paused = next(r for r in requests if r.policy.mode == "pause")

    # The first decision resumes its task alone; the other nine keep waiting.
    first = requests[0]
    decide(first.id, Vote("erin", True, first.digest, "api"))
    assert first.task_run_id

    def first_task_completed() -> bool:
        from uuid import UUID

        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        # Prefect writes task runs from its event stream: the row may not be there yet.
        try:
            with get_client(sync_client=True) as client:
                state = client.read_task_run(UUID(first.task_run_id)).state
        except ObjectNotFound:
            return False
        return state is not None and state.is_completed()

    wait_for(first_task_completed, timeout=60, what="the first decided task to complete")
    still = {r.id for r in ledger.approvals.list_requests(status="pending")}
    assert {r.id for r in requests[1:]} <= still
    # The run is still paused by the other gate, and nobody claimed resuming it.
    run_state = read_state(first.flow_run_id or "")
    assert run_state is not None
    assert run_state.is_paused()
    for settled_id in (first.id, paused.id):
        found = ledger.approvals.get(settled_id)
        assert found is not None
        assert found.resumed_at is None

    denied = requests[1]
    decide(denied.id, Vote("erin", False, denied.digest, "api", comment="not this one"))
    for request in requests[2:]:
        decide(request.id, Vote("erin", True, request.digest, "api"))
    results = future.result(timeout=180).result()
    for n, result in enumerate(results):
        if n == denied.details["n"]:
            assert isinstance(result, ApprovalRejected)
        else:
            assert result == n
    assert read_state(first.flow_run_id or "") is not None


SUSPEND_SERVED = Path(__file__).with_name("approval_suspend_async_flow.py")


def test_async_flow_suspends_and_passes_when_rescheduled(ledger: Ledger) -> None:
    """suspend=True in a deployed async flow: the run suspends, the CLI approves, it completes."""
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": ledger.engine.url.render_as_string(
            hide_password=False
        ),
    }
    server = subprocess.Popen(
        [sys.executable, str(SUSPEND_SERVED)],
        env=env,
        cwd=SUSPEND_SERVED.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def started() -> Any:
        try:
            return run_deployment("suspended-async-release/suspend-async-test", timeout=0)
        except Exception:
            return None

    try:
        run = wait_for(started, timeout=60, what="the served deployment")
        request = paused_request("publish async release", timeout=90)
        state = read_state(run.id)
        assert state is not None
        assert state.name == "Suspended"
        result = CliRunner().invoke(app, ["approvals", "approve", request.id, "--as", "erin"])
        assert result.exit_code == 0, result.output

        def completed() -> bool:
            final = read_state(run.id)
            return final is not None and final.is_completed()

        wait_for(completed, timeout=90, what="the rescheduled run to complete")
        settled = ledger.approvals.get(request.id)
        assert settled is not None
        assert settled.status == "approved"
        assert settled.applied_at is not None
        assert settled.applied_by == "gate"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_instrumented_async_client_holds_and_settles_off_the_loop(ledger: Ledger) -> None:
    """AsyncOpenAI under instrument(): every ledger statement of a call runs off the loop."""
    import openai
    from fakes.openai_server import FakeOpenAI

    from wflo_prefect import Budget, governed_flow, instrument

    with FakeOpenAI() as server:

        @governed_flow(budget=Budget("1.00", scope="flow_run"))
        async def ask() -> dict[str, Any]:
            client = instrument(
                openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
            )
            loop_thread = threading.get_ident()
            with statement_threads(ledger) as threads:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
                )
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
                )
                async for _ in stream:
                    pass
            return {"on_loop": sum(1 for t in threads if t == loop_thread), "all": len(threads)}

        out = asyncio.run(ask())
    assert out["all"] > 0
    assert out["on_loop"] == 0, out
    assert len(ledger.costs.entries()) == 2
