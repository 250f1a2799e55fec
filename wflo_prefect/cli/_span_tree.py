"""The OpenTelemetry span tree of a run, as ``wflo trace`` prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.tree import Tree

if TYPE_CHECKING:
    from wflo_prefect.ledger.spans import SpanRecord

__all__ = ["span_tree"]

#: Attributes worth a glance, in the order shown.
_SHOWN = (
    ("gen_ai.response.model", "model"),
    ("gen_ai.usage.input_tokens", "in"),
    ("gen_ai.usage.output_tokens", "out"),
    ("gen_ai.usage.cache_read.input_tokens", "cached"),
    ("wflo.cost.usd", "cost $"),
    ("wflo.budget.remaining_usd", "budget left $"),
    ("gen_ai.response.finish_reasons", "finish"),
    ("wflo.call.outcome", "call"),
    ("wflo.approval.status", "approval"),
    ("process.exit.code", "exit"),
    ("wflo.sandbox.oom_killed", "oom"),
    ("wflo.sandbox.timed_out", "timed out"),
    ("wflo.compensation.outcome", "undo"),
    ("error.type", "error"),
)


def _label(span: SpanRecord) -> str:
    millis = (span.end_time - span.start_time).total_seconds() * 1000
    parts = [f"[bold]{span.name}[/bold]", f"{millis:.1f} ms"]
    if span.status == "ERROR":
        parts.append(f"[red]ERROR[/red] {span.status_message or ''}".rstrip())
    for key, short in _SHOWN:
        value = span.attributes.get(key)
        if value in (None, False):
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        parts.append(f"{short}={value}")
    return "  ".join(parts)


def _event_label(event: dict[str, Any]) -> str:
    attributes = event.get("attributes", {})
    if event.get("name") == "wflo.policy.evaluated":
        verdict = "matched" if attributes.get("wflo.policy.matched") else "not matched"
        actions = ",".join(attributes.get("wflo.policy.actions") or [])
        return (
            f"policy {attributes.get('wflo.policy.name')} at {attributes.get('wflo.policy.point')}"
            f": {verdict}" + (f" -> {actions}" if actions else "")
        )
    return str(event.get("name"))


def span_tree(spans: list[SpanRecord], title: str) -> Tree:
    """Spans nested by parent id (spans whose parent is not stored are roots)."""
    tree = Tree(title)
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)

    def add(node: Tree, span: SpanRecord) -> None:
        branch = node.add(_label(span))
        for event in span.events:
            branch.add(f"[dim]event[/dim] {_event_label(event)}")
        for child in children.get(span.span_id, []):
            add(branch, child)

    for root in children.get(None, []):
        add(tree, root)
    return tree
