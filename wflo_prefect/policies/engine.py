"""Evaluate the active policies at a point and carry out what the matches ask for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.models import utcnow
from wflo_prefect.observability.correlation import current_correlation
from wflo_prefect.observability.logging import get_logger
from wflo_prefect.observability.notify import send_notification
from wflo_prefect.observability.spans import record_policy_decisions
from wflo_prefect.policies.actions import AuditLog, Halt, Notify, RequireApproval
from wflo_prefect.policies.condition import CompiledCondition, cel_context
from wflo_prefect.policies.context import active_policies, build_context
from wflo_prefect.policies.errors import PolicyViolation
from wflo_prefect.policies.policy import Point, Policy
from wflo_prefect.policies.targets import parse_target

__all__ = [
    "PolicyOutcome",
    "carry_out",
    "enforce_policies",
    "evaluate_policies",
    "record_outcome",
]

_log = get_logger("policies")


@dataclass
class PolicyOutcome:
    """Which policies matched at one evaluation, and in what context."""

    point: Point
    context: dict[str, Any]
    matched: list[Policy] = field(default_factory=list)
    evaluated: list[tuple[Policy, bool]] = field(default_factory=list)


def evaluate_policies(
    point: Point,
    policies: Sequence[Policy] | None = None,
    *,
    operation: str | None = None,
    kind: str = "",
    name: str = "",
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    describe: bool = False,
) -> PolicyOutcome:
    """Evaluate ``policies`` (default: the active ones) at ``point``; take no action.

    The context is built once, converted to CEL values once (only the names the
    conditions use), and every condition is evaluated against it. ``describe=True``
    fills the outcome's context with every cheap name, for the audit trail.
    """
    chosen: list[tuple[Policy, CompiledCondition]] = []
    needed: set[str] = set()
    for policy in active_policies() if policies is None else policies:
        if point in policy.on:
            compiled = policy.compiled
            chosen.append((policy, compiled))
            needed |= compiled.variables
    context = build_context(
        point,
        needed=frozenset(needed),
        operation=operation,
        kind=kind,
        name=name,
        params=params,
        extra=extra,
        describe=describe,
    )
    outcome = PolicyOutcome(point=point, context=context)
    values = cel_context(context, needed)
    evaluated, matched = outcome.evaluated, outcome.matched
    for policy, compiled in chosen:
        hit = compiled.evaluate(values)
        evaluated.append((policy, hit))
        if hit:
            matched.append(policy)
            if policy.stop:
                break
    return outcome


def record_outcome(outcome: PolicyOutcome) -> None:
    """Store every decision of ``outcome`` in the ledger (matched or not)."""
    ids = current_correlation()
    now = utcnow()
    shown = {k: v for k, v in outcome.context.items() if v not in ("", [], {}, 0, 0.0)}
    get_ledger().policies.record_many(
        [
            {
                "occurred_at": now,
                "policy_name": policy.name,
                "position": position,
                "condition": policy.condition,
                "matched": hit,
                "actions": [a.kind for a in policy.actions] if hit else [],
                "flow_run_id": ids.flow_run_id,
                "task_run_id": ids.task_run_id,
                "context": _jsonable(shown),
            }
            for position, (policy, hit) in enumerate(outcome.evaluated)
        ]
    )


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def _notify(action: Notify, policy: Policy, outcome: PolicyOutcome) -> str:
    body = action.message or (
        f"wflo policy {policy.name!r} matched at {outcome.point} "
        f"({outcome.context.get('kind')} {outcome.context.get('name')!r}, "
        f"flow run {outcome.context.get('flow_run_id') or '-'})"
    )
    target = action.target
    if isinstance(target, str):
        target = parse_target(target) or target
    return send_notification(target, subject=f"wflo policy: {policy.name}", body=body)


def _emit_event(policy: Policy, outcome: PolicyOutcome) -> None:
    from prefect.events import emit_event

    flow_run_id = outcome.context.get("flow_run_id")
    related = (
        [
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        ]
        if flow_run_id
        else []
    )
    emit_event(
        event="wflo.policy.matched",
        resource={
            "prefect.resource.id": f"wflo.policy.{policy.name}",
            "prefect.resource.name": policy.name,
        },
        related=related,
        payload={
            "point": outcome.point,
            "condition": policy.condition,
            "actions": [a.kind for a in policy.actions],
        },
    )


def enforce_policies(
    point: Point,
    policies: Sequence[Policy] | None = None,
    *,
    operation: str | None = None,
    kind: str = "",
    name: str = "",
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> PolicyOutcome:
    """Evaluate, record every decision, then audit, notify, halt or ask for approval."""
    candidates = active_policies() if policies is None else tuple(policies)
    if not any(point in p.on for p in candidates):
        return PolicyOutcome(point=point, context={})  # the common case: nothing to check
    outcome = evaluate_policies(
        point,
        candidates,
        operation=operation,
        kind=kind,
        name=name,
        params=params,
        extra=extra,
        describe=True,
    )
    record_outcome(outcome)
    record_policy_decisions(outcome)
    halts, approvals = carry_out(outcome)
    ledger = get_ledger()
    ids = current_correlation()
    if halts:
        policy, halt = halts[0]
        reason = halt.reason or f"condition {policy.condition!r} holds"
        ledger.audit.record(
            "policy.halted",
            correlation=ids,
            outcome="halted",
            payload={"policy": policy.name, "point": point, "reason": reason},
        )
        raise PolicyViolation(policy.name, reason, outcome.context)
    for policy, ask in approvals:
        _ask(policy, ask, outcome)
    return outcome


def carry_out(
    outcome: PolicyOutcome,
) -> tuple[list[tuple[Policy, Halt]], list[tuple[Policy, RequireApproval]]]:
    """Audit, announce and notify for every match; return the halts and approvals asked for."""
    ledger = get_ledger()
    ids = current_correlation()
    halts: list[tuple[Policy, Halt]] = []
    approvals: list[tuple[Policy, RequireApproval]] = []
    for policy in outcome.matched:
        _emit_event(policy, outcome)
        _log.info(
            "policy.matched",
            policy=policy.name,
            point=outcome.point,
            name=outcome.context.get("name"),
        )
        for action in policy.actions:
            if isinstance(action, AuditLog):
                ledger.audit.record(
                    "policy.matched",
                    correlation=ids,
                    outcome=action.severity,
                    payload={
                        "policy": policy.name,
                        "point": outcome.point,
                        "message": action.message,
                    },
                )
            elif isinstance(action, Notify):
                status = _notify(action, policy, outcome)
                ledger.audit.record(
                    "policy.notified",
                    correlation=ids,
                    outcome=status,
                    payload={"policy": policy.name, "target": str(action.target)},
                )
            elif isinstance(action, Halt):
                halts.append((policy, action))
            else:
                approvals.append((policy, action))
    return halts, approvals


def _ask(policy: Policy, action: RequireApproval, outcome: PolicyOutcome) -> None:
    from wflo_prefect.approvals import require_approval

    context = outcome.context
    require_approval(
        f"{context.get('kind') or 'run'} {context.get('name')!r} (policy {policy.name!r})",
        details={
            "policy": policy.name,
            "condition": policy.condition,
            "point": outcome.point,
            "operation": context.get("operation"),
            "params": _jsonable(context.get("params")),
        },
        approvers=action.approvers,
        principals=action.principals,
        quorum=action.quorum,
        timeout=action.timeout,
        on_timeout=action.on_timeout,
        notify=[_channel(c) for c in action.notify],
        escalation=[
            tier.model_copy(update={"notify": [_channel(c) for c in tier.notify]})
            for tier in action.escalation
        ],
        expires_after=action.expires_after,
    )


def _channel(item: Any) -> Any:
    """An approval channel block; a saved one named '<block-type-slug>/<name>' is loaded."""
    if not isinstance(item, str):
        return item
    from prefect.blocks.core import Block

    from wflo_prefect._prefect_compat import load_block
    from wflo_prefect.errors import InvalidArgumentError

    try:
        return load_block(Block, item)
    except ValueError as exc:
        raise InvalidArgumentError(
            "RequireApproval(notify=...) names an approval channel block that is not saved",
            value=item,
            hint="Save it first, e.g. WebhookApprovalChannel(...).save(NAME), and name it "
            "'wflo-webhook-approval-channel/NAME'",
            docs="policies.md",
        ) from exc
