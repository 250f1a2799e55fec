"""Durable compensations: run newest first when a run fails, retried, once each, after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from prefect.runtime import flow_run
from prefect.transactions import transaction
from typer.testing import CliRunner

from tests.support import undo
from wflo_prefect import (
    InvalidArgumentError,
    compensate,
    governed_flow,
    governed_task,
    list_snapshots,
    restore_snapshot,
    run_compensations,
    snapshot,
)
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the test handlers write what they undid."""
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv(undo.JOURNAL_ENV, str(path))
    return path


@governed_task
def step(name: str) -> str:
    compensate(undo.undo, name)
    return name


@governed_task
def boom() -> None:
    raise RuntimeError("step 4 failed")


def test_failed_run_compensates_in_reverse_order(ledger: Ledger) -> None:
    """Three side effects, then a failure: the three undos run newest first, once each."""

    @governed_flow
    def saga() -> None:
        step("a")
        step("b")
        step("c")
        boom()

    state = saga(return_state=True)
    assert state.is_failed()
    assert [e["undo"] for e in undo.entries()] == ["c", "b", "a"]
    run_id = str(state.state_details.flow_run_id)
    assert {c.status for c in ledger.compensations.for_flow_run(run_id)} == {"done"}
    again = run_compensations(run_id)
    assert again.done == []
    assert again.failed == []
    assert len(undo.entries()) == 3
    events = [e.event for e in audit_trail(state)]
    assert events.count("compensation.registered") == 3
    assert events.count("compensation.done") == 3


def test_successful_run_releases_its_compensations(ledger: Ledger) -> None:
    """When the run completes, nothing is undone and the log says released."""

    @governed_flow
    def fine() -> str:
        return step("x")

    state = fine(return_state=True)
    assert state.is_completed()
    assert undo.entries() == []
    [record] = ledger.compensations.for_flow_run(str(state.state_details.flow_run_id))
    assert record.status == "released"


def test_retries_then_success_and_permanent_failure(ledger: Ledger) -> None:
    """A flaky undo is retried; one that never works ends failed without stopping the rest."""

    @governed_task
    def effects() -> None:
        compensate(undo.undo, "first")
        compensate(undo.flaky_undo, "second", 99, max_attempts=2, retry_delay_s=0)
        compensate(undo.flaky_undo, "third", 1, max_attempts=3, retry_delay_s=0)

    @governed_flow
    def saga() -> None:
        effects()
        boom()

    state = saga(return_state=True)
    run_id = str(state.state_details.flow_run_id)
    by_name = {c.arguments["args"][0]: c for c in ledger.compensations.for_flow_run(run_id)}
    assert by_name["third"].status == "done"
    assert by_name["third"].attempts == 2
    assert by_name["second"].status == "failed"
    assert by_name["second"].attempts == 2
    assert "ConnectionError" in (by_name["second"].last_error or "")
    assert by_name["first"].status == "done"
    assert [e.get("undo") for e in undo.entries() if "undo" in e] == ["third", "first"]


def test_handler_receives_idempotency_key(ledger: Ledger) -> None:
    """A handler that declares idempotency_key gets the key it was registered with."""

    @governed_task
    def effect() -> None:
        compensate(undo.undo, "charge", idempotency_key="charge-42")

    @governed_flow
    def saga() -> None:
        effect()
        boom()

    saga(return_state=True)
    assert undo.entries() == [{"undo": "charge", "key": "charge-42"}]


def test_compensate_keyword_gets_arguments_and_result(ledger: Ledger) -> None:
    """governed_task(compensate=fn) registers fn with the task's arguments and result."""

    @governed_task(compensate=undo.delete_user)
    def create_user(user_id: str) -> str:
        return f"created:{user_id}"

    @governed_flow
    def onboarding() -> None:
        create_user("u1")
        boom()

    onboarding(return_state=True)
    assert undo.entries() == [{"undo": "delete u1", "result": "created:u1"}]


