"""The watchdog: time-based policies fire while a step runs, not only at the next check.

A governed flow run whose active policies use ``run_time`` / ``execution_time``
gets a watchdog thread in its process. Every ``watchdog_seconds`` it evaluates
those policies (in a copy of the run's context: same flow run, same policies).
On a match it records the decision and carries out ``AuditLog`` and ``Notify``
as at any other point, once per policy per run. A ``Halt`` cancels the run:

1. the flow run is set ``Cancelling`` through Prefect's API, with the policy's
   reason as the message (a runner or worker serving a deployment then stops the
   process, Prefect's own cancellation);
2. the step in progress is interrupted in this process: a flow in the main
   thread is woken by a signal (even inside ``time.sleep`` or a blocking read),
   a flow in another thread gets ``RunHalted`` when it next runs Python code;
3. the flow ends ``Cancelled`` with the message
   ``Policy 'NAME' halted the run while it was running: REASON``.

``RequireApproval`` is not taken from the watchdog (a thread cannot pause the
run it watches): it applies at the next checkpoint, a task start.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any, ClassVar

from wflo_prefect.errors import WfloRuntimeError
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.policies.policy import Policy

__all__ = ["TIME_NAMES", "RunHalted", "timed_policies", "watch_run", "watch_run_async"]

_log = get_logger("policies")

#: The names whose value changes while a step runs.
TIME_NAMES = frozenset({"run_time", "execution_time"})
_WAKE = getattr(signal, "SIGUSR2", None)
_pending: dict[int, RunHalted] = {}
#: The latest halt aimed at each thread: nested runs re-raise it with its reason.
_aimed: dict[int, RunHalted] = {}
_pending_lock = threading.Lock()


class RunHalted(WfloRuntimeError):
    """A time-based policy halted the run while a step was running.

    The flow run ends ``Cancelled`` with this message (not Failed: nothing went
    wrong in the code; a rule stopped it).
    """

    prefect_state_name: ClassVar[str] = "Cancelled"

    def __init__(self, policy: str = "", reason: str = "") -> None:
        self.policy = policy
        self.reason = reason
        super().__init__(
            f"Policy {policy!r} halted the run while it was running: {reason}",
            hint="Change the policy or make the step faster; the decision is in the audit log",
            docs="policies.md",
        )

    def prefect_final_state(self) -> Any:
        """The state the flow run ends in."""
        from prefect.states import Cancelled

        return Cancelled(message=str(self.message))


def timed_policies(policies: tuple[Policy, ...]) -> tuple[Policy, ...]:
    """The policies evaluated at ``run`` whose conditions read the clock."""
    return tuple(p for p in policies if "run" in p.on and p.compiled.variables & TIME_NAMES)


def _on_wake(signum: int, frame: FrameType | None) -> None:
    with _pending_lock:
        halt = _pending.pop(threading.get_ident(), None)
    if halt is not None:
        raise halt


class _Watchdog:
    def __init__(
        self,
        policies: tuple[Policy, ...],
        *,
        name: str,
        params: dict[str, Any],
        interval: float,
        context: contextvars.Context,
        thread_id: int,
        woken_by_signal: bool,
        interrupt: Callable[[], object] | None = None,
    ) -> None:
        self.policies = policies
        self.name = name
        self.params = params
        self.interval = interval
        self.context = context
        self.thread_id = thread_id
        self.woken_by_signal = woken_by_signal
        self.interrupt = interrupt
        self.fired: set[str] = set()
        self.halted: RunHalted | None = None
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="wflo-policy-watchdog", daemon=True)

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                if self.context.run(self._check):
                    return
            except Exception as exc:  # the run goes on; the next tick tries again
                _log.warning("watchdog.failed", error=str(exc))

    def _check(self) -> bool:
        from wflo_prefect.policies.engine import carry_out, evaluate_policies, record_outcome

        todo = [p for p in self.policies if p.name not in self.fired]
        if not todo:
            return True
        outcome = evaluate_policies("run", todo, kind="flow", name=self.name, params=self.params)
        if not outcome.matched:
            return False
        outcome = evaluate_policies(
            "run", outcome.matched, kind="flow", name=self.name, params=self.params, describe=True
        )
        if not outcome.matched:
            return False
        outcome.context["watchdog"] = True
        record_outcome(outcome)
        self.fired |= {p.name for p in outcome.matched}
        halts, _ = carry_out(outcome)
        if not halts or self.stopped.is_set():
            return False
        policy, halt = halts[0]
        reason = halt.reason or f"condition {policy.condition!r} holds"
        self._halt(RunHalted(policy.name, reason), outcome.context.get("flow_run_id") or "")
        return True

    def _halt(self, halted: RunHalted, flow_run_id: str) -> None:
        from wflo_prefect.ledger import get_ledger
        from wflo_prefect.observability.correlation import current_correlation

        get_ledger().audit.record(
            "policy.halted",
            correlation=current_correlation(),
            outcome="cancelled",
            payload={
                "policy": halted.policy,
                "point": "run",
                "reason": halted.reason,
                "watchdog": True,
            },
        )
        if flow_run_id:
            _set_cancelling(flow_run_id, str(halted.message))
        with self.lock:
            self.halted = halted
            if self.stopped.is_set():
                return
            with _pending_lock:
                _aimed[self.thread_id] = halted
            if self.interrupt is not None:
                self.interrupt()
            elif self.woken_by_signal and _WAKE is not None:
                with _pending_lock:
                    _pending[self.thread_id] = halted
                signal.pthread_kill(self.thread_id, _WAKE)
            else:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread_id), ctypes.py_object(RunHalted)
                )


def _set_cancelling(flow_run_id: str, message: str) -> None:
    import uuid

    from prefect.states import Cancelling

    from wflo_prefect._prefect_client import prefect_client

    with prefect_client() as client:
        client.set_flow_run_state(uuid.UUID(flow_run_id), Cancelling(message=message), force=True)


def _wake_handler() -> bool:
    """Install the wake-up signal handler (main thread only, if the signal is free).

    Once installed it stays: a wake-up signal arriving late then does nothing,
    where the default action would end the process.
    """
    if _WAKE is None or threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(_WAKE)
    if current is _on_wake:
        return True
    if current not in (signal.SIG_DFL, None):
        return False
    signal.signal(_WAKE, _on_wake)
    return True


@contextmanager
def watch_run(policies: tuple[Policy, ...], *, name: str, params: dict[str, Any]) -> Iterator[None]:
    """Watch a governed flow run's time-based ``policies`` while the block runs.

    Raises :class:`RunHalted` from the block when one with a ``Halt`` matched.
    """
    timed = timed_policies(policies)
    if not timed:
        yield
        return
    from wflo_prefect.policies.settings import get_policy_settings

    by_signal = _wake_handler()
    dog = _Watchdog(
        timed,
        name=name,
        params=params,
        interval=get_policy_settings().watchdog_seconds,
        context=contextvars.copy_context(),
        thread_id=threading.get_ident(),
        woken_by_signal=by_signal,
    )
    dog.thread.start()
    try:
        yield
    except RunHalted as exc:
        with _pending_lock:
            aimed = _aimed.get(dog.thread_id)
        raise dog.halted or aimed or exc from None
    except BaseException:
        if dog.halted is not None:  # e.g. the step's task wrapped the interruption
            raise dog.halted from None
        raise
    finally:
        with dog.lock:
            dog.stopped.set()
            with _pending_lock:
                _pending.pop(dog.thread_id, None)
                if dog.halted is not None:
                    _aimed.pop(dog.thread_id, None)
            if dog.halted is not None and not dog.woken_by_signal and dog.interrupt is None:
                # An interruption not delivered yet (the thread was in C code) is withdrawn.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(dog.thread_id), None)
    if dog.halted is not None:
        raise dog.halted


@asynccontextmanager
async def watch_run_async(
    policies: tuple[Policy, ...], *, name: str, params: dict[str, Any]
) -> AsyncIterator[None]:
    """:func:`watch_run` for async flows: a halt cancels the flow's asyncio task."""
    timed = timed_policies(policies)
    if not timed:
        yield
        return
    from wflo_prefect.policies.settings import get_policy_settings

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    dog = _Watchdog(
        timed,
        name=name,
        params=params,
        interval=get_policy_settings().watchdog_seconds,
        context=contextvars.copy_context(),
        thread_id=threading.get_ident(),
        woken_by_signal=False,
        interrupt=lambda: loop.call_soon_threadsafe(task.cancel),
    )
    dog.thread.start()
    try:
        yield
    except asyncio.CancelledError:
        if dog.halted is not None:
            task.uncancel()
            raise dog.halted from None
        raise
    except BaseException:
        if dog.halted is not None:
            raise dog.halted from None
        raise
    finally:
        with dog.lock:
            dog.stopped.set()
    if dog.halted is not None:
        raise dog.halted
