"""`wflo costs compare`: a usage, or a recorded run's calls, priced across providers."""

from __future__ import annotations

import json
from decimal import Decimal

from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from typer.testing import CliRunner

from wflo_prefect import governed_flow, record_llm_usage
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger

runner = CliRunner(env={"COLUMNS": "200"})  # wide enough that tables are not cut


@governed_flow
def two_models() -> None:
    record_llm_usage("openai", "gpt-4o-mini", 20_000, 1_000, 5_000)
    record_llm_usage("openai", "gpt-4o-mini", 10_000, 500)
    record_llm_usage("anthropic", "claude-sonnet-4-5", 3_000, 200)


def test_compare_prints_the_class_cheapest_first(ledger: Ledger) -> None:
    """The table lists the model's class, cheapest first, the given model marked."""
    result = runner.invoke(
        app,
        ["costs", "compare", "openai/gpt-4o", "--input-tokens", "10000", "--output-tokens", "2000"],
    )
    assert result.exit_code == 0, result.output
    assert "priced on the flagship class" in result.output
    lines = [line for line in result.output.splitlines() if "/" in line and "│" in line]
    assert "deepseek/deepseek-chat" in lines[0]  # the cheapest flagship here
    assert sum("openai/gpt-4o (yours)" in line for line in lines) == 1
    assert "anthropic/claude-sonnet-4-5" in result.output


def test_compare_json_figures_match_genai_prices(ledger: Ledger) -> None:
    """--json gives every row's cost (a decimal string); checked against genai-prices."""
    result = runner.invoke(
        app,
        [
            "costs",
            "compare",
            "gpt-4o-mini",
            "--input-tokens",
            "120000",
            "--output-tokens",
            "3000",
            "--cached-tokens",
            "20000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    [comparison] = json.loads(result.output)["comparisons"]
    assert (comparison["provider"], comparison["class"]) == ("openai", "small")
    rows = {(r["provider"], r["model"]): r for r in comparison["rows"]}
    usage = GenaiUsage(input_tokens=120_000, output_tokens=3_000, cache_read_tokens=20_000)
    flash = calc_price(usage, "gemini-2.5-flash", provider_id="google").total_price
    assert Decimal(rows[("google", "gemini-2.5-flash")]["cost_usd"]) == flash
    # By hand: 100k at $0.30, 20k cached at $0.03, 3k out at $2.50 per million.
    assert flash == Decimal("0.0381")
    costs = [Decimal(r["cost_usd"]) for r in comparison["rows"]]
    assert costs == sorted(costs)
    assert rows[("openai", "gpt-4o-mini")]["yours"] is True


def test_compare_a_recorded_run_model_by_model(ledger: Ledger) -> None:
    """--run prices each model's calls of the run on its class; --call picks one call."""
    state = two_models(return_state=True)
    run_id = str(state.state_details.flow_run_id)
    result = runner.invoke(app, ["costs", "compare", "--run", run_id, "--json"])
    assert result.exit_code == 0, result.output
    comparisons = json.loads(result.output)["comparisons"]
    by_model = {c["model"]: c for c in comparisons}
    assert by_model["gpt-4o-mini"]["calls"] == 2
    assert by_model["gpt-4o-mini"]["input_tokens"] == 30_000
    assert by_model["claude-sonnet-4-5"]["class"] == "flagship"
    mine = next(r for r in by_model["gpt-4o-mini"]["rows"] if r["yours"])
    recorded = sum(e.cost_usd for e in ledger.costs.entries() if e.model == "gpt-4o-mini")
    assert Decimal(mine["cost_usd"]) == recorded
    entry = ledger.costs.entries()[-1]
    one = runner.invoke(app, ["costs", "compare", "--run", run_id, "--call", entry.id])
    assert one.exit_code == 0, one.output
    assert "anthropic/claude-sonnet-4-5, 1 call: 3,000 input" in one.output


def test_compare_refuses_bad_input(ledger: Ledger) -> None:
    """An unknown model, a model in no class, no usage and a bad run id: a clear error."""
    cases = [
        (["openai/gpt-9o", "--input-tokens", "10"], "gpt-9o"),
        (["gpt-3.5-turbo", "--input-tokens", "10"], "--class"),
        (["openai/gpt-4o"], "--input-tokens"),
        (["--run", "not-a-uuid"], "not-a-uuid"),
        (["gpt-4o", "--input-tokens", "10", "--class", "huge"], "huge"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, ["costs", "compare", *args])
        assert result.exit_code == 1, (args, result.output)
        assert "error:" in result.output
        assert expected in result.output
