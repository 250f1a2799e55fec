"""The attached runner's side of the wire: Docker's multiplexed frames, split anywhere."""

from __future__ import annotations

import json
import socket
import struct
import threading
from typing import Any

from wflo_prefect.sandbox.attached import AttachedRunner


class _Api:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def attach_socket(self, container_id: str, params: dict[str, int]) -> socket.socket:
        return self._sock

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        return {"State": {"Running": True}}


class _Client:
    """Stands in for docker-py's client: its attach socket is one end of a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.api = _Api(sock)


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def _engine(sock: socket.socket, chunk: int) -> None:
    """Answer one job like the runner behind Docker would, ``chunk`` bytes per send."""
    job = json.loads(sock.makefile("rb").readline())
    end = f"\0WFLO-END {job['token']} 3 0.000125\n".encode()
    wire = (
        _frame(1, b"hel")
        + _frame(2, b"oops\n")
        + _frame(1, b"lo\n" + end[:5])
        + _frame(1, end[5:])
        + _frame(2, end)
    )
    for at in range(0, len(wire), chunk):
        sock.sendall(wire[at : at + chunk])


def test_frames_and_markers_split_at_any_byte_are_reassembled() -> None:
    """Output, exit code, the command's own time and end markers survive any cut of the stream."""
    for chunk in (1, 2, 3, 7, 4096):
        ours, theirs = socket.socketpair()
        engine = threading.Thread(target=_engine, args=(theirs, chunk))
        engine.start()
        runner = AttachedRunner(_Client(ours), "c0ffee")
        outcome = runner.run(["x"], stdin=None, timeout=30, limit=1024)
        engine.join()
        runner.close()
        theirs.close()
        assert (outcome.stdout, outcome.stderr, outcome.exit_code) == (b"hello\n", b"oops\n", 3)
        assert outcome.command_seconds == 0.000125
        assert not outcome.timed_out
        assert not outcome.container_died


def test_a_stream_that_ends_before_its_marker_is_a_dead_container() -> None:
    """When the engine closes the stream mid-job, the run reports the container died (137)."""
    ours, theirs = socket.socketpair()

    def engine() -> None:
        theirs.makefile("rb").readline()
        theirs.sendall(_frame(1, b"partial"))
        theirs.close()

    thread = threading.Thread(target=engine)
    thread.start()
    outcome = AttachedRunner(_Client(ours), "c0ffee").run(["x"], stdin=None, timeout=30, limit=1024)
    thread.join()
    assert (outcome.stdout, outcome.exit_code, outcome.container_died) == (b"partial", 137, True)


def test_a_forged_marker_line_cannot_make_the_host_buffer_without_bound() -> None:
    """A marker followed by endless bytes (no newline) still ends its stream; nothing piles up."""
    ours, theirs = socket.socketpair()

    def engine() -> None:
        job = json.loads(theirs.makefile("rb").readline())
        end = f"\0WFLO-END {job['token']} 0".encode()
        theirs.sendall(_frame(1, end + b"9" * 1_000_000))
        theirs.sendall(_frame(2, end + b" 0.5\n"))

    thread = threading.Thread(target=engine)
    thread.start()
    runner = AttachedRunner(_Client(ours), "c0ffee")
    outcome = runner.run(["x"], stdin=None, timeout=30, limit=1024)
    thread.join()
    runner.close()
    theirs.close()
    assert not outcome.timed_out
    assert (outcome.stdout, outcome.exit_code) == (b"", 0)
