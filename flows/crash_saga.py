"""A payment saga whose worker dies mid-run: the demo's crash, recovered by nobody typing.

    python -m flows.crash_saga WORKDIR

Charges two cards (each charge registers its refund as a compensation), then the
process SIGKILLs itself before the order ships, as a worker that runs out of
memory would. The refunds are written to ``WORKDIR/refunds.jsonl`` when they run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from wflo_prefect import compensate, governed_flow, governed_task


def refund(workdir: str, card: str, amount: int) -> None:
    """The compensation: refund one charge (here, a line in a file)."""
    with (Path(workdir) / "refunds.jsonl").open("a") as fh:
        fh.write(json.dumps({"card": card, "amount": amount}) + "\n")


@governed_task
def charge(workdir: str, card: str, amount: int) -> None:
    """Charge a card and, right away, register how to refund it."""
    compensate(refund, workdir, card, amount)


@governed_flow(name="payment-saga")
def payment_saga(workdir: str) -> None:
    """Two charges, then the worker dies before shipping."""
    from prefect.runtime import flow_run

    print(flow_run.id, flush=True)
    charge(workdir, "card-ada", 30)
    charge(workdir, "card-bob", 12)
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies: no hook, no traceback


if __name__ == "__main__":
    # Run the module's own copy, so the refund handler is importable as flows.crash_saga:refund.
    from flows.crash_saga import payment_saga as saga

    saga(sys.argv[1])
