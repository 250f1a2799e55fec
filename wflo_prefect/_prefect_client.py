"""One Prefect API client per process and API, shared by all of wflo's calls.

Building Prefect's sync client costs about 30 ms of CPU (it loads an SSL context
from the CA bundle and opens a fresh connection pool), more than the call it is
built for. wflo calls the API from gates (pause, read the run, read the answer,
resume), hooks (a flow's cost view) and watchdogs, in many threads at once, so
:func:`prefect_client` hands out one client per process and API settings, whose
HTTP connections stay open between calls. Prefect's own client of the current
run is used when there is one. The client is thread-safe (httpx's is).

Being Prefect's own client, it behaves as Prefect's does within a run: at most 16
connections at once per process, and once it has reached the server, a call that
cannot connect is retried with backoff (``PREFECT_CLIENT_MAX_RETRIES``, about a
minute in all by default) before it fails, so a gate, hook or watchdog rides out a
server restart instead of failing at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.context import SyncClientContext
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

__all__ = ["prefect_client"]

_clients: dict[tuple[Any, ...], SyncPrefectClient] = {}
_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a parent's thread may have held it at fork


os.register_at_fork(after_in_child=_reset_after_fork)


@contextmanager
def prefect_client() -> Iterator[SyncPrefectClient]:
    """The sync client for the current Prefect API settings, made once per process.

    Used like ``get_client(sync_client=True)`` (``with prefect_client() as client``);
    leaving the block does not close it.
    """
    context = SyncClientContext.get()
    if context is not None and context.client is not None:
        yield context.client
        return
    key = (
        os.getpid(),
        PREFECT_API_URL.value(),
        PREFECT_API_KEY.value(),
        PREFECT_API_AUTH_STRING.value(),
    )
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = get_client(sync_client=True)
            client.__enter__()  # stays open for the process; httpx closes it at exit
            _clients[key] = client
    yield client
