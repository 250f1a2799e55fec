"""Snapshots: named copies of run state, restorable by name, id or point in time.

The seeds' spelling works as written: ``create_snapshot("before-critical-op")``,
``restore_snapshot(snapshot.id)``, ``list_snapshots()``,
``restore_to_snapshot(id)``, ``restore_to_time("2025-01-15T10:30:00Z")`` (and
their ``await``-able forms on :func:`~wflo_prefect.current_run`). Inside a run
with a :class:`~wflo_prefect.StateSnapshot`, creating captures the state through
its ``capture`` and restoring puts it back through its ``restore``; otherwise
snapshots hold the data given and restoring returns it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from wflo_prefect.compensation.handlers import check_json
from wflo_prefect.compensation.snapshot_store import delete_stored, load_data, store_data
from wflo_prefect.compensation.state import active_state, call_with
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.compensations import SnapshotRecord
from wflo_prefect.ledger.ids import new_id
from wflo_prefect.ledger.models import utcnow
from wflo_prefect.observability.correlation import current_correlation

__all__ = [
    "create_snapshot",
    "list_snapshots",
    "prune_snapshots",
    "restore_snapshot",
    "restore_to_snapshot",
    "restore_to_time",
    "snapshot",
]


def create_snapshot(name: str, data: Mapping[str, Any] | None = None) -> SnapshotRecord:
    """Store a snapshot of the current run under ``name``; return it (``.id``, ``.created_at``).

    Without ``data``, the active ``StateSnapshot``'s ``capture`` provides it.
    Large data goes to Prefect result storage. Retention settings apply after.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("A snapshot needs a name", value=name, docs="compensation.md")
    if data is None:
        active = active_state()
        if active is None:
            raise InvalidArgumentError(
                f"create_snapshot({name!r}) without data needs a StateSnapshot to capture "
                "the state",
                value=name,
                hint="Pass data=..., or govern the flow/task with "
                "snapshot=StateSnapshot(capture=..., restore=...)",
                docs="compensation.md",
            )
        state, arguments = active
        data = call_with(state.capture, arguments)
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                "A StateSnapshot's capture must return a dict (JSON)",
                value=type(data).__name__,
                docs="compensation.md",
            )
    checked = check_json(dict(data), f"snapshot {name!r}")
    ids = current_correlation()
    snapshot_id = new_id()
    stored = get_ledger().compensations.save_snapshot(
        flow_run_id=ids.flow_run_id,
        task_run_id=ids.task_run_id,
        name=name,
        data=store_data(snapshot_id, checked),
        snapshot_id=snapshot_id,
    )
    get_ledger().audit.record(
        "snapshot.taken", correlation=ids, payload={"name": name, "snapshot_id": stored.id}
    )
    _apply_retention(name)
    return stored


def snapshot(name: str, data: Mapping[str, Any]) -> SnapshotRecord:
    """Store ``data`` (JSON) under ``name`` for the current run; return the stored snapshot."""
    return create_snapshot(name, data)


def list_snapshots(
    flow_run_id: str | None = None, *, name: str | None = None
) -> list[SnapshotRecord]:
    """Snapshots of a flow run (default: the current one), newest first.

    A large snapshot's ``data`` is a reference to result storage; restoring reads it.
    """
    run = flow_run_id or current_correlation().flow_run_id
    return get_ledger().compensations.snapshots(flow_run_id=run, name=name)


def _is_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def restore_snapshot(
    name_or_id: str | None = None,
    *,
    snapshot_id: str | None = None,
    flow_run_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Restore the newest matching snapshot; return its data.

    Find it by id (``restore_snapshot(snapshot.id)`` or ``snapshot_id=``), or by
    name within a flow run (default: the current run; ``flow_run_id`` for
    another run's), optionally the newest taken at or before ``at``. When a
    ``StateSnapshot`` is active, its ``restore`` puts the state back first.
    """
    name = name_or_id
    ledger = get_ledger().compensations
    by_id = name_or_id is not None and snapshot_id is None and _is_id(name_or_id)
    if by_id and ledger.snapshots(snapshot_id=name_or_id):
        name, snapshot_id = None, name_or_id
    run = flow_run_id or (None if snapshot_id else current_correlation().flow_run_id)
    found = ledger.snapshots(flow_run_id=run, name=name, snapshot_id=snapshot_id, at_or_before=at)
    if not found:
        raise InvalidArgumentError(
            "No snapshot matches",
            value={"name": name, "snapshot_id": snapshot_id, "flow_run_id": run, "at": at},
            hint="List them with list_snapshots(flow_run_id)",
            docs="compensation.md",
        )
    return _restore(found[0])


def _restore(record: SnapshotRecord) -> dict[str, Any]:
    data = load_data(dict(record.data))
    active = active_state()
    applied = False
    if active is not None and active[0].restore is not None:
        state, arguments = active
        assert state.restore is not None
        call_with(state.restore, {**arguments, "data": data})
        applied = True
    get_ledger().audit.record(
        "snapshot.restored",
        correlation=current_correlation(),
        payload={"name": record.name, "snapshot_id": record.id, "applied": applied},
    )
    return dict(data)


def restore_to_snapshot(snapshot_id: str) -> dict[str, Any]:
    """Restore the snapshot with this id (from any run); return its data."""
    return restore_snapshot(snapshot_id=snapshot_id)


def restore_to_time(
    when: datetime | str, *, name: str | None = None, flow_run_id: str | None = None
) -> dict[str, Any]:
    """Restore the newest snapshot taken at or before ``when`` (ISO 8601 text or a datetime)."""
    moment = _moment(when)
    return restore_snapshot(name, flow_run_id=flow_run_id, at=moment)


def _moment(when: datetime | str) -> datetime:
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgumentError(
                "restore_to_time takes an ISO 8601 time",
                value=when,
                hint="e.g. '2025-01-15T10:30:00Z'",
                docs="compensation.md",
            ) from None
    if not isinstance(when, datetime):
        raise InvalidArgumentError("restore_to_time takes a datetime or ISO text", value=when)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def prune_snapshots(
    *,
    keep: int | None = None,
    older_than: timedelta | None = None,
    name: str | None = None,
) -> int:
    """Retention: keep the newest ``keep`` snapshots of each name and drop those older
    than ``older_than`` (only of ``name``, if given); return how many were deleted.

    Their result-storage copies are removed too where the storage is local files.
    """
    if keep is not None and keep < 1:
        raise InvalidArgumentError("keep must be at least 1", value=keep, docs="compensation.md")
    repo = get_ledger().compensations
    doomed: dict[str, SnapshotRecord] = {}
    if keep is not None:
        seen: dict[str, int] = {}
        for record in repo.snapshots(name=name):  # newest first
            seen[record.name] = seen.get(record.name, 0) + 1
            if seen[record.name] > keep:
                doomed[record.id] = record
    if older_than is not None:
        for record in repo.snapshots(name=name, older_than=utcnow() - older_than):
            doomed[record.id] = record
    for record in doomed.values():
        delete_stored(dict(record.data))
    return repo.delete_snapshots(list(doomed))


def _apply_retention(name: str) -> None:
    from wflo_prefect.compensation.settings import get_recovery_settings

    settings = get_recovery_settings()
    if settings.snapshot_keep is None and settings.snapshot_max_age_seconds is None:
        return
    age = settings.snapshot_max_age_seconds
    prune_snapshots(
        keep=settings.snapshot_keep,
        older_than=timedelta(seconds=age) if age is not None else None,
        name=name if age is None else None,
    )
