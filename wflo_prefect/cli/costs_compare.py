"""``wflo costs compare``: the same usage priced on comparable models of other providers."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from wflo_prefect.cli._console import console, exit_with_error
from wflo_prefect.errors import InvalidArgumentError, WfloError

if TYPE_CHECKING:
    from wflo_prefect.costs.compare import Comparison, Usage
    from wflo_prefect.ledger.costs import CostEntry

__all__ = ["compare"]


def compare(
    model: str | None = typer.Argument(
        None, help="The model: provider/model (openai/gpt-4o) or a bare name (gpt-4o)."
    ),
    provider: str | None = typer.Option(None, "--provider", help="Provider of MODEL, e.g. openai."),
    input_tokens: int = typer.Option(0, "--input-tokens", min=0, help="Input tokens (all)."),
    output_tokens: int = typer.Option(0, "--output-tokens", min=0, help="Output tokens."),
    cached_tokens: int = typer.Option(
        0, "--cached-tokens", min=0, help="Of the input tokens, those read from cache."
    ),
    run_id: str | None = typer.Option(
        None, "--run", help="Compare the calls a flow run recorded (its id), model by model."
    ),
    call_id: str | None = typer.Option(
        None, "--call", help="With --run: only this call (its ledger entry id or request id)."
    ),
    comparable_class: str | None = typer.Option(
        None,
        "--class",
        help="Compare with this class: flagship, small, tiny, reasoning or embedding "
        "(default: the model's own).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Price the same usage on comparable models across providers, cheapest first."""
    from wflo_prefect.costs.compare import Usage, compare_costs

    try:
        if run_id is not None:
            groups, skipped = _run_usage(run_id, call_id, model, provider)
        elif call_id is not None:
            raise InvalidArgumentError(
                "--call names a call of a run: give --run RUN_ID with it",
                value=call_id,
                hint="wflo costs compare --run RUN_ID --call ENTRY_ID",
            )
        elif not model:
            raise InvalidArgumentError(
                "Give a MODEL and its usage, or --run RUN_ID",
                value=None,
                hint="e.g. wflo costs compare openai/gpt-4o --input-tokens 10000 "
                "--output-tokens 2000",
            )
        elif input_tokens == 0 and output_tokens == 0:
            raise InvalidArgumentError(
                "Give the usage to compare: --input-tokens and/or --output-tokens",
                value={"input_tokens": 0, "output_tokens": 0},
                hint="e.g. --input-tokens 10000 --output-tokens 2000",
            )
        else:
            usage = Usage(input_tokens, output_tokens, cached_tokens)
            groups, skipped = {(provider, model): [usage]}, 0
        results = [
            compare_costs(p, m, usages, comparable_class=comparable_class)
            for (p, m), usages in groups.items()
        ]
    except WfloError as exc:
        exit_with_error(exc)
    if as_json:
        payload = {"comparisons": [_as_dict(r) for r in results], "skipped_calls": skipped}
        typer.echo(json.dumps(payload, indent=2))
        return
    for result in results:
        _print(result)
    if skipped:
        console.print(
            f"{skipped} call(s) left out: answered from wflo's response cache, or recorded "
            "without token counts (charged their hold)."
        )


def _run_usage(
    run_id: str, call_id: str | None, model: str | None, provider: str | None
) -> tuple[dict[tuple[str | None, str], list[Usage]], int]:
    """The usage of a run's calls by (provider, model), and how many calls were left out."""
    from wflo_prefect.costs.compare import Usage
    from wflo_prefect.ledger import get_ledger

    try:
        flow_run_id = str(uuid.UUID(run_id))
    except ValueError:
        raise InvalidArgumentError(
            "--run must be a flow run id (a UUID)",
            value=run_id,
            hint="Copy it from the Prefect UI, `prefect flow-run ls` or `wflo costs report`",
        ) from None
    entries: list[CostEntry] = get_ledger().costs.entries(flow_run_id=flow_run_id)
    if call_id is not None:
        entries = [e for e in entries if call_id in (e.id, e.request_id)]
        if not entries:
            raise InvalidArgumentError(
                f"No call {call_id} in flow run {flow_run_id}",
                value=call_id,
                hint=f"`wflo costs run {flow_run_id}` lists its calls and request ids",
            )
    if model:
        name = model.split("/", 1)[1] if provider is None and "/" in model else model
        entries = [e for e in entries if name in (e.model, e.requested_model)]
    if not entries:
        raise InvalidArgumentError(
            f"No LLM calls recorded for flow run {flow_run_id}"
            + (f" with model {model}" if model else ""),
            value=run_id,
            hint="`wflo costs report --by model` shows what was recorded",
        )
    groups: dict[tuple[str | None, str], list[Usage]] = defaultdict(list)
    skipped = 0
    for e in entries:
        if e.cached or (e.input_tokens == 0 and e.output_tokens == 0):
            skipped += 1
            continue
        usage = Usage(e.input_tokens, e.output_tokens, e.cached_input_tokens)
        groups[(e.provider, e.model)].append(usage)
    if not groups:
        raise InvalidArgumentError(
            f"None of flow run {flow_run_id}'s calls recorded token counts to compare",
            value=run_id,
            hint="Cached answers and calls charged their hold have no usage to price",
        )
    return groups, skipped


def _money(amount: Decimal) -> str:
    """``amount`` in plain digits, at least to the cent (``0.0041``, ``0.03``, ``12.50``)."""
    text = format(amount.normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def _ratio(cost: Decimal, base: Decimal) -> str:
    if base == 0:
        return "-"
    return f"{(cost / base).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)}x"


def _print(result: Comparison) -> None:
    cached = f" ({result.cached_input_tokens:,} cached)" if result.cached_input_tokens else ""
    calls = f"{result.calls} call" + ("s" if result.calls != 1 else "")
    title = (
        f"{result.provider}/{result.model}, {calls}: {result.input_tokens:,} input{cached}, "
        f"{result.output_tokens:,} output tokens, priced on the {result.comparable_class} class"
    )
    table = Table(title=title, title_justify="left")
    for column in ("#", "model", "cost (USD)", "vs yours", "price"):
        table.add_column(column, justify="right" if column in ("#", "cost (USD)") else "left")
    yours = next(r.cost_usd for r in result.rows if r.yours)
    for rank, row in enumerate(result.rows, 1):
        table.add_row(
            str(rank),
            f"{row.provider}/{row.model}" + (" (yours)" if row.yours else ""),
            _money(row.cost_usd),
            "1.00x" if row.yours else _ratio(row.cost_usd, yours),
            row.source,
            style="bold" if row.yours else None,
        )
    console.print(table)
    if result.unpriced:
        console.print(f"no price here for: {', '.join(result.unpriced)}")


def _as_dict(result: Comparison) -> dict[str, Any]:
    return {
        "provider": result.provider,
        "model": result.model,
        "class": result.comparable_class,
        "calls": result.calls,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cached_input_tokens": result.cached_input_tokens,
        "rows": [
            {
                "provider": r.provider,
                "model": r.model,
                "cost_usd": _money(r.cost_usd),
                "source": r.source,
                "yours": r.yours,
            }
            for r in result.rows
        ],
        "unpriced": list(result.unpriced),
    }
