"""Run wflo's blocking work off the event loop of async flows and tasks.

Governance is mostly blocking I/O: ledger writes (budget holds, approval
requests, compensations), Prefect's sync client (pausing a run for approval),
waiting for people to decide, the Docker SDK. In async code each of these would
stop every other coroutine of the flow for as long as it lasts (an approval wait
for minutes or hours). :func:`run_off_loop` runs a function in a worker thread
with a copy of the caller's context variables (Prefect's run context, the
active budgets, the current span), and :func:`offloaded` enters and leaves a
guard's sync context manager there, carrying the context variables it sets back
to the coroutine, so the function it wraps sees them as in sync code.

Each paused approval gate holds one worker thread while it waits (its waiter
blocks until its run's events, a push or the slow poll wake it); the pool grows on demand up to
:data:`MAX_WORKERS` threads, which bounds how many gates of one process wait at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, ParamSpec, TypeVar

__all__ = ["MAX_WORKERS", "offloaded", "run_off_loop"]

P = ParamSpec("P")
R = TypeVar("R")

#: Most worker threads wflo uses for blocking governance work in one process.
MAX_WORKERS = 256

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="wflo-offload")
    return _executor


async def run_off_loop(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Await ``fn(*args, **kwargs)`` run in a worker thread, in a copy of this context."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(context.run, fn, *args, **kwargs))


def _changes(
    before: dict[contextvars.ContextVar[Any], Any], context: contextvars.Context
) -> list[tuple[contextvars.ContextVar[Any], Any]]:
    return [(var, value) for var, value in context.items() if before.get(var, _UNSET) is not value]


_UNSET = object()


@asynccontextmanager
async def offloaded(cm: AbstractContextManager[Any]) -> AsyncIterator[None]:
    """Enter and leave the sync context manager ``cm`` in a worker thread.

    Both run in one copied context, so a ``ContextVar.reset`` in ``__exit__`` finds
    the token ``__enter__`` made; variables ``__enter__`` sets are set in the
    caller's context for the body and reset after ``__exit__``.
    """
    context = contextvars.copy_context()
    before = dict(context.items())
    loop = asyncio.get_running_loop()
    entering = loop.run_in_executor(_pool(), context.run, cm.__enter__)
    try:
        await asyncio.shield(entering)
    except asyncio.CancelledError:
        # The thread finishes entering anyway: leave the context manager once it has.
        def leave(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                _pool().submit(context.run, cm.__exit__, None, None, None)

        entering.add_done_callback(leave)
        raise
    tokens = [(var, var.set(value)) for var, value in _changes(before, context)]
    try:
        try:
            yield
        except BaseException as exc:
            suppress = await loop.run_in_executor(
                _pool(), context.run, cm.__exit__, type(exc), exc, exc.__traceback__
            )
            if not suppress:
                raise
        else:
            await loop.run_in_executor(_pool(), context.run, cm.__exit__, None, None, None)
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
