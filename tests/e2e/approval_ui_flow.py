"""The flow the browser test approves: it waits at a gate, then prints the decision."""

from __future__ import annotations

from prefect import flow

from wflo_prefect import Approvers, require_approval
from wflo_prefect.approvals import Principal, hash_api_key


@flow(name="e2e-approval")
def ship() -> None:
    """Wait for alice to approve the release in the Prefect UI."""
    directory = Approvers(users=[Principal(name="alice", api_key_hashes=[hash_api_key("k")])])
    decision = require_approval(
        "ship release",
        details={"version": "2.0.0"},
        approvers=["alice"],
        principals=directory,
        timeout=300,
    )
    print("DECISION", decision.model_dump_json(), flush=True)


if __name__ == "__main__":
    ship()
