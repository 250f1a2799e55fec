"""Fast wake-up: a paused gate learns of a decision from a local push or Prefect's events.

Prefect's own ``pause_flow_run`` re-reads the run every ``poll_interval`` (10 s
by default), so a resume is noticed seconds late, and polling faster multiplies
API calls. A gate instead subscribes to the Prefect event stream for its one flow
run (``prefect.flow-run.*`` state events, pushed over the events websocket) and
wakes as soon as the run leaves ``Paused``. Decisions made through wflo on the
same machine also push a datagram to the gate's loopback port right after the
vote is recorded (its content is never trusted: it only makes the gate look at
the ledger), which saves the trip through the server's event pipeline. A slow
poll of the run remains as a safety net for a lost connection or a skewed clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from wflo_prefect._prefect_compat import limit_event_backfill
from wflo_prefect.observability.logging import get_logger

__all__ = ["RunWatcher", "poke"]

_log = get_logger("approvals.wakeup")
# Events carry the server's clock; accept this much skew before ignoring old ones.
_SKEW = timedelta(seconds=1)


class RunWatcher:
    """Signals when a flow run changes state, pushed by Prefect's event stream."""

    def __init__(self, flow_run_id: UUID | str) -> None:
        self.flow_run_id = str(flow_run_id)
        self._changed = threading.Event()
        self._ready = threading.Event()
        self._since = datetime.now(UTC)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self.connected = False
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._closed = False
        #: Server time of the pause being watched (``None`` until known): state events
        #: that happened before it are old news, and a ``Running`` one after it means
        #: the pause was resumed, without reading the run again.
        self.paused_at: datetime | None = None
        #: Whether a ``Running`` event after :attr:`paused_at` arrived.
        self.resumed = False
        # State events seen while the pause's time was not known yet: (occurred, name).
        self._early: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()
        #: ``host:port`` that :func:`poke` sends to.
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"

    def start(self, connect_timeout: float = 10.0) -> RunWatcher:
        """Subscribe in a background thread; return once subscribed (or given up)."""
        self._since = datetime.now(UTC)
        self._thread = threading.Thread(
            target=self._run, name=f"wflo-approval-watch-{self.flow_run_id[:8]}", daemon=True
        )
        self._thread.start()
        threading.Thread(
            target=self._receive, name=f"wflo-approval-poke-{self.flow_run_id[:8]}", daemon=True
        ).start()
        self._ready.wait(connect_timeout)
        return self

    def _receive(self) -> None:
        while not self._closed:
            try:
                self._socket.recv(64)
            except OSError:
                return
            self._changed.set()

    def arm(self) -> None:
        """Forget earlier changes; call right before pausing the run."""
        self._since = datetime.now(UTC)
        with self._lock:
            self.paused_at = None
            self.resumed = False
            self._early = []
        self._changed.clear()

    def paused(self, at: datetime) -> None:
        """The run paused at ``at`` (server time); events up to then are old news."""
        with self._lock:
            self.paused_at = at
            early, self._early = self._early, []
        for occurred, name in early:
            self._seen(occurred, name)

    def _seen(self, occurred: datetime, name: str) -> None:
        with self._lock:
            paused_at = self.paused_at
            if paused_at is None:
                # Which pause does it belong to? Decided when the pause's time is known.
                if occurred >= self._since - _SKEW:
                    self._early.append((occurred, name))
                return
            if occurred <= paused_at:
                return  # an earlier pause's resume (Prefect replays recent events)
            self.resumed = self.resumed or name == "prefect.flow-run.Running"
        self._changed.set()

    def nudge(self) -> None:
        """Make the next :meth:`wait` return at once."""
        self._changed.set()

    def wait(self, timeout: float) -> bool:
        """Block until the run changed state or ``timeout`` passed; True when it changed."""
        changed = self._changed.wait(timeout)
        self._changed.clear()
        return changed

    def close(self) -> None:
        """Unsubscribe and stop the threads."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._socket.sendto(b"x", self._socket.getsockname())
        self._socket.close()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._listen())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the slow poll still wakes the gate
            _log.warning(
                "approval.wakeup.unavailable", flow_run_id=self.flow_run_id, error=repr(exc)
            )
        finally:
            self._ready.set()
            loop.close()

    async def _listen(self) -> None:
        event_filter = EventFilter(
            event=EventNameFilter(prefix=["prefect.flow-run."]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{self.flow_run_id}"]),
        )
        subscriber = get_events_subscriber(filter=event_filter, reconnect_on_clean_close=True)
        # Prefect replays the last minute of matching events on connect; a gate only
        # cares about changes after it subscribed (a run with many gates would
        # otherwise re-read all of its earlier state events each time).
        limit_event_backfill(subscriber, self._since - _SKEW)
        async with subscriber as sub:
            self.connected = True
            self._ready.set()
            async for event in sub:
                if event.event == "prefect.flow-run.Paused":
                    continue
                self._seen(event.occurred, event.event)


def poke(address: str | None) -> None:
    """Wake the gate listening at ``address`` (best effort, never raises)."""
    if not address:
        return
    host, _, port = address.rpartition(":")
    with (
        contextlib.suppress(OSError, ValueError),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.sendto(b"w", (host, int(port)))
