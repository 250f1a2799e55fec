"""Waiting gates' wake-ups, against the real Prefect API and its event stream.

What a waiting gate costs must not grow with the gates of a process (one event
subscription and one thread for all of them), and only a change of the run's
state, or a push to that gate's own address, may wake it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from approval_support import paused_request, start_flow, wait_for
from prefect import flow
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.flow_runs import resume_flow_run

from wflo_prefect import Approvers, require_approval
from wflo_prefect.approvals import Principal, Vote, decide, hash_api_key, prefect_run, wakeup
from wflo_prefect.approvals import waiter as waiter_module
from wflo_prefect.approvals.decisions import one_time_code
from wflo_prefect.approvals.wakeup import RunWatcher, poke
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.models import utcnow


def _emit(run_id: str, name: str, occurred: datetime) -> None:
    async def send() -> None:
        async with get_events_client() as client:
            await client.emit(
                Event(
                    event=name,
                    occurred=occurred,
                    resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"},
                )
            )

    asyncio.run(send())


def _watching(run_id: str) -> RunWatcher:
    watcher = RunWatcher(run_id).start()
    assert watcher.connected, "the event subscription did not cover the run"
    watcher.arm()
    watcher.paused(datetime.now(UTC) - timedelta(seconds=2))
    return watcher


def test_a_heartbeat_of_the_waiting_run_does_not_wake_its_gate() -> None:
    """Prefect sends ``prefect.flow-run.heartbeat`` while a paused run waits; a gate
    woken by each would read the run again, for every waiting run, all the time."""
    run_id = str(uuid.uuid4())
    watcher = _watching(run_id)
    try:
        _emit(run_id, "prefect.flow-run.heartbeat", datetime.now(UTC))
        assert not watcher.wait(3.0), "a heartbeat woke the gate"
        _emit(run_id, "prefect.flow-run.Running", datetime.now(UTC))
        assert watcher.wait(15.0), "the run's Running event did not wake the gate"
        assert watcher.resumed
    finally:
        watcher.close()


def test_many_waiting_gates_share_one_subscription_thread() -> None:
    """Thirty gates of one process add at most one thread (the process's hub), and an
    event for one run wakes that run's gate only."""
    before = threading.active_count()
    runs = [str(uuid.uuid4()) for _ in range(30)]
    watchers = [_watching(run) for run in runs]
    try:
        assert threading.active_count() - before <= 1
        _emit(runs[17], "prefect.flow-run.Running", datetime.now(UTC))
        assert watchers[17].wait(15.0)
        assert [i for i, w in enumerate(watchers) if w.wait(0.0)] == []
        # A run added after the others is covered too (the subscription widened).
        late = _watching(str(uuid.uuid4()))
        watchers.append(late)
        _emit(late.flow_run_id, "prefect.flow-run.Completed", datetime.now(UTC))
        assert late.wait(15.0)
        _emit(runs[3], "prefect.flow-run.Running", datetime.now(UTC))
        assert watchers[3].wait(15.0), "an earlier run's events stopped after widening"
    finally:
        for watcher in watchers:
            watcher.close()


def test_a_push_wakes_only_the_gate_it_names() -> None:
    """Every gate of a process shares one loopback socket: the push names the gate."""
    first, second = _watching(str(uuid.uuid4())), _watching(str(uuid.uuid4()))
    try:
        assert first.address != second.address
        poke(second.address)
        assert second.wait(5.0)
        assert not first.wait(0.5)
        where = second.address.partition("/")[0]
        poke(f"{where}/not-a-gate")  # an unknown name wakes nobody
        assert not first.wait(0.5)
        assert not second.wait(0.0)
    finally:
        first.close()
        second.close()


def test_a_waiting_gate_reads_its_run_only_on_events_or_the_slow_poll(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its heartbeats go to the ledger; the run is not read from Prefect at each one
    (a thousand waiting gates would read their runs every heartbeat period)."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_HEARTBEAT_SECONDS", "0.1")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_FALLBACK_POLL_SECONDS", "60")
    reads: list[object] = []
    real_read = prefect_run.read_state

    def counted(run_id: object) -> object:
        reads.append(run_id)
        return real_read(run_id)  # type: ignore[arg-type]

    monkeypatch.setattr(waiter_module, "read_state", counted)

    @flow
    def ship() -> object:
        return require_approval("beat without reading", details={"v": 1})

    future = start_flow(ship)
    request = paused_request("beat without reading")
    first = ledger.approvals.waiter(request.id)
    time.sleep(1.0)
    beaten = ledger.approvals.waiter(request.id)
    assert first is not None
    assert beaten is not None
    assert beaten.heartbeat_at > first.heartbeat_at, "the gate stopped beating"
    assert reads == [], f"the gate read its run {len(reads)} times while nothing happened"
    decide(request.id, Vote("ops", True, request.digest, "cli"))
    assert future.result(timeout=60).is_completed()


def test_a_watched_runs_events_all_arrive_while_other_gates_join(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each gate that joins widens the process's subscription; none of the events of a
    run already watched may fall between the old subscription and the new one."""
    run = str(uuid.uuid4())
    arrived: set[object] = set()
    real_dispatch = wakeup._Hub._dispatch

    def spy(self: wakeup._Hub, event: Event) -> None:
        if event.resource.id == f"prefect.flow-run.{run}":
            arrived.add(event.id)
        real_dispatch(self, event)

    monkeypatch.setattr(wakeup._Hub, "_dispatch", spy)
    watcher = _watching(run)
    sent: list[object] = []
    stop = threading.Event()

    def emit_every_20_ms() -> None:
        async def go() -> None:
            async with get_events_client() as client:
                while not stop.is_set():
                    event = Event(
                        event="prefect.flow-run.Tick",
                        occurred=datetime.now(UTC),
                        resource={"prefect.resource.id": f"prefect.flow-run.{run}"},
                    )
                    await client.emit(event)
                    sent.append(event.id)
                    await asyncio.sleep(0.02)

        asyncio.run(go())

    emitter = threading.Thread(target=emit_every_20_ms)
    emitter.start()
    joined: list[RunWatcher] = []
    try:
        for _ in range(60):
            joined.append(RunWatcher(str(uuid.uuid4())).start())
        stop.set()
        emitter.join()
        wait_for(lambda: set(sent) <= arrived, timeout=15.0, what="every event of the run")
    finally:
        stop.set()
        watcher.close()
        for other in joined:
            other.close()
    assert len(sent) > 20


def test_an_answer_given_in_the_ui_just_before_the_deadline_counts(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's ``Running`` event has not reached the gate by the deadline (late, or
    lost): the gate reads the run at the deadline and counts the answer, instead of
    timing the request out."""
    real_seen = RunWatcher.seen

    def running_event_late(self: RunWatcher, occurred: datetime, name: str) -> None:
        if name != "prefect.flow-run.Running":
            real_seen(self, occurred, name)

    monkeypatch.setattr(RunWatcher, "seen", running_event_late)
    users = Approvers(
        users=[Principal(name="alice", email="a@example.com", api_key_hashes=[hash_api_key("k")])]
    )

    @flow
    def release() -> object:
        return require_approval(
            "release before the deadline",
            approvers=["alice"],
            principals=users,
            timeout=5,
            on_timeout="reject",
        )

    future = start_flow(release)
    request = paused_request("release before the deadline")
    assert request.deadline_at is not None
    left = (request.deadline_at - utcnow()).total_seconds()
    time.sleep(max(left - 1.5, 0.0))
    answer = {
        "decision": "approve",
        "approver": "alice",
        "code": one_time_code(request, "alice"),
        "comment": "",
    }
    resume_flow_run(request.flow_run_id, run_input=answer)
    assert future.result(timeout=60).is_completed()
    final = ledger.approvals.get(request.id)
    assert final is not None
    assert final.status == "approved"
