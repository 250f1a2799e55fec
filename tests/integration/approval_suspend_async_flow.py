"""A deployed async flow that suspends at its gate; served by the async suspend test.

python approval_suspend_async_flow.py   # serves `suspended-async-release/suspend-async-test`
"""

from __future__ import annotations

import asyncio

from prefect import flow

from wflo_prefect import arequire_approval


@flow(name="suspended-async-release")
async def suspended_async_release() -> bool:
    """Suspend (no process held) until someone decides; then report the decision."""
    await asyncio.sleep(0)
    decision = await arequire_approval(
        "publish async release", details={"v": "4"}, suspend=True, timeout=300
    )
    return decision.approved


if __name__ == "__main__":
    suspended_async_release.serve(name="suspend-async-test")
