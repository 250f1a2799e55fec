"""The seeds' spelling of compensations: CompensatingAction + add_compensating_action."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.support import undo
from wflo_prefect import (
    CompensatingAction,
    InvalidArgumentError,
    add_compensating_action,
    compensate,
    execute_compensating_actions,
    governed_flow,
    governed_task,
)
from wflo_prefect.ledger import Ledger


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv(undo.JOURNAL_ENV, str(path))
    return path


@governed_task
def send_campaign(recipients: list[str]) -> int:
    add_compensating_action(
        CompensatingAction(
            name="unsend_emails",
            handler=functools.partial(undo.undo, f"emails to {len(recipients)}"),
        )
    )
    return len(recipients)


@governed_task
def charge(amount: int) -> None:
    compensate(undo.undo, f"refund {amount}")


@governed_task
def fail() -> None:
    raise RuntimeError("later step failed")


def test_seeds_spelling_runs_beside_compensate_newest_first(ledger: Ledger) -> None:
    """Both spellings land in one undo log and run newest first when the run fails."""

    @governed_flow
    def campaign() -> None:
        charge(5)
        send_campaign(["a@example.com", "b@example.com"])
        add_compensating_action(
            CompensatingAction(name="note", handler=undo.undo, args=("flow-level note",))
        )
        fail()

    state = campaign(return_state=True)
    assert state.is_failed()
    assert [e["undo"] for e in undo.entries()] == ["flow-level note", "emails to 2", "refund 5"]
    records = ledger.compensations.for_flow_run(str(state.state_details.flow_run_id))
    assert [r.name for r in records] == ["undo", "unsend_emails", "note"]
    assert {r.status for r in records} == {"done"}


def test_execute_compensating_actions_runs_them_now_once(ledger: Ledger) -> None:
    """execute_compensating_actions() undoes inside the run; the failure hook finds nothing left."""

    @governed_flow
    def campaign() -> int:
        send_campaign(["a@example.com"])
        report = execute_compensating_actions()
        return len(report.done)

    state = campaign(return_state=True)
    assert state.result() == 1
    assert [e["undo"] for e in undo.entries()] == ["emails to 1"]


def test_bad_actions_are_refused_when_built() -> None:
    """A lambda (not importable), a missing name or non-JSON arguments fail at once."""
    with pytest.raises(InvalidArgumentError, match="importable"):
        CompensatingAction(name="unsend", handler=lambda: None)
    with pytest.raises(InvalidArgumentError, match="needs a name"):
        CompensatingAction(name="", handler=undo.undo)
    with pytest.raises(InvalidArgumentError, match="JSON"):
        CompensatingAction(name="x", handler=functools.partial(undo.undo, object()))
    with pytest.raises(InvalidArgumentError, match="takes a CompensatingAction"):
        add_compensating_action(undo.undo)  # type: ignore[arg-type]
