"""Row ids: random (version 4) UUIDs drawn from a pool of OS randomness.

``uuid.uuid4()`` makes one ``getrandom`` system call per id, and a system call lets go
of the GIL. On the path of a governed task that is where another thread (the audit
writer, Prefect's event and log workers) takes the interpreter, and the task waits for
it: here ~90 µs per id with one busy thread, against ~3 µs idle. The pool reads
:data:`POOL_IDS` ids' worth of bytes in one call; the ids are as random as
``uuid4()``'s (the same source), and a forked child refills its pool before its first
id, so no two processes hand out the same one.
"""

from __future__ import annotations

import os
import threading
import uuid

__all__ = ["POOL_IDS", "new_id"]

#: Ids read from the OS in one call.
POOL_IDS = 256
_ID_BYTES = 16


class _RandomPool:
    """Bytes from ``os.urandom``, handed out 16 at a time, refilled when used up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._next = 0

    def take(self) -> bytes:
        with self._lock:
            if self._next >= len(self._bytes):
                self._bytes = os.urandom(_ID_BYTES * POOL_IDS)
                self._next = 0
            start = self._next
            self._next = start + _ID_BYTES
            return self._bytes[start : self._next]

    def forget(self) -> None:
        """In a forked child: drop the parent's unused bytes (and its lock's state)."""
        self._lock = threading.Lock()
        self._bytes = b""
        self._next = 0


_pool = _RandomPool()
os.register_at_fork(after_in_child=_pool.forget)


def new_id() -> str:
    """A new row id: a random UUID (version 4), as text."""
    return str(uuid.UUID(bytes=_pool.take(), version=4))
