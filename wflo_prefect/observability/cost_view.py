"""A cost view in the Prefect UI for people who never open a terminal.

After each governed flow run that made LLM calls, wflo updates one markdown artifact
per flow, under the stable key ``wflo-costs-<flow name>``: the flow's spend over the
last 30 days by day, by model and by user, read from the ledger. Prefect keeps every
version; its Artifacts page shows the latest under the key.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.costs import CostEntry
from wflo_prefect.observability.logging import get_logger

__all__ = ["DAYS", "cost_view_key", "cost_view_markdown", "publish_flow_cost_view"]

#: How far back the view looks.
DAYS = 30

_log = get_logger("costs")


def cost_view_key(flow_name: str) -> str:
    """The artifact key of a flow's cost view (Prefect keys: lowercase, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", flow_name.lower()).strip("-") or "flow"
    return f"wflo-costs-{slug}"[:200]


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001')).normalize():f}"


def _group(
    entries: list[CostEntry], key: Callable[[CostEntry], str], title: str, column: str
) -> list[str]:
    groups: dict[str, list[CostEntry]] = defaultdict(list)
    for entry in entries:
        groups[key(entry)].append(entry)
    lines = [
        f"## {title}",
        "",
        f"| {column} | calls | input tokens | output tokens | cost (USD) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, items in sorted(groups.items()):
        lines.append(
            f"| {name} | {len(items)} | {sum(i.input_tokens for i in items)} | "
            f"{sum(i.output_tokens for i in items)} | "
            f"{_money(sum((i.cost_usd for i in items), Decimal(0)))} |"
        )
    return [*lines, ""]


def cost_view_markdown(flow_name: str, entries: list[CostEntry], now: datetime) -> str:
    """The view: totals, then spend by day (UTC), by model and by user."""
    total = sum((e.cost_usd for e in entries), Decimal(0))
    runs = len({e.flow_run_id for e in entries})
    lines = [
        f"# LLM spend of flow `{flow_name}`, last {DAYS} days",
        "",
        f"**${_money(total)}** in {len(entries)} calls over {runs} runs "
        f"(updated {now:%Y-%m-%d %H:%M} UTC).",
        "",
    ]
    lines += _group(entries, lambda e: e.occurred_at.strftime("%Y-%m-%d"), "By day", "day (UTC)")
    lines += _group(entries, lambda e: f"{e.provider}/{e.model}", "By model", "model")
    lines += _group(entries, lambda e: e.user or "(unattributed)", "By user", "user")
    return "\n".join(lines).rstrip() + "\n"


def publish_flow_cost_view(flow_name: str, flow_run_id: str) -> str | None:
    """Update the flow's cost view if the run made LLM calls; the artifact key, or None.

    Never fails the run: a ledger or API error is logged.
    """
    try:
        ledger = get_ledger()
        if not ledger.costs.entries(flow_run_id=flow_run_id):
            return None
        now = datetime.now(UTC)
        entries = ledger.costs.entries(flow_name=flow_name, since=now - timedelta(days=DAYS))
        from wflo_prefect._artifacts import publish_artifact

        key = cost_view_key(flow_name)
        publish_artifact(
            "markdown",
            cost_view_markdown(flow_name, entries, now),
            key=key,
            description=f"LLM spend of flow {flow_name!r} by day, model and user (wflo).",
            flow_run_id=flow_run_id,
        )
        return key
    except Exception as exc:  # the run's outcome must not depend on its cost view
        _log.warning("costs.view_failed", flow_name=flow_name, error=str(exc))
        return None
