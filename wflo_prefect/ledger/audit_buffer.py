"""Audit events written off the caller's path, committed in batches.

The start and end of every governed task are audit events. Writing each in its own
transaction put two commits on the path of every task (0.35 ms each on SQLite, 0.85 ms
on PostgreSQL here), more than the rest of governance together. These events are
appended to an in-memory buffer instead; a writer thread commits what gathered in one
transaction at most :data:`FLUSH_INTERVAL` seconds after the first of them.

What a crash may lose: when the process is killed (SIGKILL, power loss), task start and
end events appended in the last :data:`FLUSH_INTERVAL` seconds. Everything else is
written before the call that produced it returns: flow start and end, approvals,
policy decisions, costs, compensations, sandbox runs. A flow run's end flushes the
buffer, so a finished run's audit trail is complete, and so does a normal exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from wflo_prefect.errors import LedgerError

__all__ = ["FLUSH_INTERVAL", "AuditBuffer"]

#: Longest time an appended event waits before its batch is committed (seconds).
#: Each commit is a burst of work on the writer thread that the governed task's thread
#: must hand the interpreter lock to. Paired runs of 100 trivial governed tasks against
#: a started Prefect server: +1.5-1.8 ms of wall time per task at 50 ms, +0.4-1.1 ms
#: at 0.5 s (``docs/benchmarks.md``).
FLUSH_INTERVAL = 0.5
_MAX_BATCH = 500
_RETRY_EVERY = 0.5
_log = logging.getLogger("wflo_prefect.ledger")

_buffers: weakref.WeakSet[AuditBuffer] = weakref.WeakSet()


class AuditBuffer:
    """Rows appended here are inserted by ``write(rows)`` on a background thread."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], None], *, name: str) -> None:
        self._write = write
        self._name = name
        self._cond = threading.Condition()
        self._pending: list[dict[str, Any]] = []
        self._appended = 0  # rows ever appended
        self._committed = 0  # rows ever committed (a prefix of the appended ones)
        self._error: Exception | None = None
        self._flush_now = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        _buffers.add(self)

    def append(self, row: dict[str, Any]) -> None:
        """Queue one row; it is committed within :data:`FLUSH_INTERVAL` seconds."""
        with self._cond:
            self._check_process()
            if self._closed:
                raise LedgerError(
                    "The ledger was closed; the audit event was not recorded",
                    value=row.get("event"),
                    hint="Record events before disposing of the ledger",
                )
            self._pending.append(row)
            self._appended += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"wflo-audit-{self._name}", daemon=True
                )
                self._thread.start()
            # Wake the writer only when it has something new to do: the first row of a
            # batch (it then waits out FLUSH_INTERVAL by itself) or a full batch. Waking
            # it for every row made it compete with the governed task for the
            # interpreter twice per task.
            if len(self._pending) == 1 or len(self._pending) >= _MAX_BATCH:
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every row appended before the call is committed.

        Raises :class:`LedgerError` when the database kept refusing them for ``timeout``
        seconds (the rows stay queued and are retried).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._check_process()
            target = self._appended
            while self._committed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LedgerError(
                        "Audit events could not be written to the ledger",
                        value=target - self._committed,
                        hint=f"Check the ledger database ({self._error})",
                        docs="governed.md",
                    )
                if self._thread is None or not self._thread.is_alive():
                    self._drain_inline()
                    continue
                self._flush_now = True
                self._cond.notify_all()
                self._cond.wait(min(remaining, _RETRY_EVERY))

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            self._after_fork()

    def _after_fork(self) -> None:
        # The child owns a copy of the parent's queue, whose rows the parent writes:
        # forget them; a new lock (the parent's writer may have held the old one when it
        # forked) and a writer of the child's own when needed.
        self._cond = threading.Condition()
        self._pid = os.getpid()
        self._pending = []
        self._committed = self._appended
        self._thread = None
        self._error = None
        self._flush_now = False

    def _take_batch(self) -> list[dict[str, Any]]:
        return self._pending[:_MAX_BATCH]

    def _commit(self, batch: list[dict[str, Any]]) -> bool:
        """Write ``batch`` (outside the lock); True when it is done with."""
        try:
            self._write(batch)
        except Exception as exc:  # the database's own error, kept for flush() to report
            if _transient(exc) or not self._write_one_by_one(batch):
                with self._cond:
                    if self._error is None:
                        _log.warning("audit events not written yet, will retry: %s", exc)
                    self._error = exc
                return False
        with self._cond:
            del self._pending[: len(batch)]
            self._committed += len(batch)
            self._error = None
            self._cond.notify_all()
        return True

    def _write_one_by_one(self, batch: list[dict[str, Any]]) -> bool:
        """Write a batch one row at a time after a permanent error (a row the database can
        never take must not hold up the others): such a row is logged whole, at ERROR, and
        skipped. False when the database fails for every row alike (retry the batch)."""
        for row in batch:
            try:
                self._write([row])
            except Exception as exc:  # classified just below
                if _transient(exc):
                    return False
                _log.error("audit event refused by the ledger, not recorded: %r (%s)", row, exc)
        return True

    def _drain_inline(self) -> None:
        # Called with the lock held when no writer thread runs (e.g. at interpreter exit).
        batch = self._take_batch()
        self._cond.release()
        try:
            if not self._commit(batch):
                time.sleep(_RETRY_EVERY)
        finally:
            self._cond.acquire()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                first_wait = time.monotonic() + FLUSH_INTERVAL
                while (
                    not self._flush_now
                    and not self._closed
                    and len(self._pending) < _MAX_BATCH
                    and (left := first_wait - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                self._flush_now = False
                batch = self._take_batch()
            if not self._commit(batch):
                time.sleep(_RETRY_EVERY)


def _transient(exc: BaseException) -> bool:
    """Whether a write may succeed later (database down, locked) rather than never."""
    from sqlalchemy.exc import OperationalError

    cause = exc.__cause__ if isinstance(exc, LedgerError) else exc
    return isinstance(cause, OperationalError)


def _reset_after_fork() -> None:
    for buffer in list(_buffers):
        buffer._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)


@atexit.register
def _flush_at_exit() -> None:
    for buffer in list(_buffers):
        try:
            buffer.flush(timeout=5.0)
        except LedgerError as exc:
            _log.error("audit events lost at exit: %s", exc)
