"""Snapshots: named copies of run state, restorable by name, id or point in time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wflo_prefect.compensation.handlers import check_json
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.compensations import SnapshotRecord
from wflo_prefect.observability.correlation import current_correlation

__all__ = ["list_snapshots", "restore_snapshot", "snapshot"]


def snapshot(name: str, data: dict[str, Any]) -> SnapshotRecord:
    """Store ``data`` (JSON) under ``name`` for the current run; return the stored snapshot."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("A snapshot needs a name", value=name, docs="compensation.md")
    ids = current_correlation()
    stored = get_ledger().compensations.save_snapshot(
        flow_run_id=ids.flow_run_id,
        task_run_id=ids.task_run_id,
        name=name,
        data=check_json(dict(data), f"snapshot {name!r}"),
    )
    get_ledger().audit.record(
        "snapshot.taken", correlation=ids, payload={"name": name, "snapshot_id": stored.id}
    )
    return stored


def list_snapshots(flow_run_id: str | None = None) -> list[SnapshotRecord]:
    """Snapshots of a flow run (default: the current one), newest first."""
    run = flow_run_id or current_correlation().flow_run_id
    return get_ledger().compensations.snapshots(flow_run_id=run)


def restore_snapshot(
    name: str | None = None,
    *,
    snapshot_id: str | None = None,
    flow_run_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The data of the newest matching snapshot.

    Find it by ``snapshot_id``, or by ``name`` within a flow run (default: the
    current run; pass ``flow_run_id`` to recover another run's state), optionally
    the newest taken at or before ``at``.
    """
    run = flow_run_id or (None if snapshot_id else current_correlation().flow_run_id)
    found = get_ledger().compensations.snapshots(
        flow_run_id=run, name=name, snapshot_id=snapshot_id, at_or_before=at
    )
    if not found:
        raise InvalidArgumentError(
            "No snapshot matches",
            value={"name": name, "snapshot_id": snapshot_id, "flow_run_id": run, "at": at},
            hint="List them with list_snapshots(flow_run_id)",
            docs="compensation.md",
        )
    get_ledger().audit.record(
        "snapshot.restored",
        correlation=current_correlation(),
        payload={"name": found[0].name, "snapshot_id": found[0].id},
    )
    return dict(found[0].data)
