"""Rollback and recovery: durable compensating actions and snapshots of run state."""

from wflo_prefect.compensation.actions import (
    CompensatingAction,
    add_compensating_action,
    execute_compensating_actions,
)
from wflo_prefect.compensation.guard import CompensateGuard, SnapshotGuard
from wflo_prefect.compensation.register import compensate
from wflo_prefect.compensation.run_handle import RunHandle, current_run
from wflo_prefect.compensation.runner import (
    CompensationReport,
    run_compensation,
    run_compensations,
)
from wflo_prefect.compensation.snapshots import (
    create_snapshot,
    list_snapshots,
    prune_snapshots,
    restore_snapshot,
    restore_to_snapshot,
    restore_to_time,
    snapshot,
)
from wflo_prefect.compensation.state import StateSnapshot

__all__ = [
    "CompensateGuard",
    "CompensatingAction",
    "CompensationReport",
    "RunHandle",
    "SnapshotGuard",
    "StateSnapshot",
    "add_compensating_action",
    "compensate",
    "create_snapshot",
    "current_run",
    "execute_compensating_actions",
    "list_snapshots",
    "prune_snapshots",
    "restore_snapshot",
    "restore_to_snapshot",
    "restore_to_time",
    "run_compensation",
    "run_compensations",
    "snapshot",
]
