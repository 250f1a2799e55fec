"""What every sandbox run leaves behind: an audit entry, a Prefect event, metrics, a log line."""

from __future__ import annotations

import contextlib
from typing import Any

from wflo_prefect.ledger import get_ledger
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.sandbox.result import SandboxResult

__all__ = ["forget_sandbox", "record_creation", "record_run"]

_log = get_logger("sandbox")


def outcome_of(result: SandboxResult) -> str:
    """``ok``, ``error``, ``timeout`` or ``oom``."""
    if result.timed_out:
        return "timeout"
    if result.oom_killed:
        return "oom"
    return "ok" if result.exit_code == 0 else "error"


def record_creation(sandbox_id: str, runtime: str, seconds: float, *, warm: bool) -> None:
    """Observe how long the sandbox took to be ready."""
    metrics.SANDBOX_CREATION_DURATION.labels(runtime, "true" if warm else "false").observe(seconds)
    _log.info("sandbox.created", sandbox_id=sandbox_id, runtime=runtime, seconds=seconds, warm=warm)


def _emit(event: str, sandbox_id: str, payload: dict[str, Any], correlation: Correlation) -> None:
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.events import emit_event
    from prefect.settings import PREFECT_API_URL

    # Outside a run without a configured API there is nowhere to send events to (and
    # emitting would start a temporary server); the audit entry still records the run.
    if not (PREFECT_API_URL.value() or FlowRunContext.get() or TaskRunContext.get()):
        return
    related = []
    if correlation.flow_run_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{correlation.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    if correlation.task_run_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.task-run.{correlation.task_run_id}",
                "prefect.resource.role": "task-run",
            }
        )
    try:
        emit_event(
            event=event,
            resource={"prefect.resource.id": f"wflo.sandbox.{sandbox_id}"},
            related=related,
            payload=payload,
        )
    except Exception as exc:  # events are best effort; the audit entry is the record
        _log.warning("sandbox.event_failed", sandbox_id=sandbox_id, error=str(exc))


def record_run(
    result: SandboxResult, *, command: str, correlation: Correlation, image: str
) -> None:
    """Audit entry, Prefect event and metrics of one finished (or killed) run."""
    outcome = outcome_of(result)
    payload: dict[str, Any] = {**result.summary(), "command": command[:200], "image": image}
    get_ledger().audit.record(
        "sandbox.run", correlation=correlation, outcome=outcome, payload=payload
    )
    _emit(f"wflo.sandbox.run.{outcome}", result.sandbox_id, payload, correlation)
    metrics.SANDBOX_RUNS.labels(result.runtime, outcome).inc()
    if result.peak_memory_bytes is not None:
        metrics.SANDBOX_MEMORY_USAGE.labels(result.sandbox_id).set(result.peak_memory_bytes)
    if result.cpu_time_seconds is not None and result.duration_seconds > 0:
        percent = 100.0 * result.cpu_time_seconds / result.duration_seconds
        metrics.SANDBOX_CPU_USAGE.labels(result.sandbox_id).set(percent)
    _log.info("sandbox.run", **payload, outcome=outcome)


def forget_sandbox(sandbox_id: str) -> None:
    """Drop a removed sandbox's gauges so label sets do not pile up."""
    for gauge in (metrics.SANDBOX_CPU_USAGE, metrics.SANDBOX_MEMORY_USAGE):
        with contextlib.suppress(KeyError):
            gauge.remove(sandbox_id)
