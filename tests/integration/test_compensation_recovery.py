"""Recovery without a human: a saga SIGKILLed at every step boundary is compensated by itself.

Each compensation runs exactly once, newest first, through the sweeper and through
the Prefect automations (zombie detection -> Crashed -> the recovery deployment).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from tests.support import undo
from wflo_prefect.cli import app
from wflo_prefect.compensation.automations import (
    CRASHED_EVENT,
    RECOVER_NAME,
    ZOMBIE_NAME,
    recovery_automations,
)
from wflo_prefect.compensation.heartbeat import HEARTBEAT_EVENT
from wflo_prefect.compensation.recovery import parse_flow_run_id, recover_run, sweep
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3
BOUNDARIES = range(STEPS + 1)  # before step 1, after step 1, 2 and 3


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv(undo.JOURNAL_ENV, str(path))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_RECOVERY_HEARTBEAT_SECONDS", "0.5")
    return path


def _start_saga(kill_at: int, tag: str) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.saga", str(kill_at), tag],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _killed_sagas(tag: str) -> dict[int, str]:
    """One saga per boundary, each killed there; their flow run ids by boundary."""
    procs = {k: _start_saga(k, f"{tag}{k}") for k in BOUNDARIES}
    runs = {}
    for k, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
        runs[k] = out.strip().splitlines()[0]
    return runs


def _undone(tag: str) -> list[str]:
    return [str(e["undo"]) for e in undo.entries() if str(e["undo"]).startswith(f"{tag}:")]


def _expected(tag: str, kill_at: int) -> list[str]:
    return [f"{tag}:step-{n}" for n in range(kill_at, 0, -1)]


def _wait_for(predicate: object, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}")


def _state(run_id: str) -> object:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(run_id)).state


def test_sweeper_recovers_sagas_killed_at_every_boundary(ledger: Ledger) -> None:
    """`wflo compensate sweep` marks the silent runs Crashed and undoes each step once, newest
    first; a second sweep finds nothing left."""
    runs = _killed_sagas("sweep")
    for k, run in runs.items():
        assert {c.status for c in ledger.compensations.for_flow_run(run)} <= {"pending"}
        assert len(ledger.compensations.for_flow_run(run)) == k
    cli = CliRunner()
    # The killed runs' last heartbeat is at least a moment old; anything silent for 1 s is dead.
    time.sleep(1.5)
    result = cli.invoke(app, ["compensate", "sweep", "--stale-after", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for k, run in runs.items():
        assert _undone(f"sweep{k}") == _expected(f"sweep{k}", k), (k, undo.entries())
        if k:
            assert {c.status for c in ledger.compensations.for_flow_run(run)} == {"done"}
            state = _state(run)
            assert state.is_crashed(), state  # type: ignore[attr-defined]
            assert "heartbeat" in (state.message or "")  # type: ignore[attr-defined]
    assert recover_run(runs[0]).verdict == "nothing"  # killed before its first step
    again = cli.invoke(app, ["compensate", "sweep", "--stale-after", "1"])
    assert again.exit_code == 0
    assert "No flow run has outstanding compensations" in again.output
    assert len(undo.entries()) == sum(BOUNDARIES)


def test_sweep_leaves_a_live_run_alone(ledger: Ledger, tmp_path: Path) -> None:
    """A run that still beats is not touched however long it runs; once it dies, it is."""
    gate = tmp_path / "release"
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from tests.support import undo\n"
        "from wflo_prefect import compensate, governed_flow\n"
        "@governed_flow\n"
        "def slow() -> None:\n"
        "    from prefect.runtime import flow_run\n"
        "    compensate(undo.undo, 'slow:step-1')\n"
        "    print(flow_run.id, flush=True)\n"
        f"    while not Path({str(gate)!r}).exists(): time.sleep(0.1)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "slow()\n"
    )
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        run = proc.stdout.readline().strip()
        for _ in range(3):  # several sweeps over a few heartbeats: always alive
            time.sleep(1)
            [outcome] = [
                o for o in sweep(stale_after=timedelta(seconds=30)) if o.flow_run_id == run
            ]
            assert outcome.verdict == "alive"
        assert undo.entries() == []
    finally:
        gate.touch()
        proc.wait(timeout=120)
    _wait_for(
        lambda: recover_run(run, stale_after=timedelta(seconds=1)).verdict == "compensated",
        "the dead run to be compensated",
        timeout=60,
    )
    assert _undone("slow") == ["slow:step-1"]
    assert recover_run(run).verdict == "compensated"  # nothing left: runs nothing more
    assert _undone("slow") == ["slow:step-1"]


def test_parse_flow_run_id_takes_uuid_or_resource_id() -> None:
    """The recovery flow takes the automation's {{ event.resource.id }} or a bare id."""
    run = str(uuid.uuid4())
    assert parse_flow_run_id(run) == run
    assert parse_flow_run_id(f"prefect.flow-run.{run}") == run
    with pytest.raises(InvalidArgumentError, match="UUID"):
        parse_flow_run_id("prefect.flow-run.nope")


