"""What a user sees on a governed flow run: a table of its LLM calls and a summary."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.costs import CostEntry
from wflo_prefect.observability.logging import get_logger

__all__ = ["cost_summary_markdown", "cost_table", "publish_run_costs"]

_log = get_logger("costs")


def cost_table(entries: list[CostEntry]) -> list[dict[str, str]]:
    """One row per call, then a totals row."""
    rows = [
        {
            "time": e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            "task_run": e.task_run_id or "",
            "provider": e.provider,
            "model": e.model,
            "input_tokens": str(e.input_tokens),
            "output_tokens": str(e.output_tokens),
            "cached_input_tokens": str(e.cached_input_tokens),
            "cost_usd": str(e.cost_usd),
            "latency_ms": f"{e.latency_ms:.1f}" if e.latency_ms is not None else "",
            "request_id": e.request_id or "",
        }
        for e in entries
    ]
    rows.append(
        {
            "time": "total",
            "task_run": "",
            "provider": "",
            "model": f"{len(entries)} calls",
            "input_tokens": str(sum(e.input_tokens for e in entries)),
            "output_tokens": str(sum(e.output_tokens for e in entries)),
            "cached_input_tokens": str(sum(e.cached_input_tokens for e in entries)),
            "cost_usd": str(sum((e.cost_usd for e in entries), Decimal(0))),
            "latency_ms": "",
            "request_id": "",
        }
    )
    return rows


def cost_summary_markdown(entries: list[CostEntry]) -> str:
    """A short markdown summary: total, and spend by model."""
    total = sum((e.cost_usd for e in entries), Decimal(0))
    by_model: dict[str, list[CostEntry]] = defaultdict(list)
    for entry in entries:
        by_model[f"{entry.provider}/{entry.model}"].append(entry)
    lines = [
        "# LLM cost of this run",
        "",
        f"**{len(entries)} calls, ${total} in total.**",
        "",
        "| model | calls | input tokens | output tokens | cost (USD) |",
        "|---|---:|---:|---:|---:|",
    ]
    for model, items in sorted(by_model.items()):
        lines.append(
            f"| {model} | {len(items)} | {sum(i.input_tokens for i in items)} | "
            f"{sum(i.output_tokens for i in items)} | "
            f"{sum((i.cost_usd for i in items), Decimal(0))} |"
        )
    return "\n".join(lines)


def publish_run_costs(flow_run_id: str) -> list[CostEntry]:
    """Attach the cost table and summary artifacts to the current flow run."""
    from wflo_prefect._artifacts import publish_artifact

    entries = get_ledger().costs.entries(flow_run_id=flow_run_id)
    try:
        publish_artifact(
            "table",
            cost_table(entries),
            key="wflo-llm-costs",
            description="LLM calls of this run (wflo cost governance).",
            flow_run_id=flow_run_id,
        )
        publish_artifact(
            "markdown",
            cost_summary_markdown(entries),
            key="wflo-llm-cost-summary",
            description="LLM cost summary (wflo cost governance).",
            flow_run_id=flow_run_id,
        )
    except Exception as exc:  # the run's outcome must not depend on its artifact.
        _log.warning("costs.artifact_failed", error=str(exc))
    return entries
