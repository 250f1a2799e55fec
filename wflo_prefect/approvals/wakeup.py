"""Fast wake-up: a paused gate learns of a decision from a local push or Prefect's events.

Prefect's own ``pause_flow_run`` re-reads the run every ``poll_interval`` (10 s
by default), so a resume is noticed seconds late, and polling faster multiplies
API calls. A gate instead learns from the Prefect event stream (``prefect.flow-run.*``
state events, pushed over the events websocket) as soon as its run leaves
``Paused``. Decisions made through wflo on the same machine also push a datagram
to the gate's loopback address right after the vote is recorded (its content only
says which gate to wake, and is never trusted further: the gate looks at the
ledger), which saves the trip through the server's event pipeline. A slow poll of
the run remains as a safety net for a lost connection or a skewed clock.

Waiting costs the same whether a process holds one gate or hundreds: one
:class:`_Hub` per process (and Prefect API) keeps **one** event subscription,
filtered to the runs its gates watch, and **one** loopback socket, in one thread.
A new gate's run is added by opening the wider subscription first and closing
the old one only :data:`_GRACE_S` seconds after the new one connected (the server
starts streaming to a new subscription a moment after it connects, and its
backfill reads only events already stored), so no event falls in between;
duplicates are dropped by event id. Gates arriving together are added at once. The
server then matches each event against one filter per process, not one per gate.
Heartbeat events (``prefect.flow-run.heartbeat``, sent while a run waits) and the
gate's own ``Paused`` never wake a gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.context import SettingsContext
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from wflo_prefect._prefect_compat import limit_event_backfill
from wflo_prefect.observability.logging import get_logger

__all__ = ["RunWatcher", "poke"]

_log = get_logger("approvals.wakeup")
# Events carry the server's clock; accept this much skew before ignoring old ones.
_SKEW = timedelta(seconds=1)
# Flow-run events that never mean "look at the run again".
_IGNORED = ("prefect.flow-run.heartbeat", "prefect.flow-run.Paused")
# How long a hub keeps its subscription once no gate waits (the next gate reuses it).
_LINGER_S = 30.0
# After a failed subscription, how long before the hub tries again.
_RETRY_S = 5.0
# Event ids remembered across subscriptions (a new one replays a short backfill).
_SEEN_MAX = 4096
#: How long a replaced subscription stays open beside the one that replaced it.
_GRACE_S = 5.0
# Gates that start within this many seconds of each other are subscribed together.
_GATHER_S = 0.05


class RunWatcher:
    """Signals when a flow run changes state, pushed by Prefect's event stream."""

    def __init__(self, flow_run_id: UUID | str) -> None:
        self.flow_run_id = str(flow_run_id)
        self._changed = threading.Event()
        #: Set once this run's events are subscribed to (or the hub gave up for now).
        self.ready = threading.Event()
        self.since = datetime.now(UTC)
        #: Whether the event subscription covered this run when :meth:`start` returned.
        self.connected = False
        #: Server time of the pause being watched (``None`` until known): state events
        #: that happened before it are old news, and a ``Running`` one after it means
        #: the pause was resumed, without reading the run again.
        self.paused_at: datetime | None = None
        #: Whether a ``Running`` event after :attr:`paused_at` arrived.
        self.resumed = False
        # State events seen while the pause's time was not known yet: (occurred, name).
        self._early: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()
        self._hub: _Hub | None = None
        self.token = secrets.token_hex(8)
        #: ``host:port/token`` that :func:`poke` sends to (set by :meth:`start`).
        self.address = ""

    def start(self, connect_timeout: float = 10.0) -> RunWatcher:
        """Join this process's hub; return once the run's events are subscribed to
        (or after ``connect_timeout``: the slow poll still wakes the gate)."""
        self.since = datetime.now(UTC)
        self._hub = _hub()
        self.address = f"127.0.0.1:{self._hub.port}/{self.token}"
        self._hub.add(self)
        self.ready.wait(connect_timeout)
        return self

    def arm(self) -> None:
        """Forget earlier changes; call right before pausing the run."""
        self.since = datetime.now(UTC)
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
            self.seen(occurred, name)

    def seen(self, occurred: datetime, name: str) -> None:
        """A state event of the run arrived (called by the hub)."""
        with self._lock:
            paused_at = self.paused_at
            if paused_at is None:
                # Which pause does it belong to? Decided when the pause's time is known.
                if occurred >= self.since - _SKEW:
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
        """Stop watching (the hub's subscription stays for the process's other gates)."""
        if self._hub is not None:
            self._hub.remove(self)
            self._hub = None


class _Poked(asyncio.DatagramProtocol):
    def __init__(self, hub: _Hub) -> None:
        self.hub = hub

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.hub.poked(data)


