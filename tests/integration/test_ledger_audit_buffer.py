"""Task audit events are committed off the task's path, and never lost on a normal exit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from wflo_prefect import governed_flow, governed_task
from wflo_prefect.errors import LedgerError
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.audit_buffer import FLUSH_INTERVAL, AuditBuffer
from wflo_prefect.observability.correlation import Correlation


def _stored(url: str, flow_run_id: str) -> list[str]:
    """Events of a run as another connection (another process would) sees them."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select event from wflo_audit_events where flow_run_id = :f "
                    "order by occurred_at, id"
                ),
                {"f": flow_run_id},
            )
            return [r[0] for r in rows]
    finally:
        engine.dispose()


def test_appended_events_are_committed_without_a_flush(any_ledger: Ledger) -> None:
    """An appended event reaches the database by itself, seen from another connection."""
    url = any_ledger.engine.url.render_as_string(hide_password=False)
    ids = Correlation(flow_run_id="run-append", task_run_id="t-1")
    any_ledger.audit.append("task_run.started", correlation=ids)
    for _ in range(200):  # bounded wait: at most 10 s
        if _stored(url, "run-append"):
            break
        time.sleep(0.05)
    assert _stored(url, "run-append") == ["task_run.started"]


def test_a_finished_flow_run_has_every_task_event_committed(any_ledger: Ledger) -> None:
    """When a governed flow returns, its task events are in the database, in order."""

    @governed_task
    def step(x: int) -> int:
        return x

    @governed_flow
    def steps() -> int:
        return sum(step(i) for i in range(5))

    state = steps(return_state=True)
    url = any_ledger.engine.url.render_as_string(hide_password=False)
    events = _stored(url, str(state.state_details.flow_run_id))
    assert events[0] == "flow_run.started"
    assert events[-1] == "flow_run.completed"
    assert events[1:-1] == ["task_run.started", "task_run.completed"] * 5


def test_events_appended_just_before_exit_are_written(ledger: Ledger) -> None:
    """A process that appends events and exits at once still commits all of them."""
    url = ledger.engine.url.render_as_string(hide_password=False)
    script = (
        "from wflo_prefect.ledger import get_ledger\n"
        "from wflo_prefect.observability.correlation import Correlation\n"
        "audit = get_ledger().audit\n"
        "for i in range(300):\n"
        "    audit.append('task_run.started', correlation=Correlation(flow_run_id='exit-run'))\n"
    )
    env = {**os.environ, "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": url}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    assert len(_stored(url, "exit-run")) == 300


def test_a_refusing_database_makes_flush_fail_and_nothing_is_written_twice() -> None:
    """Rows the database refuses stay queued: flush raises LedgerError, then retries once."""
    written: list[int] = []
    refuse = [True]

    def write(rows: list[dict[str, Any]]) -> None:
        if refuse[0]:
            raise sa.exc.OperationalError("insert", {}, Exception("database is locked"))
        written.extend(r["n"] for r in rows)

    buffer = AuditBuffer(write, name="test")
    for n in range(3):
        buffer.append({"n": n, "event": "task_run.started"})
    with pytest.raises(LedgerError, match="could not be written") as caught:
        buffer.flush(timeout=0.3)
    assert caught.value.value == 3
    refuse[0] = False
    buffer.flush(timeout=10)
    buffer.close()
    assert written == [0, 1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_does_not_write_its_parents_queued_rows() -> None:
    """After a fork, rows the parent queued are written by the parent only."""
    written: list[tuple[int, int]] = []
    gate = [True]

    def write(rows: list[dict[str, Any]]) -> None:
        while gate[0]:
            time.sleep(0.01)
        written.extend((os.getpid(), r["n"]) for r in rows)

    buffer = AuditBuffer(write, name="fork")
    buffer.append({"n": 1})
    pid = os.fork()
    if pid == 0:  # child: its flush must not find the parent's row to write
        gate[0] = False
        try:
            buffer.flush(timeout=2)
            os._exit(0 if not written else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    gate[0] = False
    buffer.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert written == [(os.getpid(), 1)]


def test_a_row_the_database_can_never_take_does_not_hold_up_the_others(ledger: Ledger) -> None:
    """A permanently refused row (a duplicate id) is skipped and logged; the rest are stored."""
    url = ledger.engine.url.render_as_string(hide_password=False)
    ids = Correlation(flow_run_id="run-poison")
    first = ledger.audit.record("flow_run.started", correlation=ids)
    good = ledger.audit._values("task_run.started", ids, None, None, {}, None)
    poison = {**ledger.audit._values("task_run.started", ids, None, None, {}, None), "id": first.id}
    later = ledger.audit._values("task_run.completed", ids, None, "completed", {}, None)
    buffer = AuditBuffer(ledger.audit._insert, name="poison")
    for row in (good, poison, later):
        buffer.append(row)
    buffer.close()
    assert _stored(url, "run-poison") == [
        "flow_run.started",
        "task_run.started",
        "task_run.completed",
    ]


class _CountingCondition(threading.Condition):
    """A condition that counts how often it wakes its waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.wakeups = 0

    def notify_all(self) -> None:
        self.wakeups += 1
        super().notify_all()


def test_the_writer_is_woken_once_per_batch_not_once_per_row() -> None:
    """Rows appended while a batch gathers do not wake the writer again.

    Each wake-up makes the writer thread compete with the governed task for the
    interpreter; one per row put two on the path of every task.
    """
    written: list[int] = []
    buffer = AuditBuffer(lambda rows: written.extend(r["n"] for r in rows), name="wakeups")
    condition = _CountingCondition()
    buffer._cond = condition
    for n in range(50):  # far quicker than FLUSH_INTERVAL
        buffer.append({"n": n})
    appended_wakeups = condition.wakeups
    buffer.close()
    assert written == list(range(50))
    assert appended_wakeups == 1


def test_a_steady_stream_of_rows_is_committed_in_few_batches() -> None:
    """Rows appended steadily (a task every 10 ms) are committed about once per
    FLUSH_INTERVAL. Every commit is a burst of work on the writer thread that the
    governed task's thread must hand the interpreter lock to, so commits stay few."""
    batches: list[int] = []
    buffer = AuditBuffer(lambda rows: batches.append(len(rows)), name="steady")
    start = time.monotonic()
    appended = 0
    while time.monotonic() - start < 1.0:
        buffer.append({"n": appended})
        appended += 1
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    buffer.close()
    assert sum(batches) == appended
    # One batch per FLUSH_INTERVAL at most, plus the one close() commits.
    assert len(batches) <= elapsed / FLUSH_INTERVAL + 2
    assert len(batches) <= 5, batches