def test_automation_triggers_match_crashed_and_silent_runs() -> None:
    """Server-side, the recovery trigger covers a flow run's Crashed event (not Completed);
    the zombie trigger starts after a heartbeat and is satisfied by a beat or a final state."""
    from prefect.server.events.schemas.automations import AutomationCore as ServerAutomation
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.types._datetime import now

    zombie, recover = (
        ServerAutomation.model_validate(a.model_dump(mode="json"))
        for a in recovery_automations(uuid.uuid4(), zombie_after=15)
    )
    run = f"prefect.flow-run.{uuid.uuid4()}"

    def event(name: str, resource: str = run) -> ReceivedEvent:
        return ReceivedEvent(
            occurred=now("UTC"),
            event=name,
            resource={"prefect.resource.id": resource},
            id=uuid.uuid4(),
        )

    assert recover.trigger.covers(event(CRASHED_EVENT))  # type: ignore[union-attr]
    assert not recover.trigger.covers(event("prefect.flow-run.Completed"))  # type: ignore[union-attr]
    assert not recover.trigger.covers(event(CRASHED_EVENT, f"prefect.task-run.{uuid.uuid4()}"))  # type: ignore[union-attr]
    assert zombie.trigger.starts_after(HEARTBEAT_EVENT)  # type: ignore[union-attr]
    assert zombie.trigger.starts_after("prefect.flow-run.heartbeat")  # type: ignore[union-attr]
    for final in ("Completed", "Failed", "Cancelled", "Crashed"):
        assert zombie.trigger.expects(f"prefect.flow-run.{final}")  # type: ignore[union-attr]
    assert zombie.trigger.covers(event(HEARTBEAT_EVENT))  # type: ignore[union-attr]
    assert not zombie.trigger.expects("prefect.flow-run.Running")  # type: ignore[union-attr]
    [action] = recover.actions
    assert action.parameters == {"flow_run_id": "{{ event.resource.id }}"}  # type: ignore[union-attr]


@pytest.fixture
def recovery_deployment(ledger: Ledger) -> Iterator[str]:
    """flows/recovery.py served (`flow.serve`) in a process of its own; yields FLOW/NAME."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PYTHONPATH": str(ROOT),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    serve = (
        "from flows.recovery import recover_run_flow\n"
        "recover_run_flow.serve(name='wflo-recover-run', limit=8)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", serve], cwd=ROOT, env=env)
    name = "wflo-recover-run/wflo-recover-run"

    def deployed() -> bool:
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(name)
            except Exception:
                return False
        return True

    try:
        _wait_for(deployed, "the recovery deployment", timeout=180)
        yield name
    finally:
        with get_client(sync_client=True) as client:
            for automation in (RECOVER_NAME, ZOMBIE_NAME):
                for found in client.read_automations_by_name(automation):
                    client.delete_automation(found.id)
        proc.terminate()
        proc.wait(timeout=60)


def test_automations_recover_sagas_killed_at_every_boundary(
    ledger: Ledger, recovery_deployment: str
) -> None:
    """Nobody types a command: heartbeats stop, the zombie automation sets the runs Crashed,
    the recovery automation runs the deployment, and every step is undone once, newest first."""
    cli = CliRunner()
    shown = cli.invoke(
        app, ["compensate", "automations", recovery_deployment, "--print"], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    assert '"prefect.flow-run.Crashed"' in shown.output
    assert '"wflo.flow-run.heartbeat"' in shown.output
    assert '"{{ event.resource.id }}"' in shown.output
    made = cli.invoke(
        app, ["compensate", "automations", recovery_deployment, "--zombie-after", "10"]
    )
    assert made.exit_code == 0, made.output
    assert RECOVER_NAME in made.output
    assert ZOMBIE_NAME in made.output
    runs = _killed_sagas("auto")

    def recovered() -> bool:
        return all(
            all(c.status == "done" for c in ledger.compensations.for_flow_run(run))
            for run in runs.values()
        )

    _wait_for(recovered, "the automations to compensate every killed saga", timeout=400)
    for k, run in runs.items():
        assert _undone(f"auto{k}") == _expected(f"auto{k}", k), (k, undo.entries())
        if k:
            state = _state(run)
            assert state.is_crashed(), state  # type: ignore[attr-defined]
    assert len(undo.entries()) == sum(BOUNDARIES)
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        recoveries = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["wflo-recover-run"]))
        )
    recovered_ids = {
        str(r.parameters.get("flow_run_id", "")).rpartition(".")[2] for r in recoveries
    }
    assert {run for k, run in runs.items() if k} <= recovered_ids