def test_prefect_transaction_rollback_runs_the_compensation_once(ledger: Ledger) -> None:
    """In a Prefect transaction, rollback runs the undo at once, inside the run, once."""

    @governed_task(compensate=undo.delete_user)
    def create_user(user_id: str) -> str:
        return f"created:{user_id}"

    @governed_flow
    def onboarding() -> int:
        try:
            with transaction():
                create_user("u2")
                boom()
        except RuntimeError:
            pass
        return len(undo.entries())  # the undo already happened, before the flow ends

    state = onboarding(return_state=True)
    assert state.result() == 1
    assert undo.entries() == [{"undo": "delete u2", "result": "created:u2"}]
    [record] = ledger.compensations.for_flow_run(str(state.state_details.flow_run_id))
    assert record.status == "done"


def test_concurrent_runners_run_each_compensation_once(ledger: Ledger) -> None:
    """Two processes' worth of runners racing on one run: every undo happens exactly once."""

    @governed_task
    def effects() -> None:
        for i in range(10):
            compensate(undo.undo, f"s{i}")

    @governed_flow
    def saga() -> None:
        effects()

    state = saga(return_state=True)  # completes: compensations released...
    run_id = str(state.state_details.flow_run_id)
    from sqlalchemy import update

    from wflo_prefect.ledger.models import CompensationRow

    with ledger.transaction() as session:  # ...so put them back to pending for the race
        session.execute(update(CompensationRow).values(status="pending"))
    threads = [threading.Thread(target=run_compensations, args=(run_id,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    undone = [e["undo"] for e in undo.entries()]
    assert sorted(undone) == sorted(f"s{i}" for i in range(10))


def test_handlers_must_be_importable_and_arguments_json(ledger: Ledger) -> None:
    """Local functions and non-JSON arguments are refused when registering, naming them."""

    def local_undo() -> None: ...

    @governed_task
    def bad_handler() -> None:
        compensate(local_undo)

    @governed_task
    def bad_args() -> None:
        compensate(undo.undo, object())

    @governed_flow
    def f(which: str) -> None:
        bad_handler() if which == "handler" else bad_args()

    with pytest.raises(InvalidArgumentError, match="importable"):
        f("handler")
    with pytest.raises(InvalidArgumentError, match="JSON"):
        f("args")
    with pytest.raises(InvalidArgumentError, match="inside one"):
        compensate(undo.undo, "outside a run")


def test_compensate_keyword_is_checked_when_applied() -> None:
    """compensate= needs an undo whose parameters the task provides."""
    with pytest.raises(InvalidArgumentError, match="user_id"):

        @governed_task(compensate=undo.delete_user)
        def create(name: str) -> str:
            return name


def test_snapshots_round_trip_and_point_in_time(ledger: Ledger) -> None:
    """snapshot / restore_snapshot by name, by id and at a time; snapshot=True stores arguments."""

    @governed_task(snapshot=True)
    def update_rows(table: str, rows: list[int]) -> int:
        return len(rows)

    @governed_flow
    def stateful() -> dict[str, object]:
        first = snapshot("cursor", {"position": 1})
        snapshot("cursor", {"position": 2})
        update_rows("events", [1, 2])
        return {
            "latest": restore_snapshot("cursor"),
            "by_id": restore_snapshot(snapshot_id=first.id),
            "at_first": restore_snapshot("cursor", at=first.created_at),
            "args": restore_snapshot("task:update_rows"),
            "names": [s.name for s in list_snapshots()],
        }

    result = stateful()
    assert result["latest"] == {"position": 2}
    assert result["by_id"] == {"position": 1}
    assert result["at_first"] == {"position": 1}
    assert result["args"] == {"table": "events", "rows": [1, 2]}
    assert sorted(result["names"]) == ["cursor", "cursor", "task:update_rows"]  # type: ignore[arg-type]


CRASHING_FLOW = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from prefect.testing.utilities import prefect_test_harness
    from tests.support import undo
    from wflo_prefect import compensate, governed_flow, governed_task

    @governed_task
    def charge(amount: int) -> None:
        compensate(undo.undo, f"refund {{amount}}")

    @governed_flow
    def payment() -> None:
        charge(10)
        charge(20)
        from prefect.runtime import flow_run
        print(flow_run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run

    payment()
    """
)


def test_compensations_survive_a_killed_process(ledger: Ledger, tmp_path: Path) -> None:
    """A process killed mid-run leaves its undo log; `wflo compensate run --force` finishes it."""
    env = {
        **os.environ,
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": ledger.engine.url.render_as_string(
            hide_password=False
        ),
    }
    from prefect.settings import PREFECT_API_URL

    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_FLOW.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run_id = proc.stdout.strip().splitlines()[-1]
    assert undo.entries() == []
    assert {c.status for c in ledger.compensations.for_flow_run(run_id)} == {"pending"}

    cli = CliRunner()
    refused = cli.invoke(app, ["compensate", "run", run_id])
    assert refused.exit_code == 1
    assert "--force" in refused.output
    done = cli.invoke(app, ["compensate", "run", run_id, "--force"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert [e["undo"] for e in undo.entries()] == ["refund 20", "refund 10"]

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)  # type: ignore[arg-type]
    assert flow_run.state is not None
    assert flow_run.state.is_crashed()
    assert cli.invoke(app, ["compensate", "run", run_id, "--force"]).exit_code == 0
    assert len(undo.entries()) == 2


@governed_task
def noting_step(name: str) -> None:
    compensate(undo.undo_noting_run_state, name, flow_run.id)


def test_a_failed_run_is_undone_before_prefect_reports_it_failed(ledger: Ledger) -> None:
    """Whoever sees the run Failed (a person, an automation) finds its effects undone."""

    @governed_flow
    def saga() -> None:
        noting_step("a")
        boom()

    @governed_flow
    async def async_saga() -> None:
        noting_step("b")
        boom()

    assert saga(return_state=True).is_failed()
    assert asyncio.run(async_saga(return_state=True)).is_failed()
    assert [(e["undo"], e["run_state"]) for e in undo.entries()] == [
        ("a", "RUNNING"),
        ("b", "RUNNING"),
    ]


def test_a_run_prefect_retries_is_undone_once_its_last_attempt_failed(ledger: Ledger) -> None:
    """Between attempts nothing is undone; after the last one every attempt's effects are."""
    attempts: list[int] = []

    @governed_flow(retries=2, retry_delay_seconds=0)
    def flaky() -> None:
        attempts.append(len(undo.entries()))
        noting_step(f"attempt {len(attempts)}")
        boom()

    state = flaky(return_state=True)
    assert state.is_failed()
    assert attempts == [0, 0, 0]
    assert [e["undo"] for e in undo.entries()] == ["attempt 3", "attempt 2", "attempt 1"]
    assert {e["run_state"] for e in undo.entries()} == {"RUNNING"}


@governed_flow
def failing_child() -> None:
    boom()


def test_a_flow_function_called_directly_does_not_undo_the_run_calling_it(
    ledger: Ledger,
) -> None:
    """``.fn()`` runs inside the caller's flow run: its error is the caller's to handle."""

    @governed_flow
    def parent() -> str:
        step("kept")
        with pytest.raises(RuntimeError):
            failing_child.fn()
        return "handled"

    state = parent(return_state=True)
    assert state.is_completed()
    assert undo.entries() == []


def test_a_flow_with_a_timeout_is_undone_by_its_end_hook(ledger: Ledger) -> None:
    """Its undo does not run inside (and cannot be cut by) the run's timeout."""

    @governed_flow(timeout_seconds=60)
    def timed() -> None:
        noting_step("t")
        boom()

    assert timed(return_state=True).is_failed()
    assert [e["undo"] for e in undo.entries()] == ["t"]
