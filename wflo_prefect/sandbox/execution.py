"""Run one command in a running container: stdin in, capped stdout / stderr out, a deadline.

Docker's exec API multiplexes stdout and stderr on one socket in frames of an
8-byte header (stream, 3 zero bytes, big-endian length) and a payload. Reading it
here, in a thread, lets the caller stop waiting at the deadline (and then kill the
container), keep only the first ``limit`` bytes of each stream while still draining
the rest, and notice a container that died under the command (gVisor ends the whole
sandbox when it runs out of memory) instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FRAME_HEADER",
    "LIVENESS_EVERY",
    "ExecOutcome",
    "OutputCapture",
    "container_running",
    "raw_socket",
    "read_exactly",
    "run_exec",
    "wait_for_command",
]

FRAME_HEADER = struct.Struct(">BxxxL")
LIVENESS_EVERY = 1.0


@dataclass
class OutputCapture:
    """The first ``limit`` bytes of a stream, and how many bytes were dropped after."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))


@dataclass(frozen=True)
class ExecOutcome:
    """What one exec produced."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_dropped: int
    stderr_dropped: int
    duration: float
    timed_out: bool
    container_died: bool
    command_seconds: float | None = None  # the command's own time, where the runner timed it


def raw_socket(sock: Any) -> socket.socket:
    """The plain socket under what docker-py returns for a hijacked stream."""
    raw = getattr(sock, "_sock", sock)
    assert isinstance(raw, socket.socket)
    return raw


def read_exactly(raw: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``raw``, or fewer if the stream ends first."""
    parts = []
    while size > 0:
        chunk = raw.recv(min(size, 65536))
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _pump(
    raw: socket.socket,
    out: OutputCapture,
    err: OutputCapture,
    done: threading.Event,
    stop_when_full: bool = False,
) -> None:
    try:
        while not (stop_when_full and (out.dropped or err.dropped)):
            header = read_exactly(raw, FRAME_HEADER.size)
            if len(header) < FRAME_HEADER.size:
                return
            stream, size = FRAME_HEADER.unpack(header)
            remaining = size
            while remaining > 0:
                chunk = raw.recv(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
                (err if stream == 2 else out).add(chunk)
    except OSError:
        return
    finally:
        done.set()


def container_running(client: Any, container_id: str) -> bool:
    """Whether the container still runs (False when it is gone)."""
    try:
        state = client.api.inspect_container(container_id)["State"]
    except Exception:
        return False
    return bool(state.get("Running"))


def wait_for_command(
    done: threading.Event, deadline: float, client: Any, container_id: str
) -> tuple[bool, bool]:
    """Wait until ``done`` is set, the deadline passes or the container stops running.

    Returns ``(timed_out, died)``; the container is looked at every
    :data:`LIVENESS_EVERY` seconds (a command's output stream may never end when its
    container is killed from outside).
    """
    next_check = time.perf_counter() + LIVENESS_EVERY
    while not done.wait(timeout=min(0.25, max(0.0, deadline - time.perf_counter()))):
        now = time.perf_counter()
        if now >= deadline:
            return True, False
        if now >= next_check:
            next_check = now + LIVENESS_EVERY
            if not container_running(client, container_id):
                return False, True
    return False, False


def run_exec(
    client: Any,
    container_id: str,
    command: list[str],
    *,
    stdin: bytes | None,
    timeout: float,
    limit: int,
    environment: dict[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    stop_when_full: bool = False,
) -> ExecOutcome:
    """Run ``command`` in the container; stop waiting after ``timeout`` seconds.

    With ``stop_when_full``, reading stops (and the command loses its output stream)
    as soon as a stream passes ``limit``, instead of draining and dropping the rest.
    """
    started = time.perf_counter()
    exec_id = client.api.exec_create(
        container_id,
        command,
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        environment=environment,
        workdir=workdir,
        user=user or "",
    )["Id"]
    raw = raw_socket(client.api.exec_start(exec_id, socket=True))
    out, err = OutputCapture(limit), OutputCapture(limit)
    done = threading.Event()
    if stdin is not None:
        try:
            raw.sendall(stdin)
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the command exited without reading its input: its outcome says so
    reader = threading.Thread(target=_pump, args=(raw, out, err, done, stop_when_full), daemon=True)
    reader.start()
    timed_out, died = wait_for_command(done, started + timeout, client, container_id)
    if timed_out or died:
        # shutdown (unlike close) wakes the reader blocked in recv.
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
        reader.join(timeout=2)
    duration = time.perf_counter() - started
    exit_code: int | None = None
    if not timed_out:
        try:
            inspected = client.api.exec_inspect(exec_id)
            exit_code = inspected.get("ExitCode") if not inspected.get("Running") else None
        except Exception:  # the container is gone, and its exec records with it
            died = died or not container_running(client, container_id)
        if exit_code is None and died:
            exit_code = 137
    raw.close()
    return ExecOutcome(
        exit_code=exit_code,
        stdout=bytes(out.data),
        stderr=bytes(err.data),
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
        duration=duration,
        timed_out=timed_out,
        container_died=died,
    )
