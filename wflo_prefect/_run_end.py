"""How a governed run's end is recorded: Prefect's end hooks, and a task's return.

Prefect's own state hooks (:func:`flow_end_hook`, :func:`task_end_hook`) record how
a run ended, with the final Prefect state, so a run that Prefect marks Failed or
Crashed is recorded as such even when the function itself returned. A task whose
function returned records its completion from its wrapper (:func:`task_returned`).
The wrapper notes each run's start here (:func:`remember_start`), so its end is
recorded with the same correlation ids and a duration.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry.trace import SpanContext
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext
from prefect.states import is_state_iterable

from wflo_prefect.governance import GovernedCall, Kind
from wflo_prefect.ledger import get_ledger
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.spans import under_span

__all__ = [
    "enter_task_run",
    "flow_end_hook",
    "leave_task_run",
    "log_run_event",
    "records_own_completion",
    "remember_start",
    "settle_compensations",
    "task_end_hook",
    "task_returned",
]

_log = get_logger("runs")
_stdlib_log = logging.getLogger("wflo_prefect.runs")

# Trace ids and start times of runs in flight, by Prefect run id, so the end hook
# (which runs outside the function's span) records the same correlation ids.
_in_flight: dict[str, tuple[Correlation, float]] = {}
# The span of each governed flow run in flight: its compensations (run by the end hook,
# after the span ended) are parented to it.
_flow_spans: dict[str, SpanContext] = {}
_in_flight_lock = threading.Lock()
# The task run whose outermost governed call is running in this context.
_OUTERMOST: ContextVar[str | None] = ContextVar("wflo_outermost_task_run", default=None)


class _QuietOwnHooks(logging.Filter):
    """Drop Prefect's "Running hook ..." / "Hook ... finished" lines for wflo's own hooks.

    wflo records a governed flow's end and a task's failure from a Prefect state hook;
    Prefect logs two INFO lines per hook call, which would add two lines (and two API
    log writes) to every such run. The hooks' own work is in the audit log.
    """

    _HOOKS = ("'task_end_hook'", "'flow_end_hook'")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        return not (
            isinstance(message, str)
            and ("Running hook" in message or message.startswith("Hook "))
            and any(hook in message for hook in self._HOOKS)
        )


for _name in ("prefect.task_runs", "prefect.flow_runs"):
    logging.getLogger(_name).addFilter(_QuietOwnHooks())


def remember_start(run_id: str, correlation: Correlation, flow_span: SpanContext | None) -> None:
    """Note that the run ``run_id`` started now, with ``correlation`` (and, for a flow,
    its span, which its compensations are parented to)."""
    with _in_flight_lock:
        _in_flight[run_id] = (correlation, time.perf_counter())
        if flow_span is not None:
            _flow_spans[run_id] = flow_span


def log_run_event(kind: Kind, event: str, **fields: Any) -> None:
    """A run's start or end in wflo's log: INFO for a flow; DEBUG for a task.

    A task's start and end are in the audit log and Prefect shows its task runs; in the
    run's logs they would be two lines per task. Checked against the level first: a
    disabled structlog call still builds its event on every task.
    """
    if kind == "flow":
        _log.info(event, **fields)
    elif _stdlib_log.isEnabledFor(logging.DEBUG):
        _log.debug(event, **fields)


def _outcome(state: Any) -> str:
    if state.is_completed():
        return "completed"
    if state.is_crashed():
        return "crashed"
    if state.is_cancelled() or state.is_cancelling():
        return "cancelled"
    return "failed"


def records_own_completion(fn: Callable[..., Any]) -> bool:
    """Whether a governed task's wrapper records its completion (see :func:`task_returned`):
    so for functions and coroutines; a generator's end is recorded by the end hook."""
    return not (inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn))


def enter_task_run(call: GovernedCall) -> Token[str | None] | None:
    """Mark ``call`` as the outermost governed call of its task run (the one whose
    return ends it); None when it is not: a task function called directly (``.fn()``)
    inside a governed task run, or no task run. Undo with :func:`leave_task_run`."""
    run_id = call.correlation.task_run_id
    if run_id is None or _OUTERMOST.get() == run_id:
        return None
    return _OUTERMOST.set(run_id)


def leave_task_run(token: Token[str | None] | None) -> None:
    """Undo :func:`enter_task_run`."""
    if token is not None:
        _OUTERMOST.reset(token)


