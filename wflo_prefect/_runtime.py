"""What happens around every governed run: span, audit start, guards.

The decorators wrap the user's function with :func:`wrap_function`; how each run
ends is recorded by :mod:`wflo_prefect._run_end` (Prefect's end hooks, and a
task's completion from this wrapper).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from wflo_prefect._offload import run_off_loop
from wflo_prefect._run_end import (
    enter_task_run,
    leave_task_run,
    log_run_event,
    remember_start,
    settle_compensations,
    task_returned,
)
from wflo_prefect.governance import NOTHING_TO_DO, ExecutingGuard, GovernedCall, Guard, Kind
from wflo_prefect.ledger import get_ledger
from wflo_prefect.observability import metrics
from wflo_prefect.observability.correlation import Correlation, current_correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.propagation import flow_run_parent_context, remember_traceparent
from wflo_prefect.observability.tracing import get_tracer

__all__ = ["wrap_function"]

_log = get_logger("runs")

_CONTROL_FLOW = ("Pause", "Abort", "Terminat", "Cancel")


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
            remember_start(
                run_id, correlation, span.get_span_context() if self.kind == "flow" else None
            )
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
        log_run_event(
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
        settle_compensations(flow_run_id, "failed")
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
                outermost = enter_task_run(call) if kind == "task" else None
                try:
                    async with AsyncExitStack() as stack:
                        await _enter_async(stack, guards, call)
                        if executor is not None:
                            result = await executor[0].execute_async(call, executor[1])
                        else:
                            result = await fn(*args, **kwargs)
                        call.extras["result"] = result
                except BaseException as exc:
                    leave_task_run(outermost)
                    if _compensates_now(kind, call, exc, async_wrapper):
                        await run_off_loop(_compensate, call)
                    named = _on_error(kind, span, exc)
                    if named is not None:
                        return named
                    raise
                if outermost is not None:
                    leave_task_run(outermost)
                    task_returned(call, result, async_wrapper)
                return result

        return _with_signature(async_wrapper, fn, kind)

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

        return _with_signature(async_gen_wrapper, fn, kind)

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

        return _with_signature(gen_wrapper, fn, kind)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with get_tracer().start_as_current_span(
            span_name,
            context=_parent(kind),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = scope.start(span, args, kwargs)
            outermost = enter_task_run(call) if kind == "task" else None
            try:
                with ExitStack() as stack:
                    _enter(stack, guards, call)
                    if executor is not None:
                        result = executor[0].execute(call, executor[1])
                    else:
                        result = fn(*args, **kwargs)
                    call.extras["result"] = result  # for guards that act on success
            except BaseException as exc:
                leave_task_run(outermost)
                if _compensates_now(kind, call, exc, wrapper):
                    _compensate(call)
                named = _on_error(kind, span, exc)
                if named is not None:
                    return named
                raise
            if outermost is not None:
                leave_task_run(outermost)
                task_returned(call, result, wrapper)
            return result

    return _with_signature(wrapper, fn, kind)


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


def _with_signature(
    wrapper: Callable[..., Any], fn: Callable[..., Any], kind: Kind
) -> Callable[..., Any]:
    """Give a task's ``wrapper`` ``fn``'s signature, read once.

    Prefect reads the signature of the task function it calls several times per run
    (to bind its parameters); on a wrapper each read would follow ``__wrapped__`` and
    walk ``fn``'s code again. ``__wrapped__`` stays: source-based cache keys read
    ``fn``. Left alone: a flow (its signature is read once per run), and a function
    with postponed (string) annotations, since a set signature is returned as is,
    never evaluated, and Prefect's parameter schemas need the types.
    """
    if kind != "task":
        return wrapper
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # none to read (a builtin): as before
        return wrapper
    annotations = [p.annotation for p in signature.parameters.values()]
    if not any(isinstance(a, str) for a in [*annotations, signature.return_annotation]):
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper
