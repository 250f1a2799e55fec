"""A governed flow a Prefect runner executes in a subprocess (for the trace-propagation test)."""

from __future__ import annotations

from wflo_prefect import governed_flow, governed_task


@governed_task(name="child-step")
def child_step(n: int) -> int:
    return n + 1


@governed_flow(name="traced-child")
def traced_child(n: int = 1) -> int:
    return child_step(n)
