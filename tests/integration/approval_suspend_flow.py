"""A deployed flow that suspends at its gate; served by the suspend test.

python approval_suspend_flow.py      # serves the deployment `suspended-release/suspend-test`
"""

from __future__ import annotations

from prefect import flow

from wflo_prefect import require_approval


@flow(name="suspended-release")
def suspended_release() -> bool:
    """Suspend (no process held) until someone decides; then report the decision."""
    decision = require_approval("publish release", details={"v": "3"}, suspend=True, timeout=300)
    return decision.approved


if __name__ == "__main__":
    suspended_release.serve(name="suspend-test")