class _Hub:
    """One event subscription and one loopback socket for every gate of a process."""

    def __init__(self, settings: SettingsContext | None) -> None:
        self._settings = settings.model_copy() if settings is not None else None
        self._lock = threading.Lock()
        self._runs: dict[str, set[RunWatcher]] = {}
        self._tokens: dict[str, RunWatcher] = {}
        self._waiting: list[RunWatcher] = []  # added, not yet covered by a subscription
        self._seen: OrderedDict[Any, None] = OrderedDict()
        self._loop = asyncio.new_event_loop()
        self._want: asyncio.Event | None = None
        self._started = threading.Event()
        self.port = 0
        self.alive = True
        threading.Thread(target=self._run, name="wflo-approval-hub", daemon=True).start()
        self._started.wait()  # set by the thread once its socket is bound, or when it fails

    # --- called from the gates' threads ---------------------------------------------

    def add(self, watcher: RunWatcher) -> None:
        with self._lock:
            self._runs.setdefault(watcher.flow_run_id, set()).add(watcher)
            self._tokens[watcher.token] = watcher
            self._waiting.append(watcher)
        if not self._call(self._wake_manager):
            _ready([watcher], connected=False)  # no hub thread: the slow poll wakes the gate

    def remove(self, watcher: RunWatcher) -> None:
        with self._lock:
            watchers = self._runs.get(watcher.flow_run_id)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._runs[watcher.flow_run_id]
            self._tokens.pop(watcher.token, None)
            with contextlib.suppress(ValueError):
                self._waiting.remove(watcher)
        self._call(self._wake_manager)

    def _call(self, fn: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the hub's loop is closed
            return False
        return True

    # --- the hub's own thread ------------------------------------------------------

    def _wake_manager(self) -> None:
        if self._want is not None:
            self._want.set()

    def poked(self, data: bytes) -> None:
        with self._lock:
            watcher = self._tokens.get(data.decode("ascii", "replace"))
        if watcher is not None:
            watcher.nudge()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            with self._settings if self._settings is not None else contextlib.nullcontext():
                self._loop.run_until_complete(self._main())
        except Exception as exc:  # the gates' slow poll still wakes them
            _log.warning("approval.wakeup.stopped", error=repr(exc))
        finally:
            self.alive = False
            self._started.set()
            self._loop.close()
            with _hubs_lock:  # the next gate starts a new hub
                for key in [k for k, hub in _hubs.items() if hub is self]:
                    del _hubs[key]

    async def _main(self) -> None:
        self._want = asyncio.Event()
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Poked(self), local_addr=("127.0.0.1", 0)
        )
        self.port = transport.get_extra_info("sockname")[1]
        self._started.set()
        self._want.set()  # gates may have been added already
        await self._manage()

    async def _manage(self) -> None:
        """Keep one subscription that covers every watched run."""
        current: asyncio.Task[None] | None = None
        covered: frozenset[str] = frozenset()
        while True:
            assert self._want is not None
            with self._lock:
                idle = not self._runs
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._want.wait(), _LINGER_S if idle else None)
            self._want.clear()
            await asyncio.sleep(_GATHER_S)  # let gates starting together join this round
            with self._lock:
                wanted = frozenset(self._runs)
                new = list(self._waiting)
                self._waiting.clear()
            if current is not None and current.done():
                current, covered = None, frozenset()  # lost: the gates' slow poll covers it
            if not wanted:
                if current is not None and idle:
                    current.cancel()  # nothing waited for a while: let the server go
                    current, covered = None, frozenset()
                continue
            if current is not None and wanted <= covered:
                _ready(new, connected=True)
                continue
            since = min((w.since for w in new), default=datetime.now(UTC)) - _SKEW
            connected = asyncio.Event()
            task = asyncio.ensure_future(self._listen(wanted, since, connected))
            waiting = asyncio.ensure_future(connected.wait())
            await asyncio.wait({task, waiting}, timeout=10.0, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if connected.is_set():
                if current is not None:
                    # The new subscription covers its runs once the server streams to it.
                    self._loop.call_later(_GRACE_S, current.cancel)
                current, covered = task, wanted
                # Lost for good (Prefect's subscriber retries first): subscribe again.
                task.add_done_callback(lambda _: self._wake_manager())
                _ready(new, connected=True)
                continue
            task.cancel()
            _ready(new, connected=False)
            with self._lock:
                self._waiting.extend(w for w in new if w.flow_run_id in self._runs)
            self._loop.call_later(_RETRY_S, self._wake_manager)

    async def _listen(
        self, runs: frozenset[str], since: datetime, connected: asyncio.Event
    ) -> None:
        event_filter = EventFilter(
            event=EventNameFilter(prefix=["prefect.flow-run."], exclude_name=list(_IGNORED)),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run}" for run in sorted(runs)]),
        )
        try:
            subscriber = get_events_subscriber(filter=event_filter, reconnect_on_clean_close=True)
            # Prefect replays the last minute of matching events on connect; the
            # gates only care about changes after they started watching.
            limit_event_backfill(subscriber, since)
            async with subscriber as sub:
                connected.set()
                async for event in sub:
                    self._dispatch(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the gates' slow poll still wakes them
            _log.warning("approval.wakeup.unavailable", runs=len(runs), error=repr(exc))

    def _dispatch(self, event: Any) -> None:
        if event.event in _IGNORED or event.id in self._seen:
            return
        self._seen[event.id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        run = event.resource.id.removeprefix("prefect.flow-run.")
        with self._lock:
            watchers = list(self._runs.get(run, ()))
        for watcher in watchers:
            watcher.seen(event.occurred, event.event)


def _ready(watchers: list[RunWatcher], *, connected: bool) -> None:
    for watcher in watchers:
        watcher.connected = connected
        watcher.ready.set()


_hubs: dict[tuple[int, str | None], _Hub] = {}
_hubs_lock = threading.Lock()


def _hub() -> _Hub:
    """This process's hub for the current Prefect API (one per API, made on first use)."""
    settings = SettingsContext.get()
    url = settings.settings.api.url if settings is not None else None
    key = (os.getpid(), str(url) if url else None)
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None or not hub.alive:
            hub = _hubs[key] = _Hub(settings)
        return hub


def _reset_after_fork() -> None:
    global _hubs_lock
    _hubs_lock = threading.Lock()  # a parent's thread may have held it at fork


os.register_at_fork(after_in_child=_reset_after_fork)


def poke(address: str | None) -> None:
    """Wake the gate listening at ``address`` (``host:port[/token]``; best effort,
    never raises)."""
    if not address:
        return
    where, _, token = address.partition("/")
    host, _, port = where.rpartition(":")
    with (
        contextlib.suppress(OSError, ValueError),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.sendto(token.encode("ascii") or b"w", (host, int(port)))
