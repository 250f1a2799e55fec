"""What happens around every governed run: span, audit start, guards, audit end.

The decorators wrap the user's function with :func:`wrap_function`; Prefect's own
state hooks (:func:`flow_end_hook`, :func:`task_end_hook`) record how the run
ended, with the final Prefect state, so a run that Prefect marks Failed or
Crashed is recorded as such even when the function itself returned. A task whose
function returned records its completion from the wrapper (see :func:`_task_returned`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AsyncExitStack, ExitStack
from typing import Any, Literal

from opentelemetry.trace import Span, Status, StatusCode
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext
from prefect.states import is_state_iterable

from wflo_prefect._offload import run_off_loop
from wflo_prefect.governance import NOTHING_TO_DO, ExecutingGuard, GovernedCall, Guard
from wflo_prefect.ledger import get_ledger
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation, current_correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.propagation import flow_run_parent_context, remember_traceparent
from wflo_prefect.observability.spans import under_span
from wflo_prefect.observability.tracing import get_tracer

__all__ = ["flow_end_hook", "records_own_completion", "task_end_hook", "wrap_function"]

Kind = Literal["flow", "task"]
_log = get_logger("runs")
_stdlib_log = logging.getLogger("wflo_prefect.runs")

# Trace ids and start times of runs in flight, by Prefect run id, so the end hook
# (which runs outside the function's span) records the same correlation ids.
_in_flight: dict[str, tuple[Correlation, float]] = {}
# The span of each governed flow run in flight: its compensations (run by the end hook,
# after the span ended) are parented to it.
_flow_spans: dict[str, Any] = {}
_in_flight_lock = threading.Lock()

_CONTROL_FLOW = ("Pause", "Abort", "Terminat", "Cancel")


class _QuietOwnHooks(logging.Filter):
    """Drop Prefect's "Running hook ..." / "Hook ... finished" lines for wflo's own hooks.

    wflo records every governed run's end from a Prefect state hook; Prefect logs two
    INFO lines per hook call, which would add two lines (and two API log writes) to
    every governed task. The hooks' own work is in the audit log.
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


def _is_control_flow(exc: BaseException) -> bool:
    # Pausing, aborting and cancelling are Prefect signals, not failures of the code;
    # wflo errors that are outcomes of a human process (ApprovalRejected) say so.
    if getattr(exc, "control_flow", False) is True:
        return True
    return any(name in type(exc).__name__ for name in _CONTROL_FLOW)


