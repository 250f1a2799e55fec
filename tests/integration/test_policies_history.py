"""`estimated_cost` at the run point, and policy-set blocks, against the real Prefect API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wflo_prefect import (
    Halt,
    Policy,
    PolicyViolation,
    WfloPolicySet,
    governed_flow,
    record_llm_usage,
    set_global_policies,
)
from wflo_prefect.ledger import Ledger


def test_estimated_cost_at_run_is_the_median_of_the_flows_previous_runs(ledger: Ledger) -> None:
    """A flow whose past runs cost money is halted by `estimated_cost > X` before it starts."""
    expensive = Policy(
        name="expensive-flow",
        condition="estimated_cost > 0.01",
        actions=[Halt(reason="this flow usually costs too much")],
    )
    spend = {"go": True}

    @governed_flow(name="history-agent")
    def agent() -> str:
        if spend["go"]:
            record_llm_usage("openai", "gpt-4o", input_tokens=10_000, output_tokens=2_000)
        return "ran"

    @governed_flow(name="history-agent", policies=[expensive])
    def guarded() -> str:
        return "ran"

    assert guarded() == "ran"  # no history yet: estimated_cost is 0
    assert agent() == "ran"
    assert agent() == "ran"
    state = guarded(return_state=True)
    with pytest.raises(PolicyViolation, match="usually costs too much"):
        state.result()
    [decision] = ledger.policies.for_flow_run(str(state.state_details.flow_run_id))
    assert Decimal(decision.context["estimated_cost"]) > Decimal("0.01")


def test_a_saved_policy_set_governs_runs_and_applies_globally(ledger: Ledger) -> None:
    """A WfloPolicySet saved to Prefect and loaded back halts runs via policies= and globally."""
    WfloPolicySet(
        policies=[Policy(name="no-deploys", condition="operation == 'deploy'", actions=[Halt()])]
    ).save("release-rules", overwrite=True)
    loaded = WfloPolicySet.load("release-rules")
    assert [p.name for p in loaded.policies] == ["no-deploys"]

    @governed_flow(operation="deploy", policies=[loaded])
    def release() -> str:
        return "shipped"

    assert release(return_state=True).name == "PolicyViolation"

    @governed_flow(operation="deploy")
    def unguarded_release() -> str:
        return "shipped"

    set_global_policies(loaded)
    try:
        assert unguarded_release(return_state=True).name == "PolicyViolation"
    finally:
        set_global_policies([])
    assert unguarded_release() == "shipped"
