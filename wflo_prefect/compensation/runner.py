"""Run a failed flow run's compensations: newest first, retried, once each."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from datetime import timedelta

from wflo_prefect.compensation.handlers import load_handler
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.compensations import CompensationRecord
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.spans import compensation_span

__all__ = ["CompensationReport", "run_compensation", "run_compensations"]

_log = get_logger("compensation")
#: A ``running`` compensation not updated for this long is taken to be abandoned.
DEFAULT_LEASE = timedelta(minutes=5)


@dataclass
class CompensationReport:
    """What one call of :func:`run_compensations` did."""

    flow_run_id: str
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no compensation failed for good."""
        return not self.failed


def run_compensation(record: CompensationRecord, *, lease: timedelta = DEFAULT_LEASE) -> str:
    """Run one compensation with its retries; returns its final status.

    Each attempt first claims the row, so a compensation another process is
    running (or has finished) is left alone and reported as ``skipped``.
    """
    ids = Correlation(flow_run_id=record.flow_run_id, task_run_id=record.task_run_id)
    with compensation_span(record) as span:
        status = _run_claimed(record, lease, ids)
        span.set_attribute("wflo.compensation.outcome", status)
    return status


def _run_claimed(record: CompensationRecord, lease: timedelta, ids: Correlation) -> str:
    ledger = get_ledger()
    status = "skipped"
    while ledger.compensations.claim(record.id, lease=lease):
        attempt = ledger.compensations.by_key(record.idempotency_key)
        assert attempt is not None
        try:
            handler = load_handler(record.handler)
            kwargs = dict(record.arguments.get("kwargs", {}))
            if "idempotency_key" in inspect.signature(handler).parameters:
                kwargs.setdefault("idempotency_key", record.idempotency_key)
            handler(*record.arguments.get("args", []), **kwargs)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            final = attempt.attempts >= attempt.max_attempts
            status = "failed" if final else "pending"
            ledger.compensations.finish(record.id, status=status, error=error)
            ledger.audit.record(
                "compensation.failed" if final else "compensation.retrying",
                correlation=ids,
                outcome=status,
                payload={"name": record.name, "attempt": attempt.attempts, "error": error},
            )
            _log.warning("compensation.attempt_failed", name=record.name, error=error)
            if final:
                return status
            time.sleep(record.retry_delay_s)
            continue
        ledger.compensations.finish(record.id, status="done")
        ledger.audit.record(
            "compensation.done",
            correlation=ids,
            outcome="done",
            payload={"name": record.name, "attempt": attempt.attempts},
        )
        return "done"
    return status


def run_compensations(flow_run_id: str, *, lease: timedelta = DEFAULT_LEASE) -> CompensationReport:
    """Run a flow run's outstanding compensations in reverse order of registration."""
    report = CompensationReport(flow_run_id=flow_run_id)
    records = get_ledger().compensations.for_flow_run(flow_run_id)
    for record in reversed(records):
        if record.status not in ("pending", "running"):
            continue
        status = run_compensation(record, lease=lease)
        {"done": report.done, "failed": report.failed}.get(status, report.skipped).append(
            record.name
        )
    return report
