"""Removing used sandbox containers off the caller's path.

A pooled sandbox hands its container here when it closes, and the caller goes on at
once: one daemon thread per process removes the container (forced, with its volumes)
and then runs its teardown (the egress network and proxy of a networked sandbox).
Removal takes ~50-100 ms of the engine's time (the container must stop first), which
an agent running code in a loop would otherwise pay at every step.

What ends a container, from the first line of defence to the last:

1. Closing the sandbox closes its attach stream. Warm containers are created with
   ``StdinOnce`` and ``AutoRemove``, so the engine then closes the resident runner's
   stdin, the runner exits, and the engine removes the container by itself. The same
   happens when the owning process dies (even by SIGKILL): the kernel closes its
   sockets.
2. This module's forced removal, for code that kept its container alive (under runc
   it can rewrite the runner's memory). What is still queued at interpreter exit is
   removed before the process ends (``atexit``).
3. ``wflo sandbox gc`` and the first sandbox a process opens remove containers whose
   owner (``org.wflo.sandbox.owner``) is gone; ``max_lifetime_seconds`` ends the rest.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wflo_prefect.observability.logging import get_logger

__all__ = ["removals_pending", "remove_container", "remove_later", "wait_for_removals"]

_log = get_logger("sandbox")
_EXIT_GRACE = 30.0  # seconds the interpreter's exit waits for queued removals


@dataclass
class _Removal:
    client: Any
    container_id: str
    teardown: list[Callable[[], None]] = field(default_factory=list)


def remove_container(client: Any, container_id: str) -> None:
    """Remove a container (forced, with its volumes) and return once it is gone."""
    from docker.errors import APIError, NotFound
    from requests import RequestException

    failure: APIError | None = None
    for _ in range(3):
        try:
            client.api.remove_container(container_id, force=True, v=True)
            return
        except NotFound:
            return
        except APIError as exc:
            failure = exc
        # A conflict with the engine's own removal (AutoRemove: "already in progress",
        # or the kill of a container that stopped by itself meanwhile): wait until the
        # engine is done, so the teardown after it (its network) finds nothing attached.
        try:
            client.api.wait(container_id, condition="removed", timeout=10)
            return
        except NotFound:
            return
        except (APIError, RequestException) as exc:  # not being removed after all: again
            _log.debug("sandbox.remove_retry", container=container_id, error=str(exc))
    assert failure is not None
    raise failure


class _Remover:
    """A queue of removals and the daemon thread that works through it."""

    def __init__(self) -> None:
        self._queue: deque[_Removal] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def put(self, removal: _Removal) -> None:
        with self._cond:
            if self._pid != os.getpid():  # a forked child: the parent's thread is not here
                self._queue, self._busy, self._thread = deque(), 0, None
                self._pid = os.getpid()
            self._queue.append(removal)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="wflo-sandbox-remover", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    def wait(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                removal = self._queue.popleft()
                self._busy += 1
            try:
                _carry_out(removal)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def at_exit(self) -> None:
        if self._pid != os.getpid():
            return
        if self.wait(_EXIT_GRACE):
            return
        # The thread is stuck (or gone): remove what is left from here.
        with self._cond:
            left, self._queue = list(self._queue), deque()
        for removal in left:
            _carry_out(removal)


def _carry_out(removal: _Removal) -> None:
    started = time.perf_counter()
    try:
        remove_container(removal.client, removal.container_id)
    except Exception as exc:  # housekeeping: gc and max_lifetime_seconds are the backstops
        _log.warning("sandbox.remove_failed", container=removal.container_id, error=str(exc))
    for step in removal.teardown:
        try:
            step()
        except Exception as exc:
            _log.warning("sandbox.teardown_failed", container=removal.container_id, error=str(exc))
    _log.debug(
        "sandbox.removed",
        container=removal.container_id,
        seconds=time.perf_counter() - started,
    )


_REMOVER = _Remover()
atexit.register(_REMOVER.at_exit)


def remove_later(
    client: Any, container_id: str, teardown: list[Callable[[], None]] | None = None
) -> None:
    """Queue a container for removal (then its teardown steps) and return at once."""
    _REMOVER.put(_Removal(client, container_id, list(teardown or [])))


def removals_pending() -> int:
    """Containers queued or being removed now."""
    return _REMOVER.pending


def wait_for_removals(timeout: float = 60.0) -> bool:
    """Wait until every queued removal is done; False if ``timeout`` passed first."""
    return _REMOVER.wait(timeout)