def task_returned(call: GovernedCall, result: Any, entry: Callable[..., Any]) -> None:
    """Record that a task run completed, when its function has returned.

    A governed task's completion is recorded here rather than from a Prefect
    ``on_completion`` hook: Prefect logs two lines for every hook call, more work than
    the record itself, on every task. What this cannot know is left to the
    ``on_failure`` hook: a returned state or states that do not complete the run, and a
    run Prefect fails after its function returned (e.g. its result could not be stored:
    then the failure follows the completion in the audit log). A task whose result came
    from Prefect's cache did not run and records nothing. Call it for the outermost
    call only (:func:`enter_task_run`); ``entry`` is the wrapper: a task function
    called directly inside a plain Prefect task's run is not that run.
    """
    run_id = call.correlation.task_run_id
    if run_id is None or not _completes(result):
        return
    context = TaskRunContext.get()
    if context is None or context.task.fn is not entry:
        return
    name, message = "Completed", None
    if isinstance(result, State):  # a state the function made itself names the run
        name, message = result.name or name, result.message
    try:
        _record_outcome(
            "task",
            run_id,
            call.correlation,
            context.task.name,
            "completed",
            name,
            "COMPLETED",
            message,
        )
    except Exception:  # like a failing hook, it does not fail a run that succeeded
        _log.exception("task_run.end_not_recorded", task_run_id=run_id)


def _completes(result: Any) -> bool:
    """Whether Prefect ends a task run that returned ``result`` Completed."""
    if isinstance(result, State):
        return result.is_completed()
    if (
        isinstance(result, list | tuple | set)
        and result
        and isinstance(next(iter(result)), State)  # cheap first: results are rarely states
        and is_state_iterable(result)
    ):
        return all(state.is_completed() for state in result)
    return True


def _record_end(kind: Kind, run_id: str, fallback: Correlation, state: Any, name: str) -> str:
    return _record_outcome(
        kind, run_id, fallback, name, _outcome(state), state.name, state.type.value, state.message
    )


def _record_outcome(
    kind: Kind,
    run_id: str,
    fallback: Correlation,
    name: str,
    outcome: str,
    state_name: str,
    state_type: str,
    message: str | None = None,
) -> str:
    with _in_flight_lock:
        started = _in_flight.pop(run_id, None)
    correlation = started[0] if started else fallback
    duration = time.perf_counter() - started[1] if started else None
    payload: dict[str, Any] = {"state": state_name, "state_type": state_type}
    if message:
        payload["message"] = message
    if duration is not None:
        payload["duration_s"] = round(duration, 6)
    audit = get_ledger().audit
    if kind == "task":
        audit.append(
            f"task_run.{outcome}", correlation=correlation, outcome=outcome, payload=payload
        )
    else:
        audit.flush()  # the run's task events are committed before its end is
        audit.record(
            f"flow_run.{outcome}", correlation=correlation, outcome=outcome, payload=payload
        )
    log_run_event(
        kind,
        f"{kind}_run.{outcome}",
        name=name,
        state=state_name,
        flow_run_id=correlation.flow_run_id,
        task_run_id=correlation.task_run_id,
        trace_id=correlation.trace_id,
    )
    if kind == "flow":
        metrics.WORKFLOW_EXECUTIONS.labels(name, outcome).inc()
        if duration is not None:
            metrics.WORKFLOW_DURATION.labels(name).observe(duration)
    else:
        _task_counter(name, outcome).inc()
    return outcome


@functools.lru_cache(maxsize=1024)
def _task_counter(name: str, outcome: str) -> Any:
    # The counter's child for (task, outcome): labels() locks and looks it up each time.
    return metrics.TASK_EXECUTIONS.labels(name, outcome)


def flow_end_hook(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect state hook: record how a governed flow run ended."""
    fallback = Correlation(
        flow_run_id=str(flow_run.id),
        flow_name=flow.name,
        deployment_id=str(flow_run.deployment_id) if flow_run.deployment_id else None,
    )
    outcome = _record_end("flow", str(flow_run.id), fallback, state, flow.name)
    with _in_flight_lock:
        flow_span = _flow_spans.pop(str(flow_run.id), None)
    with under_span(flow_span):  # compensation spans join the run's trace
        settle_compensations(str(flow_run.id), outcome)
    from wflo_prefect.costs.leases import flush_leases

    # The run's spend is on its budgets' windows when it ends (and idle money goes back).
    flush_leases()
    from wflo_prefect.observability.cost_view import publish_flow_cost_view

    publish_flow_cost_view(flow.name, str(flow_run.id))  # the flow's cost view in the UI


def settle_compensations(flow_run_id: str, outcome: str) -> None:
    """A finished flow run's undo log: released on success, run otherwise."""
    ledger = get_ledger()
    if outcome == "completed":
        ledger.compensations.release_run(flow_run_id)
        return
    from wflo_prefect.compensation.runner import run_compensations

    report = run_compensations(flow_run_id)
    if report.done or report.failed:
        _log.info(
            "flow_run.compensated",
            flow_run_id=flow_run_id,
            done=report.done,
            failed=report.failed,
        )


def task_end_hook(task: Any, task_run: Any, state: Any) -> None:
    """Prefect state hook: record how a governed task run ended."""
    fallback = Correlation(
        flow_run_id=str(task_run.flow_run_id) if task_run.flow_run_id else None,
        task_run_id=str(task_run.id),
        task_name=task.name,
    )
    _record_end("task", str(task_run.id), fallback, state, task.name)
