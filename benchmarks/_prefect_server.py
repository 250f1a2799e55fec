"""A started `prefect server` for benchmarks: the baseline a user runs against.

Inside ``prefect_test_harness`` a plain task costs 27-84 ms and hides any overhead;
against a started server it costs ~8-10 ms here. Benchmarks that compare wflo with
plain Prefect start one with :func:`started_server` before importing Prefect, and
point ``PREFECT_API_URL`` at it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_console() -> None:
    """Prefect's console logs at WARNING; run logs still go to the API at INFO, as a user's do."""
    for name in ("", "_FLOW_RUNS", "_TASK_RUNS"):
        os.environ[f"PREFECT_LOGGING_HANDLERS_CONSOLE{name}_LEVEL"] = "WARNING"


@contextlib.contextmanager
def started_server(timeout: float = 180.0, cpus: set[int] | None = None) -> Iterator[str]:
    """`prefect server start` on a free loopback port with its own home; yields the API URL.

    ``cpus``: the CPUs the server (and every process it starts) may run on.

    Sets ``PREFECT_API_URL`` (and a private ``PREFECT_HOME``) in this process's
    environment, so import Prefect only inside the block.
    """
    home = tempfile.mkdtemp(prefix="wflo-bench-server-")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_API_URL": api,
    }
    log = Path(home) / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("prefect")),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"prefect server did not start; see {log}")
            time.sleep(0.3)
        os.environ["PREFECT_API_URL"] = api
        os.environ["PREFECT_HOME"] = home
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        yield api
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
