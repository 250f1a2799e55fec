"""Recovery without a human: finish the undo log of runs whose process died.

:func:`recover_run` is what the recovery flow (``flows/recovery.py``) runs when a
Prefect automation sees a run crash; :func:`sweep` is the same for every run
with outstanding compensations, for deployments without automations
(``wflo compensate sweep``). Both decide from Prefect's state of the run:

| Prefect state | what happens |
|---|---|
| Completed | pending compensations are released |
| Failed, Crashed, Cancelled | outstanding compensations run, newest first |
| Running or Cancelling, heartbeat fresh | left alone: the run is alive |
| Running or Cancelling, no heartbeat for ``stale_after`` | marked Crashed, then compensated |
| Scheduled, Pending, Paused (or suspended) | left alone: waiting, not dead |

Each compensation is claimed before it runs, so recovery racing the run's own
failure hook, another sweeper or an automation still runs it exactly once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from wflo_prefect.compensation.runner import CompensationReport, run_compensations
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.models import utcnow
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger

__all__ = ["RecoveryOutcome", "parse_flow_run_id", "recover_run", "sweep"]

_log = get_logger("compensation")

Verdict = Literal["compensated", "released", "alive", "waiting", "nothing"]


@dataclass
class RecoveryOutcome:
    """What recovery did with one flow run."""

    flow_run_id: str
    state: str
    verdict: Verdict
    report: CompensationReport | None = None


def parse_flow_run_id(value: str) -> str:
    """A flow run id from a UUID or a Prefect resource id (``prefect.flow-run.<id>``)."""
    text = str(value).strip().removeprefix("prefect.flow-run.")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidArgumentError(
            "A flow run id must be a UUID or 'prefect.flow-run.<uuid>'",
            value=value,
            hint="Pass the crashed run's id, e.g. from the automation's {{ event.resource.id }}",
            docs="compensation.md",
        ) from None


def _read_state(flow_run_id: str) -> Any:
    from wflo_prefect._prefect_client import prefect_client

    with prefect_client() as client:
        return client.read_flow_run(uuid.UUID(flow_run_id)).state


def _mark_crashed(flow_run_id: str, message: str) -> None:
    from prefect.states import Crashed

    from wflo_prefect._prefect_client import prefect_client

    with prefect_client() as client:
        client.set_flow_run_state(uuid.UUID(flow_run_id), Crashed(message=message), force=True)


def recover_run(flow_run_id: str, *, stale_after: timedelta | None = None) -> RecoveryOutcome:
    """Settle one run's undo log according to its Prefect state (see the module docs)."""
    from wflo_prefect.compensation.settings import get_recovery_settings

    run = parse_flow_run_id(flow_run_id)
    ledger = get_ledger()
    if stale_after is None:
        stale_after = timedelta(seconds=get_recovery_settings().stale_after_seconds)
    state = _read_state(run)
    name = state.name if state is not None else "unknown"
    if not ledger.compensations.for_flow_run(run):
        return RecoveryOutcome(run, name, "nothing")
    if state is not None and state.is_completed():
        ledger.compensations.release_run(run)
        return RecoveryOutcome(run, name, "released")
    if (
        state is not None
        and not state.is_final()
        and not (state.is_running() or state.is_cancelling())
    ):
        return RecoveryOutcome(run, name, "waiting")
    if state is None or not state.is_final():
        seen = ledger.compensations.last_sign_of_life(run)
        if seen is None:
            return RecoveryOutcome(run, name, "nothing")
        silent = utcnow() - seen
        if silent < stale_after:
            return RecoveryOutcome(run, name, "alive")
        message = (
            f"No heartbeat for {silent.total_seconds():.0f} s: the process is gone; "
            "wflo ran its compensations."
        )
        _mark_crashed(run, message)
        ledger.audit.record(
            "flow_run.recovered",
            correlation=Correlation(flow_run_id=run),
            outcome="crashed",
            payload={"was": name, "silent_s": round(silent.total_seconds(), 3)},
        )
        name = "Crashed"
    report = run_compensations(run)
    if report.done or report.failed:
        _log.info("flow_run.recovered", flow_run_id=run, done=report.done, failed=report.failed)
    return RecoveryOutcome(run, name, "compensated", report)


def sweep(*, stale_after: timedelta | None = None) -> list[RecoveryOutcome]:
    """:func:`recover_run` for every run with outstanding compensations."""
    outcomes = []
    for run in get_ledger().compensations.runs_with_pending():
        try:
            outcomes.append(recover_run(run, stale_after=stale_after))
        except Exception as exc:  # one unreadable run does not stop the sweep
            _log.warning("sweep.run_failed", flow_run_id=run, error=str(exc))
    return outcomes
