"""``current_run()``: the seeds' ``context`` / ``workflow`` object, inside a governed run.

Its methods are the module-level functions, awaitable as the product
description writes them::

    context = current_run()
    snapshot = await context.create_snapshot("before-critical-op")
    await context.restore_snapshot(snapshot.id)
    snapshots = await context.list_snapshots()
    await context.restore_to_snapshot(snapshots[0].id)
    await context.restore_to_time("2025-01-15T10:30:00Z")
    context.add_compensating_action(CompensatingAction(name=..., handler=...))
    await context.execute_compensating_actions()
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from wflo_prefect.compensation import actions, snapshots
from wflo_prefect.compensation.runner import CompensationReport
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger.compensations import CompensationRecord, SnapshotRecord
from wflo_prefect.observability.correlation import current_correlation

__all__ = ["RunHandle", "current_run"]

T = TypeVar("T")


async def _in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    import anyio.to_thread

    context = contextvars.copy_context()
    return await anyio.to_thread.run_sync(context.run, functools.partial(fn, *args, **kwargs))


class RunHandle:
    """Snapshots and compensations of one flow run (the current one when made)."""

    def __init__(self, flow_run_id: str) -> None:
        self.flow_run_id = flow_run_id

    async def create_snapshot(
        self, name: str, data: Mapping[str, Any] | None = None
    ) -> SnapshotRecord:
        """See :func:`~wflo_prefect.create_snapshot`."""
        return await _in_thread(snapshots.create_snapshot, name, data)

    async def restore_snapshot(
        self, name_or_id: str | None = None, *, at: datetime | None = None
    ) -> dict[str, Any]:
        """See :func:`~wflo_prefect.restore_snapshot` (in this run, or by id)."""
        return await _in_thread(
            snapshots.restore_snapshot, name_or_id, flow_run_id=self.flow_run_id, at=at
        )

    async def list_snapshots(self, name: str | None = None) -> list[SnapshotRecord]:
        """This run's snapshots, newest first."""
        return await _in_thread(snapshots.list_snapshots, self.flow_run_id, name=name)

    async def restore_to_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """See :func:`~wflo_prefect.restore_to_snapshot`."""
        return await _in_thread(snapshots.restore_to_snapshot, snapshot_id)

    async def restore_to_time(
        self, when: datetime | str, *, name: str | None = None
    ) -> dict[str, Any]:
        """See :func:`~wflo_prefect.restore_to_time` (this run's snapshots)."""
        return await _in_thread(
            snapshots.restore_to_time, when, name=name, flow_run_id=self.flow_run_id
        )

    def add_compensating_action(self, action: actions.CompensatingAction) -> CompensationRecord:
        """See :func:`~wflo_prefect.add_compensating_action`."""
        return actions.add_compensating_action(action)

    async def execute_compensating_actions(self) -> CompensationReport:
        """Run this run's outstanding compensations now, newest first."""
        return await _in_thread(actions.execute_compensating_actions, self.flow_run_id)


def current_run() -> RunHandle:
    """The current flow run's handle; call it inside a governed flow or task."""
    run = current_correlation().flow_run_id
    if run is None:
        raise InvalidArgumentError(
            "current_run() is the handle of the flow run you are in; call it inside one",
            value=None,
            docs="compensation.md",
        )
    return RunHandle(run)
