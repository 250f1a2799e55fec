"""Talking to a warm container's resident runner over its attach stream.

The same outcome as :func:`~wflo_prefect.sandbox.execution.run_exec` (capped
output, deadline, a container that dies under the command), without a
``docker exec`` per run. See :mod:`wflo_prefect.sandbox.resident_runner`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import time
from typing import Any

from wflo_prefect.sandbox.execution import (
    FRAME_HEADER,
    LIVENESS_EVERY,
    ExecOutcome,
    OutputCapture,
    container_running,
    raw_socket,
)

__all__ = ["AttachedRunner"]


# "<exit code> <seconds>\n" after the marker; anything longer was not written by the runner.
_MARKER_TAIL = 64


class _Stream:
    """One output stream of a job: captured up to the limit, ended by the marker."""

    def __init__(self, limit: int, marker: bytes) -> None:
        self.capture = OutputCapture(limit)
        self.marker = marker
        self.pending = b""
        self.exit_code: int | None = None
        self.seconds: float | None = None
        self.found = False
        self.ended = False

    def _finish(self) -> None:
        if len(self.pending) > _MARKER_TAIL:  # not the runner's line: forged by the code
            self.pending = self.pending[:_MARKER_TAIL] + b"\n"
        if b"\n" in self.pending:
            code, _, seconds = self.pending.split(b"\n", 1)[0].strip().partition(b" ")
            self.exit_code = int(code) if code.lstrip(b"-").isdigit() else None
            with contextlib.suppress(ValueError):
                self.seconds = float(seconds)
            self.ended = True

    def feed(self, chunk: bytes) -> None:
        """Take one chunk of the stream."""
        data = self.pending + chunk
        if self.found:  # the marker's line (with the exit code) is still arriving
            self.pending = data
            self._finish()
            return
        at = data.find(self.marker)
        if at >= 0:
            self.capture.add(data[:at])
            self.found = True
            self.pending = data[at + len(self.marker) :]
            self._finish()
            return
        # Hold back only a tail that could be the start of the marker.
        start = data.rfind(b"\0")
        if start >= 0 and self.marker.startswith(data[start:]):
            self.capture.add(data[:start])
            self.pending = data[start:]
        else:
            self.capture.add(data)
            self.pending = b""

    def flush(self) -> None:
        """Keep what was held back (the job was cut off before its marker)."""
        if not self.found:
            self.capture.add(self.pending)
            self.pending = b""


class AttachedRunner:
    """The attach stream of one container whose main process is the resident runner.

    A run is one write (the job) and reads on the caller's thread until both streams
    carry the job's end marker: no exec, no thread, no extra engine round trip.
    """

    def __init__(self, client: Any, container_id: str) -> None:
        self._client = client
        self._container_id = container_id
        params = {"stdin": 1, "stream": 1, "stdout": 1, "stderr": 1}
        self._sock = raw_socket(client.api.attach_socket(container_id, params=params))
        self._frames = bytearray()  # bytes read past the last whole frame

    def close(self) -> None:
        """Close the stream (the runner then exits on end of input)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None,
        timeout: float,
        limit: int,
        environment: dict[str, str] | None = None,
    ) -> ExecOutcome:
        """Run ``argv`` through the runner; stop waiting after ``timeout`` seconds."""
        started = time.perf_counter()
        token = secrets.token_hex(16)
        marker = f"\0WFLO-END {token} ".encode()
        out, err = _Stream(limit, marker), _Stream(limit, marker)
        job = {
            "argv": argv,
            "stdin": None if stdin is None else base64.b64encode(stdin).decode(),
            "env": environment or {},
            "token": token,
        }
        timed_out = died = False
        try:
            self._sock.sendall((json.dumps(job) + "\n").encode())
            timed_out, died = self._read_until_ended(out, err, started + timeout)
        except OSError:
            died = True
        if timed_out or died:
            self.close()
            out.flush()
            err.flush()
        ended = out.ended and err.ended
        if not ended and not timed_out:
            died = True
        return ExecOutcome(
            exit_code=err.exit_code if ended else (137 if died else None),
            stdout=bytes(out.capture.data),
            stderr=bytes(err.capture.data),
            stdout_dropped=out.capture.dropped,
            stderr_dropped=err.capture.dropped,
            duration=time.perf_counter() - started,
            timed_out=timed_out,
            container_died=died,
            command_seconds=err.seconds if ended else None,
        )

    def _read_until_ended(self, out: _Stream, err: _Stream, deadline: float) -> tuple[bool, bool]:
        """Feed frames to the streams until both end; ``(timed_out, died)`` otherwise.

        A command's stream may never end when its container is killed from outside,
        so the container is looked at every :data:`LIVENESS_EVERY` seconds of silence.
        """
        next_check = time.perf_counter() + LIVENESS_EVERY
        while not (out.ended and err.ended):
            now = time.perf_counter()
            if now >= deadline:
                return True, False
            if now >= next_check:
                next_check = now + LIVENESS_EVERY
                if not container_running(self._client, self._container_id):
                    return False, True
            self._sock.settimeout(min(0.25, deadline - now))
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return False, True
            self._frames += chunk
            self._feed(out, err)
        return False, False

    def _feed(self, out: _Stream, err: _Stream) -> None:
        """Hand every whole frame read so far to its stream."""
        frames, at = self._frames, 0
        while len(frames) - at >= FRAME_HEADER.size:
            stream, size = FRAME_HEADER.unpack_from(frames, at)
            end = at + FRAME_HEADER.size + size
            if len(frames) < end:
                break
            (err if stream == 2 else out).feed(bytes(frames[at + FRAME_HEADER.size : end]))
            at = end
        del frames[:at]
