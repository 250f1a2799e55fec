"""Rollback and recovery: durable compensating actions and snapshots of run state."""

from wflo_prefect.compensation.actions import (
    CompensatingAction,
    add_compensating_action,
    execute_compensating_actions,
)
from wflo_prefect.compensation.guard import CompensateGuard, SnapshotGuard
from wflo_prefect.compensation.register import compensate
from wflo_prefect.compensation.runner import (
    CompensationReport,
    run_compensation,
    run_compensations,
)
from wflo_prefect.compensation.snapshots import list_snapshots, restore_snapshot, snapshot

__all__ = [
    "CompensateGuard",
    "CompensatingAction",
    "CompensationReport",
    "SnapshotGuard",
    "add_compensating_action",
    "compensate",
    "execute_compensating_actions",
    "list_snapshots",
    "restore_snapshot",
    "run_compensation",
    "run_compensations",
    "snapshot",
]
