"""A flow that waits at an approval gate, run as its own process by the tests (then killed).

python approval_gate_worker.py ACTION TIMEOUT_SECONDS
"""

from __future__ import annotations

import sys

from prefect import flow

from wflo_prefect import Approvers, WebhookApprovalChannel, require_approval
from wflo_prefect.approvals import EscalationTier, Principal, hash_api_key


@flow
def gated(action: str, timeout: float, hook: str | None = None) -> object:
    """Wait for approval of ``action``."""
    tiers = []
    if hook:
        channel = WebhookApprovalChannel.load(hook)
        tiers = [EscalationTier(approvers=["carol"], timeout=timeout, notify=[channel])]
    bob = Principal(name="bob", api_key_hashes=[hash_api_key("key-bob")])
    directory = Approvers(users=[bob, Principal(name="carol")])
    return require_approval(
        action,
        approvers=["bob"],
        principals=directory,
        timeout=timeout,
        on_timeout="reject",
        escalation=tiers,
    )


if __name__ == "__main__":
    gated(sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
