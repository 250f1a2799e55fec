"""The flow the browser tests answer: it waits at a gate, then prints the decision."""

from __future__ import annotations

from prefect import flow

from wflo_prefect import ApprovalRejected, Approvers, require_approval
from wflo_prefect.approvals import Principal, hash_api_key


@flow(name="e2e-approval")
def ship() -> None:
    """Wait for alice or bob to answer in the Prefect UI."""
    directory = Approvers(
        users=[
            Principal(name="alice", email="alice@example.com", api_key_hashes=[hash_api_key("k")]),
            Principal(name="bob", email="bob@example.com", api_key_hashes=[hash_api_key("j")]),
        ]
    )
    try:
        decision = require_approval(
            "ship release",
            details={"version": "2.0.0", "environment": "production"},
            approvers=["alice", "bob"],
            principals=directory,
            timeout=3600,
        )
    except ApprovalRejected as exc:
        print("DECISION", exc.decision.model_dump_json(), flush=True)
        raise
    print("DECISION", decision.model_dump_json(), flush=True)


if __name__ == "__main__":
    ship()
