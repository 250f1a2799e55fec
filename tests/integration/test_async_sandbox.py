"""sandbox= on an async governed task: the container runs while the event loop goes on."""

from __future__ import annotations

import asyncio

import pytest

from wflo_prefect import governed_flow, governed_task
from wflo_prefect.ledger import Ledger
from wflo_prefect.sandbox import SandboxConfig

pytestmark = pytest.mark.docker


@governed_task(sandbox=SandboxConfig(memory_limit="128m", timeout_seconds=60))
async def slow_sum(xs: list[int]) -> int:
    """Takes a while in the container."""
    import time

    time.sleep(1.0)
    return sum(xs)


def test_event_loop_runs_while_the_sandboxed_task_runs(ledger: Ledger) -> None:
    """A heartbeat keeps ticking during the container's run (the Docker SDK is off the loop)."""

    @governed_flow
    async def f() -> tuple[int, int]:
        done = asyncio.Event()
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.05)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        result = await slow_sum([1, 2, 3])
        done.set()
        await beat
        return result, ticks

    result, ticks = asyncio.run(f())
    assert result == 6
    # The task sleeps 1 s in the container: a blocked loop would tick at most once.
    assert ticks >= 10
