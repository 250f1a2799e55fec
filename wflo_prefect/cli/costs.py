"""``wflo costs``: spend by flow, deployment, user, model or day; one run's calls; estimates;
comparing providers; ``wflo costs prices``: the price of a model, and refreshing
genai-prices' data."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.cli.costs_compare import compare
from wflo_prefect.errors import InvalidArgumentError, WfloError

if TYPE_CHECKING:
    from wflo_prefect.ledger.costs import CostEntry

__all__ = ["app", "parse_since"]

app = typer.Typer(help="LLM spend recorded in the ledger.", no_args_is_help=True)
prices_app = typer.Typer(
    help="Prices of LLM calls: show one, refresh genai-prices' data.", no_args_is_help=True
)
app.add_typer(prices_app, name="prices")
app.command("compare")(compare)


class GroupBy(StrEnum):
    """What ``wflo costs report`` groups spend by."""

    flow = "flow"
    deployment = "deployment"
    user = "user"
    model = "model"
    day = "day"


_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``2w`` ago, or an ISO date/time (UTC if no zone)."""
    match = _RELATIVE.match(text.strip())
    current = now or datetime.now(UTC)
    if match:
        return current - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            "--since must be a duration like 7d, 24h, 30m, 2w or an ISO date",
            value=text,
            hint="e.g. --since 7d or --since 2026-11-01",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key(entry: CostEntry, by: GroupBy) -> str:
    if by is GroupBy.flow:
        return entry.flow_name or "(no flow)"
    if by is GroupBy.deployment:
        return entry.deployment_id or "(no deployment)"
    if by is GroupBy.user:
        return entry.user or "(unknown user)"
    if by is GroupBy.model:
        return f"{entry.provider}/{entry.model}"
    return entry.occurred_at.astimezone(UTC).strftime("%Y-%m-%d")


@app.command("report")
def report(
    by: GroupBy = typer.Option(
        GroupBy.flow, "--by", help="Group by flow, deployment, user, model or day."
    ),
    since: str = typer.Option("30d", "--since", help="From when: 7d, 24h, 30m, 2w or an ISO date."),
) -> None:
    """Spend, calls and tokens grouped by flow, deployment, user, model or day."""
    from wflo_prefect.ledger import get_ledger

    try:
        start = parse_since(since)
        entries = get_ledger().costs.entries(since=start)
    except WfloError as exc:
        exit_with_error(exc)
    groups: dict[str, list[CostEntry]] = defaultdict(list)
    for entry in entries:
        groups[_key(entry, by)].append(entry)
    table = Table(
        title=f"LLM spend by {by.value} since {start:%Y-%m-%d %H:%M} UTC", title_justify="left"
    )
    for column in (by.value, "calls", "input tokens", "output tokens", "cost (USD)"):
        table.add_column(column, justify="left" if column == by.value else "right")
    for key, items in sorted(groups.items(), key=lambda kv: -sum(e.cost_usd for e in kv[1])):
        table.add_row(
            key,
            str(len(items)),
            str(sum(e.input_tokens for e in items)),
            str(sum(e.output_tokens for e in items)),
            str(sum((e.cost_usd for e in items), Decimal(0))),
        )
    total = sum((e.cost_usd for e in entries), Decimal(0))
    table.add_row("total", str(len(entries)), "", "", str(total), style="bold")
    console.print(table)


@app.command("run")
def run(run_id: str = typer.Argument(..., help="The flow run id (a UUID).")) -> None:
    """Every LLM call of one flow run, with its cost and attribution."""
    from wflo_prefect.ledger import get_ledger

    try:
        flow_run_id = str(uuid.UUID(run_id))
    except ValueError:
        exit_with_error(
            InvalidArgumentError(
                "RUN_ID must be a flow run id (a UUID)",
                value=run_id,
                hint="Copy it from the Prefect UI or `prefect flow-run ls`",
            )
        )
    try:
        entries = get_ledger().costs.entries(flow_run_id=flow_run_id)
    except WfloError as exc:
        exit_with_error(exc)
    if not entries:
        console.print(f"No LLM calls recorded for flow run {flow_run_id}.")
        raise typer.Exit(1)
    table = Table(title=f"LLM calls of flow run {flow_run_id}", title_justify="left")
    for column in (
        "time (UTC)",
        "task run",
        "user",
        "model",
        "in",
        "out",
        "cost (USD)",
        "request id",
    ):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.occurred_at.strftime("%H:%M:%S"),
            (e.task_run_id or "")[:8],
            e.user or "",
            f"{e.provider}/{e.model}",
            str(e.input_tokens),
            str(e.output_tokens),
            str(e.cost_usd),
            e.request_id or "",
        )
    console.print(table)
    total = sum((e.cost_usd for e in entries), Decimal(0))
    console.print(f"total: {len(entries)} calls, ${total}")


