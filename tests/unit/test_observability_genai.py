"""Reading finish reasons from each provider's response shape; provider names; view keys."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from wflo_prefect.ledger.costs import CostEntry
from wflo_prefect.observability.cost_view import cost_view_key, cost_view_markdown
from wflo_prefect.observability.genai import PROVIDER_NAMES, finish_reasons_of


@pytest.mark.parametrize(
    ("response", "reasons"),
    [
        ({"choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}]}, ["stop", "length"]),
        ({"type": "message", "stop_reason": "end_turn"}, ["end_turn"]),
        ({"candidates": [{"finishReason": "STOP"}]}, ["STOP"]),
        ({"finish_reason": "COMPLETE"}, ["COMPLETE"]),
        ({"object": "response", "status": "completed"}, ["completed"]),
        ({"choices": []}, []),
    ],
    ids=["openai-chat", "anthropic", "google", "cohere", "openai-responses", "none"],
)
def test_finish_reasons_are_read_from_each_shape(
    response: dict[str, Any], reasons: list[str]
) -> None:
    """OpenAI chat/responses, Anthropic, Google and Cohere put them in different places."""
    assert finish_reasons_of(response) == reasons


def test_provider_names_are_the_conventions_well_known_values() -> None:
    """gen_ai.provider.name uses the conventions' values, e.g. gcp.gen_ai for Google."""
    assert PROVIDER_NAMES["google"] == "gcp.gen_ai"
    assert PROVIDER_NAMES["google-vertex"] == "gcp.vertex_ai"  # a Vertex AI client's calls
    assert PROVIDER_NAMES["azure"] == "azure.ai.openai"
    assert PROVIDER_NAMES["bedrock"] == "aws.bedrock"


def test_cost_view_key_is_a_valid_prefect_key_and_stable() -> None:
    """Lowercase letters, digits and dashes only; the same flow always gets the same key."""
    assert cost_view_key("Support Agent (EU)") == "wflo-costs-support-agent-eu"
    assert cost_view_key("Support Agent (EU)") == cost_view_key("Support Agent (EU)")
    assert cost_view_key("***") == "wflo-costs-flow"


def test_cost_view_groups_by_day_model_and_user() -> None:
    """Unattributed calls are shown as such; money is exact to the micro-dollar."""
    at = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)

    def entry(model: str, user: str | None, cost: str, day: int) -> CostEntry:
        return CostEntry(
            id=f"{model}-{day}",
            occurred_at=at.replace(day=day),
            flow_run_id=f"run-{day}",
            provider="openai",
            model=model,
            user=user,
            input_tokens=10,
            output_tokens=5,
            cost_usd=Decimal(cost),
        )

    text = cost_view_markdown(
        "agent",
        [entry("gpt-4o", "ann", "0.5", 27), entry("gpt-4o-mini", None, "0.0000015", 28)],
        at,
    )
    assert "**$0.500002** in 2 calls over 2 runs" in text
    assert "| 2026-11-27 | 1 | 10 | 5 | 0.5 |" in text
    assert "| openai/gpt-4o-mini | 1 | 10 | 5 | 0.000002 |" in text
    assert "| (unattributed) | 1 |" in text
    assert "| ann | 1 |" in text
