"""Compensating handlers used by the tests; they write what they did to a JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path

JOURNAL_ENV = "WFLO_TEST_UNDO_JOURNAL"


def _journal() -> Path:
    return Path(os.environ[JOURNAL_ENV])


def entries() -> list[dict[str, object]]:
    """What the handlers recorded, in order."""
    path = _journal()
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def write(entry: dict[str, object]) -> None:
    with _journal().open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def undo(step: str, idempotency_key: str = "") -> None:
    """Record that ``step`` was undone (with the key it was given)."""
    write({"undo": step, "key": idempotency_key})


def flaky_undo(step: str, fail_times: int) -> None:
    """Fail ``fail_times`` times for ``step`` before succeeding."""
    failures = sum(1 for e in entries() if e.get("failed") == step)
    if failures < fail_times:
        write({"failed": step})
        raise ConnectionError(f"undo of {step} failed (try {failures + 1})")
    write({"undo": step, "key": ""})


def delete_user(user_id: str, result: str) -> None:
    """Undo of a user creation: receives the task argument and its result."""
    write({"undo": f"delete {user_id}", "result": result})


def undo_noting_run_state(step: str, flow_run_id: str) -> None:
    """Record the state Prefect's API shows for the run while ``step`` is undone."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    write({"undo": step, "run_state": state.type.value if state else None})
