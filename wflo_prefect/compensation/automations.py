"""The Prefect automations that recover crashed runs with no human involved.

Two automations, created by ``wflo compensate automations DEPLOYMENT``:

* **wflo: crash silent runs** (proactive): a flow run that emitted a heartbeat
  (``wflo.flow-run.heartbeat`` from a run with compensations, or Prefect's own
  ``prefect.flow-run.heartbeat`` from a runner) and then neither beats again nor
  reaches a final state within ``zombie_after`` seconds is set Crashed.
* **wflo: recover crashed runs** (reactive): every ``prefect.flow-run.Crashed``
  event (a worker saw its process die, or the zombie automation above) runs the
  recovery deployment (``flows/recovery.py``) with the crashed run's id, which
  runs its outstanding compensations, newest first, each exactly once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from wflo_prefect.compensation.heartbeat import HEARTBEAT_EVENT

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

__all__ = [
    "CRASHED_EVENT",
    "RECOVER_NAME",
    "ZOMBIE_NAME",
    "install_recovery_automations",
    "recovery_automations",
]

RECOVER_NAME = "wflo: recover crashed runs"
ZOMBIE_NAME = "wflo: crash silent runs"
CRASHED_EVENT = "prefect.flow-run.Crashed"
_BEATS = (HEARTBEAT_EVENT, "prefect.flow-run.heartbeat")
_FINAL = (
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Suspended",
)


def recovery_automations(
    deployment_id: UUID | str, *, zombie_after: float = 90.0
) -> list[AutomationCore]:
    """The two automations, the recovery one running the deployment ``deployment_id``."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState, RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    flow_runs: dict[str, Any] = {"prefect.resource.id": "prefect.flow-run.*"}
    recover = AutomationCore(
        name=RECOVER_NAME,
        description="Runs the outstanding compensations of every crashed flow run.",
        trigger=EventTrigger(
            match=flow_runs,
            expect={CRASHED_EVENT},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=UUID(str(deployment_id)),
                parameters={"flow_run_id": "{{ event.resource.id }}"},
            )
        ],
    )
    zombie = AutomationCore(
        name=ZOMBIE_NAME,
        description="Marks a flow run Crashed when its heartbeats stop before it ends.",
        trigger=EventTrigger(
            match=flow_runs,
            after=set(_BEATS),
            expect={*_BEATS, *_FINAL},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=zombie_after),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                name="Crashed",
                message=f"No heartbeat for {zombie_after:g} s: the process is gone "
                "(wflo zombie detection).",
            )
        ],
    )
    return [zombie, recover]


def install_recovery_automations(deployment: str, *, zombie_after: float = 90.0) -> dict[str, UUID]:
    """Create (or replace) both automations for the recovery deployment ``FLOW/NAME``."""
    from wflo_prefect._prefect_client import prefect_client

    with prefect_client() as client:
        target = client.read_deployment_by_name(deployment)
        created: dict[str, UUID] = {}
        for automation in recovery_automations(target.id, zombie_after=zombie_after):
            for old in client.read_automations_by_name(automation.name):
                client.delete_automation(old.id)
            created[automation.name] = client.create_automation(automation)
    return created