@app.command("estimate")
def estimate(
    provider: str = typer.Option(None, "--provider", help="Provider of one call, e.g. openai."),
    model: str = typer.Option(None, "--model", help="Model of one call."),
    input_tokens: int = typer.Option(0, "--input-tokens", min=0),
    output_tokens: int = typer.Option(0, "--output-tokens", min=0),
    flow: str = typer.Option(
        None, "--flow", help="Estimate a run of this flow from its past runs."
    ),
    deployment: str = typer.Option(None, "--deployment", help="...or of this deployment (id)."),
) -> None:
    """What one call would cost, or a flow's/deployment's p50/p95 cost per run."""
    from wflo_prefect.costs.estimates import estimate_run_cost
    from wflo_prefect.costs.metering import estimate_cost

    try:
        if flow or deployment:
            result = estimate_run_cost(flow_name=flow, deployment_id=deployment)
            subject = f"flow {flow}" if flow else f"deployment {deployment}"
            if result.runs == 0:
                console.print(f"No past runs of {subject} with LLM calls in the ledger.")
                raise typer.Exit(1)
            console.print(
                f"{subject}: {result.runs} past runs; p50 ${result.p50_usd}, "
                f"p95 ${result.p95_usd}, max ${result.max_usd} per run"
            )
            return
        if not (provider and model):
            raise InvalidArgumentError(
                "Give --provider and --model (one call), or --flow / --deployment",
                value={"provider": provider, "model": model},
            )
        cost = estimate_cost(
            provider, model, input_tokens=input_tokens, output_tokens=output_tokens
        )
        console.print(f"{provider}/{model}: ${cost}")
    except WfloError as exc:
        exit_with_error(exc)


@prices_app.command("refresh")
def refresh_prices(
    url: str = typer.Option(
        None,
        "--url",
        help=(
            "Download from here (default: PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH_URL, "
            "else genai-prices' own source)."
        ),
    ),
) -> None:
    """Download genai-prices' latest data, validate it and store it for pricing."""
    from wflo_prefect.costs import price_refresh
    from wflo_prefect.costs.settings import get_cost_settings

    try:
        stored = price_refresh.refresh_prices(url)
    except WfloError as exc:
        exit_with_error(exc)
    console.print(
        f"Stored genai-prices data ({stored.providers} providers) from {stored.url} "
        f"in {stored.path}."
    )
    if not get_cost_settings().price_refresh:
        console.print(
            "Calls are priced with it only when PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH=true."
        )


@prices_app.command("show")
def show_price(
    provider: str = typer.Argument(..., help="Provider id, e.g. openai."),
    model: str = typer.Argument(..., help="Model name as the API reports it."),
) -> None:
    """The price of PROVIDER's MODEL per million tokens, and where it comes from."""
    from genai_prices import __version__ as genai_prices_version

    from wflo_prefect.costs.prices import find_price, genai_provider
    from wflo_prefect.costs.shipped_prices import shipped_source

    try:
        price = find_price(provider, model)
    except WfloError as exc:
        exit_with_error(exc)
    if price.custom is not None:
        custom = price.custom
        cached = custom.cached_input_per_mtok
        rates = f"${custom.input_per_mtok}/input MTok, ${custom.output_per_mtok}/output MTok"
        if cached is not None:
            rates += f", ${cached}/cached input MTok"
        if custom.input_audio_per_mtok is not None:
            rates += f", ${custom.input_audio_per_mtok}/input audio MTok"
        console.print(f"{provider}/{model}: {rates}")
        entry = shipped_source(custom) if price.source == "wflo" else None
        source = f"price wflo ships ({entry.source}, as of {entry.as_of})" if entry else None
        console.print(f"source: {source or 'custom price'}")
        return
    if price.data is None:
        console.print(f"{provider}/{model}: no price known; calls are recorded unpriced (cost 0)")
        return
    _, info = price.data.find_provider_model(model, None, genai_provider(provider), None)
    console.print(f"{provider}/{model}: {info.get_prices(datetime.now(UTC))}")
    refreshed = price.refreshed_at
    if refreshed is None:
        console.print(f"source: genai-prices {genai_prices_version} bundled data")
    else:
        console.print(
            f"source: refreshed genai-prices data, fetched {refreshed:%Y-%m-%d %H:%M} UTC"
        )
