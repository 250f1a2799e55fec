"""An opt-in pool of sandbox containers started ahead of time.

Each container serves one sandbox only and is removed (in the background, see
:mod:`~wflo_prefect.sandbox.removal`) when that sandbox closes; a background thread
then starts a replacement, so code never runs where other code ran before. What the
pool saves is the create + start of the container (~0.2 s with runc, ~0.4 s with
gVisor) on the caller's path, and, because a warm container's main process is a
resident runner the sandbox talks to over the attach stream, the ``docker exec`` of
each run (~45 ms here). Warm containers therefore need python3 and /bin/sh in the
image.
"""

from __future__ import annotations

import atexit
import threading
import uuid
import weakref
from collections import deque
from typing import Any

from wflo_prefect.observability.logging import get_logger
from wflo_prefect.sandbox.cleanup import reap_orphans_once
from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.engine import docker_client
from wflo_prefect.sandbox.errors import SandboxConfigError, SandboxError
from wflo_prefect.sandbox.launch import Launched, launch_container
from wflo_prefect.sandbox.removal import remove_later
from wflo_prefect.sandbox.sandbox import DockerSandbox

__all__ = ["REFILL_GRACE", "WarmPool"]

_log = get_logger("sandbox")
_open: weakref.WeakSet[WarmPool] = weakref.WeakSet()


@atexit.register  # registered after the sandboxes' and the remover's: runs before them
def _close_open_pools() -> None:
    # The filler must not be cut off between creating a container and starting it:
    # a container that never started is not removed by the engine, only by gc.
    for pool in list(_open):
        pool.close()


REFILL_GRACE = 1.0  # seconds a refill waits at most for a taken sandbox to close


class WarmPool:
    """Keep ``size`` started containers of ``config`` ready; use as a context manager.

    >>> with WarmPool(SandboxConfig(), size=2) as pool:     # doctest: +SKIP
    ...     with pool.sandbox() as box:
    ...         box.run("echo hi")
    """

    def __init__(self, config: SandboxConfig | None = None, *, size: int = 2) -> None:
        if not 1 <= size <= 64:
            raise SandboxConfigError(
                "A warm pool holds 1 to 64 containers", value=size, hint="Pick e.g. size=2"
            )
        self.config = config or SandboxConfig()
        self.size = size
        self._idle: deque[Launched] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._filler: threading.Thread | None = None
        self._client: Any = None
        self._error: Exception | None = None
        self._taken_open = 0  # sandboxes taken from the pool and not closed yet

    def __enter__(self) -> WarmPool:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, *, wait: bool = True) -> WarmPool:
        """Start filling the pool; with ``wait``, return once it is full."""
        if self._filler is None:
            self._client = docker_client()
            reap_orphans_once(self._client)
            self._filler = threading.Thread(target=self._fill, name="wflo-warm-pool", daemon=True)
            self._filler.start()
            _open.add(self)
        if wait:
            with self._cond:
                self._cond.wait_for(
                    lambda: len(self._idle) >= self.size or self._error is not None, timeout=120
                )
            if self._error is not None:
                raise self._error
        return self

    def sandbox(self) -> DockerSandbox:
        """A sandbox that takes its container from this pool when it starts."""
        return DockerSandbox(self.config, pool=self)

    def take(self) -> Launched | None:
        """An idle started container, or None when the pool is empty (caller starts cold).

        The replacement starts once the taker calls :meth:`sandbox_closed`, or after
        :data:`REFILL_GRACE` seconds.
        """
        with self._cond:
            launched = self._idle.popleft() if self._idle else None
            if launched is not None:
                self._taken_open += 1
            self._cond.notify_all()
        return launched

    def sandbox_closed(self) -> None:
        """A sandbox taken from the pool closed: start its replacement now."""
        with self._cond:
            self._taken_open = max(0, self._taken_open - 1)
            self._cond.notify_all()

    @property
    def idle(self) -> int:
        """Containers ready now."""
        return len(self._idle)

    def _fill(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or len(self._idle) < self.size)
                # Starting a container costs the engine ~0.2 s of CPU and this process
                # some Python (the GIL): on a small machine that slows the runs of the
                # sandbox just taken several-fold (a warm call's p50 ~6 ms -> ~17 ms on 2
                # cores). So wait until it closes, or for the grace period if it is held.
                self._cond.wait_for(
                    lambda: self._closed or self._taken_open == 0, timeout=REFILL_GRACE
                )
                if self._closed:
                    return
            try:
                launched = self._launch()
            except Exception as exc:
                _log.warning("sandbox.warm_pool_failed", error=str(exc))
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                keep = not self._closed
                if keep:
                    self._idle.append(launched)
                    self._cond.notify_all()
            if not keep:
                _discard(self._client, launched)
                return

    def _launch(self) -> Launched:
        """A started container whose runner has already run one empty command."""
        launched = launch_container(
            self._client,
            self.config,
            sandbox_id=uuid.uuid4().hex[:12],
            role="warm",
            resident=True,
        )
        assert launched.runner is not None
        # A runner's first command pays one-off costs (its first fork, the lazy imports
        # behind it); `sh -c :` pays them here, proves the container can run a command,
        # and leaves nothing behind, so the container is still fresh.
        outcome = launched.runner.run(["/bin/sh", "-c", ":"], stdin=None, timeout=30, limit=4096)
        if outcome.exit_code != 0:
            _discard(self._client, launched)
            raise SandboxError(
                "A warm sandbox container could not run a command",
                value=self.config.image,
                hint="Check that the image has /bin/sh and python3 "
                f"({outcome.stderr.decode(errors='replace').strip()})",
            )
        return launched

    def close(self) -> None:
        """Stop refilling; the idle containers are removed in the background."""
        with self._cond:
            self._closed = True
            _open.discard(self)
            idle, self._idle = list(self._idle), deque()
            self._cond.notify_all()
        for launched in idle:
            _discard(self._client, launched)
        if self._filler is not None:
            self._filler.join(timeout=30)


def _discard(client: Any, launched: Launched) -> None:
    if launched.runner is not None:
        launched.runner.close()
    remove_later(client, launched.container.id, launched.teardown)