class _RunScope:
    """Span, audit start and bookkeeping of one governed execution."""

    def __init__(
        self, kind: Kind, name: str, operation: str | None, fn: Callable[..., Any]
    ) -> None:
        self.kind = kind
        self.name = name
        self.operation = operation
        self.fn = fn

    def start(self, span: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> GovernedCall:
        metrics.ensure_metrics_server()
        correlation = current_correlation()
        call = GovernedCall(
            kind=self.kind,
            name=self.name,
            fn=self.fn,
            args=args,
            kwargs=kwargs,
            operation=self.operation,
            correlation=correlation,
        )
        run_id = correlation.task_run_id if self.kind == "task" else correlation.flow_run_id
        if run_id is not None:
            with _in_flight_lock:
                _in_flight[run_id] = (correlation, time.perf_counter())
                if self.kind == "flow":
                    _flow_spans[run_id] = span.get_span_context()
        if self.kind == "flow":
            remember_traceparent(span)
        if span.is_recording():
            span.set_attributes(self._attributes(correlation))
        payload: dict[str, Any] = {"operation": self.operation} if self.operation else {}
        audit = get_ledger().audit
        # A task's start and end are committed off its path (see ledger/audit_buffer.py);
        # a flow's are written before it goes on.
        write = audit.append if self.kind == "task" else audit.record
        write(f"{self.kind}_run.started", correlation=correlation, payload=payload)
        _log_run_event(
            self.kind, f"{self.kind}_run.started", name=self.name, operation=self.operation
        )
        return call

    def _attributes(self, correlation: Correlation) -> dict[str, str]:
        attributes: dict[str, str] = {"wflo.kind": self.kind, "wflo.name": self.name}
        if correlation.flow_run_id:
            attributes["prefect.flow_run.id"] = correlation.flow_run_id
        if correlation.task_run_id:
            attributes["prefect.task_run.id"] = correlation.task_run_id
        if self.operation:
            attributes["wflo.operation"] = self.operation
        return attributes


def _log_run_event(kind: Kind, event: str, **fields: Any) -> None:
    """A run's start or end in wflo's log: INFO for a flow; DEBUG for a task.

    A task's start and end are in the audit log and Prefect shows its task runs; in the
    run's logs they would be two lines per task. Checked against the level first: a
    disabled structlog call still builds its event on every task.
    """
    if kind == "flow":
        _log.info(event, **fields)
    elif _stdlib_log.isEnabledFor(logging.DEBUG):
        _log.debug(event, **fields)


def _parent(kind: Kind) -> Any:
    # A flow run a worker started has no active span: its trace parent is in its labels.
    return flow_run_parent_context() if kind == "flow" else None


def _fail_span(span: Span, exc: BaseException) -> None:
    if not _is_control_flow(exc):
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _on_error(kind: Kind, span: Span, exc: BaseException) -> Any:
    """Mark the span failed; a flow's named final state (see _named_failure) or None."""
    _fail_span(span, exc)
    return _named_failure(exc) if kind == "flow" else None


def _compensates_now(
    kind: Kind, call: GovernedCall, exc: BaseException, entry: Callable[..., Any]
) -> bool:
    """Whether this error ends a flow run with compensations to run before Prefect sees it.

    Prefect reports a run Failed to its API first and calls its hooks after, so undoing
    from the end hook alone would let anyone who sees the run Failed (a person, an
    automation that re-runs it) still find its side effects. The end hook settles what
    is left: a run Prefect fails after its function returned, a crash, a cancellation,
    and a flow with a timeout (whose undo must not run inside, and be cut by, it).
    ``entry`` is the wrapper: a flow function called directly (``.fn()``) inside another
    run shares that run's context and must not undo it.
    """
    return kind == "flow" and call.correlation.flow_run_id is not None and _ends_the_run(exc, entry)


def _compensate(call: GovernedCall) -> None:
    flow_run_id = call.correlation.flow_run_id
    assert flow_run_id is not None
    try:
        _settle_compensations(flow_run_id, "failed")
    except Exception:  # the end hook and the sweep run what is left
        _log.exception("flow_run.compensation_deferred", flow_run_id=flow_run_id)


def _ends_the_run(exc: BaseException, entry: Callable[..., Any]) -> bool:
    """Whether ``exc`` ends the flow run ``entry`` runs: an error (not a pause), no
    suspension pending, no timeout to stay within, no retry left."""
    from prefect.context import FlowRunContext
    from prefect.exceptions import PausedRun

    if not isinstance(exc, Exception) or isinstance(exc, PausedRun):
        return False  # Pause, Abort, termination: Prefect's signals, settled by the hook
    context = FlowRunContext.get()
    flow_run = getattr(context, "flow_run", None)
    flow = getattr(context, "flow", None)
    if context is None or flow_run is None or flow is None or flow.fn is not entry:
        return False
    if flow.timeout_seconds or context.flow_run_suspension_request.is_requested():
        return False  # the hook settles it outside the timeout; a suspended run resumes
    retries: int = flow_run.empirical_policy.retries or 0
    run_count: int = flow_run.run_count
    return run_count > retries  # Prefect's own rule (RetryFailedFlows)


def _named_failure(exc: BaseException) -> Any:
    """A Failed state named after the error, for wflo errors that name their state.

    Prefect names every failure "Failed"; returning ``Failed(name=...)`` from a flow
    function is how a flow run ends in e.g. ``BudgetExceeded``. Callers still get
    the error raised (Prefect raises a failed flow state's exception from its
    result). Tasks are left alone: a task returning a state would hand the state,
    not the error, to a flow calling it directly.
    """
    from wflo_prefect.errors import WfloError

    final = getattr(exc, "prefect_final_state", None)  # e.g. RunHalted: Cancelled
    if isinstance(exc, WfloError) and callable(final):
        return final()
    name = getattr(exc, "prefect_state_name", None)
    if not isinstance(exc, WfloError) or not isinstance(name, str):
        return None
    from prefect.states import Failed

    return Failed(name=name, message=str(exc), data=exc)


def wrap_function(
    fn: Callable[..., Any],
    *,
    kind: Kind,
    name: str,
    operation: str | None,
    guards: tuple[tuple[Guard, Any], ...],
) -> Callable[..., Any]:
    """Wrap ``fn`` so each call runs under wflo's governance; keeps its signature."""
    scope = _RunScope(kind, name, operation, fn)
    executor = next(((g, v) for g, v in guards if isinstance(g, ExecutingGuard)), None)
    span_name = f"wflo.{kind} {name}"

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with get_tracer().start_as_current_span(
                span_name,
                context=_parent(kind),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                call = scope.start(span, args, kwargs)
                try:
                    async with AsyncExitStack() as stack:
                        await _enter_async(stack, guards, call)
                        if executor is not None:
                            result = await executor[0].execute_async(call, executor[1])
                        else:
                            result = await fn(*args, **kwargs)
                        call.extras["result"] = result
                except BaseException as exc:
                    if _compensates_now(kind, call, exc, async_wrapper):
                        await run_off_loop(_compensate, call)
                    named = _on_error(kind, span, exc)
                    if named is not None:
                        return named
                    raise
                if kind == "task":
                    _task_returned(call, result, async_wrapper)
                return result

        return _with_signature(async_wrapper, fn)

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            with get_tracer().start_as_current_span(
                span_name,
                context=_parent(kind),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                call = scope.start(span, args, kwargs)
                try:
                    async with AsyncExitStack() as stack:
                        await _enter_async(stack, guards, call)
                        async for item in fn(*args, **kwargs):
                            yield item
                except BaseException as exc:
                    _fail_span(span, exc)
                    raise

        return _with_signature(async_gen_wrapper, fn)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            with get_tracer().start_as_current_span(
                span_name,
                context=_parent(kind),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                call = scope.start(span, args, kwargs)
                try:
                    with ExitStack() as stack:
                        _enter(stack, guards, call)
                        result = yield from fn(*args, **kwargs)
                        return result
                except BaseException as exc:
                    _fail_span(span, exc)
                    raise

        return _with_signature(gen_wrapper, fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with get_tracer().start_as_current_span(
            span_name,
            context=_parent(kind),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = scope.start(span, args, kwargs)
            try:
                with ExitStack() as stack:
                    _enter(stack, guards, call)
                    if executor is not None:
                        result = executor[0].execute(call, executor[1])
                    else:
                        result = fn(*args, **kwargs)
                    call.extras["result"] = result  # for guards that act on success
            except BaseException as exc:
                if _compensates_now(kind, call, exc, wrapper):
                    _compensate(call)
                named = _on_error(kind, span, exc)
                if named is not None:
                    return named
                raise
            if kind == "task":
                _task_returned(call, result, wrapper)
            return result

    return _with_signature(wrapper, fn)


def _enter(stack: ExitStack, guards: tuple[tuple[Guard, Any], ...], call: GovernedCall) -> None:
    """Enter each guard's scope for ``call``, in order; those with nothing to do are skipped."""
    for guard, value in guards:
        guarded = guard.around(call, value)
        if guarded is not NOTHING_TO_DO:
            stack.enter_context(guarded)


async def _enter_async(
    stack: AsyncExitStack, guards: tuple[tuple[Guard, Any], ...], call: GovernedCall
) -> None:
    """:func:`_enter` for a coroutine or async generator."""
    for guard, value in guards:
        guarded = guard.around_async(call, value)
        if guarded is not NOTHING_TO_DO:
            await stack.enter_async_context(guarded)


def _with_signature(wrapper: Callable[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``wrapper`` ``fn``'s signature, read once.

    Prefect reads the signature of the function it calls several times per run (to
    bind its parameters); on a wrapper each read would follow ``__wrapped__`` and walk
    ``fn``'s code again. ``__wrapped__`` stays: source-based cache keys read ``fn``.
    """
    with contextlib.suppress(TypeError, ValueError):  # none to read (a builtin): as before
        wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return wrapper


def _outcome(state: Any) -> str:
    if state.is_completed():
        return "completed"
    if state.is_crashed():
        return "crashed"
    if state.is_cancelled() or state.is_cancelling():
        return "cancelled"
    return "failed"


def records_own_completion(fn: Callable[..., Any]) -> bool:
    """Whether a governed task's wrapper records its completion (see :func:`_task_returned`):
    so for functions and coroutines; a generator's end is recorded by the end hook."""
    return not (inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn))


def _task_returned(call: GovernedCall, result: Any, entry: Callable[..., Any]) -> None:
    """Record that a task run completed, when its function has returned.

    A governed task's completion is recorded here rather than from a Prefect
    ``on_completion`` hook: Prefect logs two lines for every hook call, more work than
    the record itself, on every task. What this cannot know is left to the
    ``on_failure`` hook: a returned state or states that do not complete the run, and a
    run Prefect fails after its function returned (e.g. its result could not be stored:
    then the failure follows the completion in the audit log). A task whose result came
    from Prefect's cache did not run and records nothing. ``entry`` is the wrapper: a
    task function called directly (``.fn()``) inside another task run is not that run.
    """
    run_id = call.correlation.task_run_id
    if run_id is None or not _completes(result):
        return
    context = TaskRunContext.get()
    if context is None or context.task.fn is not entry:
        return
    name = (result.name if isinstance(result, State) else None) or "Completed"
    try:
        _record_outcome("task", run_id, call.correlation, call.name, "completed", name, "COMPLETED")
    except Exception:  # like a failing hook, it does not fail a run that succeeded
        _log.exception("task_run.end_not_recorded", task_run_id=run_id)


def _completes(result: Any) -> bool:
    """Whether Prefect ends a task run that returned ``result`` Completed."""
    if isinstance(result, State):
        return result.is_completed()
    if is_state_iterable(result):
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
    _log_run_event(
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
        _settle_compensations(str(flow_run.id), outcome)
    from wflo_prefect.costs.leases import flush_leases

    # The run's spend is on its budgets' windows when it ends (and idle money goes back).
    flush_leases()
    from wflo_prefect.observability.cost_view import publish_flow_cost_view

    publish_flow_cost_view(flow.name, str(flow_run.id))  # the flow's cost view in the UI


def _settle_compensations(flow_run_id: str, outcome: str) -> None:
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
