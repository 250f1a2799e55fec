"""Spans for what a governed run does besides LLM calls: sandbox runs, compensations,
approval outcomes, and policy decisions as span events.

Each helper is one line at its call site::

    with sandbox_span("python3 <code>", image) as span:   # sandbox/sandbox.py
        ...; record_sandbox_result(span, result)
    with compensation_span(record) as span:                # compensation/runner.py
        ...; span.set_attribute("wflo.compensation.outcome", status)
    record_policy_decisions(outcome)                       # policies/engine.py

Outcomes of a human or a limit (a rejected approval, a compensation that gave up) are
attributes; a span's status is ERROR only when code failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode

from wflo_prefect.observability.tracing import get_tracer

if TYPE_CHECKING:
    from wflo_prefect.ledger.compensations import CompensationRecord
    from wflo_prefect.sandbox.result import SandboxResult

__all__ = [
    "compensation_span",
    "record_policy_decisions",
    "record_sandbox_result",
    "sandbox_span",
    "under_span",
]


def _is_outcome(exc: BaseException) -> bool:
    """Errors that are outcomes (approval rejected, Prefect pausing), not failures."""
    if getattr(exc, "control_flow", False) is True:
        return True
    return any(n in type(exc).__name__ for n in ("Pause", "Abort", "Terminat", "Cancel"))


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    with get_tracer().start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if not _is_outcome(exc):
                span.set_attribute("error.type", type(exc).__name__)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def sandbox_span(command: str, image: str, runtime: str = "runc") -> Any:
    """The span of one command run in a sandbox (``wflo.sandbox {command}``)."""
    return _span(
        f"wflo.sandbox {command[:60]}",
        {
            "wflo.sandbox.command": command[:200],
            "wflo.sandbox.image": image,
            "wflo.sandbox.runtime": runtime,
        },
    )


def record_sandbox_result(span: Span, result: SandboxResult) -> None:
    """Exit code, limits hit and resources used of a sandbox run, on its span."""
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {
        "wflo.sandbox.id": result.sandbox_id,
        "wflo.sandbox.timed_out": result.timed_out,
        "wflo.sandbox.oom_killed": result.oom_killed,
        "wflo.sandbox.duration_s": result.duration_seconds,
    }
    if result.exit_code is not None:
        attributes["process.exit.code"] = result.exit_code
    if result.peak_memory_bytes is not None:
        attributes["wflo.sandbox.peak_memory_bytes"] = result.peak_memory_bytes
    if result.cpu_time_seconds is not None:
        attributes["wflo.sandbox.cpu_time_s"] = result.cpu_time_seconds
    span.set_attributes(attributes)


def compensation_span(record: CompensationRecord) -> Any:
    """The span of one compensating action (``wflo.compensation {name}``)."""
    return _span(
        f"wflo.compensation {record.name}",
        {
            "wflo.compensation.name": record.name,
            "wflo.compensation.handler": record.handler,
            "wflo.compensation.id": record.id,
            "prefect.flow_run.id": record.flow_run_id,
        },
    )


@contextmanager
def under_span(parent: SpanContext | None) -> Iterator[None]:
    """Make the (ended) span ``parent`` the parent of spans started in the block.

    For work done after a run's span ended (Prefect's state hooks run compensations
    there): its spans still join the run's trace, and follow its sampling decision.
    """
    if (
        parent is None
        or not parent.is_valid
        or trace.get_current_span().get_span_context().is_valid
    ):
        yield
        return
    with trace.use_span(NonRecordingSpan(parent), end_on_exit=False):
        yield


def record_policy_decisions(outcome: Any) -> None:
    """One ``wflo.policy.evaluated`` event per policy evaluated, on the current span.

    ``outcome`` is a :class:`~wflo_prefect.policies.engine.PolicyOutcome`; every
    evaluation is an event, matched or not.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    context = outcome.context
    for position, (policy, hit) in enumerate(outcome.evaluated):
        span.add_event(
            "wflo.policy.evaluated",
            {
                "wflo.policy.name": policy.name,
                "wflo.policy.point": outcome.point,
                "wflo.policy.position": position,
                "wflo.policy.condition": policy.condition,
                "wflo.policy.matched": hit,
                "wflo.policy.actions": [a.kind for a in policy.actions] if hit else [],
                "wflo.policy.target": f"{context.get('kind') or ''} {context.get('name') or ''}",
            },
        )
