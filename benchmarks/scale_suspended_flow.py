"""The deployed flow of bench_scale's suspended phase: suspends at its gate, holding no process.

Deployed from this directory onto the stack's ``process`` work pool; the worker starts
it, it suspends at ``arequire_approval(..., suspend=True)`` (its process exits), and
after the decision the worker starts it again and it passes the gate. It writes the
time it passed the gate to ``<out>/<i>.continued`` (the benchmark runs on one host).
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow

from wflo_prefect import arequire_approval


@flow(name="bench-scale-suspended", persist_result=False)
async def suspended_gate(i: int, out: str) -> int:
    """Wait for approval suspended; record when the flow went on."""
    await arequire_approval(
        "scale gate (suspended)",
        details={"i": i, "suspended": True},
        approvers=["ann"],
        principals="scale-approvers",
        suspend=True,
        timeout=3600,
    )
    Path(out, f"{i}.continued").write_text(repr(time.time()))
    return i
