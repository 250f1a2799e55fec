"""The resident runner: the main process of a warm sandbox container.

Standard library only: its source is what warm containers run (``python3 -u -c``).
It reads one JSON job per line on stdin (argv, base64 stdin, environment, an end
token), runs the command as a child, copies the child's stdout and stderr to its
own, and then writes ``\\0WFLO-END <token> <exit code> <seconds>\\n`` on both (the
seconds are the command's own time, start to exit, as seen in the container). The host
talks to it over the container's attach stream, which costs a few milliseconds,
instead of a ``docker exec``, which costs tens.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from typing import IO


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    for chunk in iter(lambda: source.read1(65536), b""):  # type: ignore[attr-defined]
        target.write(chunk)
        target.flush()


def run_job(job: dict[str, object]) -> int:
    """Run one job; return the child's exit code (negative signal numbers as 128 + n)."""
    data = job.get("stdin")
    env = {**os.environ, **dict(job.get("env") or {})}  # type: ignore[call-overload]
    try:
        child = subprocess.Popen(
            list(job["argv"]),  # type: ignore[call-overload]
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        sys.stderr.buffer.write(f"{exc}\n".encode())
        return 127
    pumps = [
        threading.Thread(target=_copy, args=(child.stdout, sys.stdout.buffer)),
        threading.Thread(target=_copy, args=(child.stderr, sys.stderr.buffer)),
    ]
    for pump in pumps:
        pump.start()
    if data is not None and child.stdin is not None:
        try:
            child.stdin.write(base64.b64decode(str(data)))
        except BrokenPipeError:
            pass
        finally:
            child.stdin.close()
    code = child.wait()
    for pump in pumps:
        pump.join()
    return 128 - code if code < 0 else code


def main() -> None:
    """Serve jobs until stdin closes."""
    for line in sys.stdin:
        job = json.loads(line)
        started = time.perf_counter()
        code = run_job(job)
        end = f"\0WFLO-END {job['token']} {code} {time.perf_counter() - started:.6f}\n"
        # One marker per stream: Docker relays the two pipes independently, so the
        # host knows a stream is complete only when its own marker has arrived.
        sys.stdout.buffer.write(end.encode())
        sys.stdout.flush()
        sys.stderr.buffer.write(end.encode())
        sys.stderr.flush()


if __name__ == "__main__":
    main()
