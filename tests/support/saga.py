"""A saga for the crash-recovery tests: three side effects, killed at a chosen boundary.

``python -m tests.support.saga KILL_AT TAG`` runs the governed flow; after step
``KILL_AT`` (0: before the first) the process SIGKILLs itself, like a worker that
dies. It prints the flow run id first. Each step registers an undo that writes
``TAG:step-N`` to the undo journal (tests.support.undo).
"""

from __future__ import annotations

import os
import signal
import sys

from tests.support import undo
from wflo_prefect import compensate, governed_flow, governed_task


@governed_task
def side_effect(tag: str, n: int) -> None:
    compensate(undo.undo, f"{tag}:step-{n}")


@governed_flow(name="crash-saga")
def saga(kill_at: int, tag: str, steps: int = 3) -> None:
    from prefect.runtime import flow_run

    print(flow_run.id, flush=True)
    for n in range(1, steps + 1):
        if kill_at == n - 1:
            os.kill(os.getpid(), signal.SIGKILL)
        side_effect(tag, n)
    if kill_at == steps:
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    saga(int(sys.argv[1]), sys.argv[2])
