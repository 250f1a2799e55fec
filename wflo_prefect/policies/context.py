"""What a policy sees: the context of a governed call, and which policies are active.

The policies given to a governed flow or task are active for the duration of
its run (a context variable, which Prefect copies into task threads), so the
``spend`` and ``sandbox`` points reached inside the run evaluate them too.
Policies set with :func:`set_global_policies` apply to every governed run in
the process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prefect.context import FlowRunContext

from wflo_prefect.policies.policy import Point, Policy
from wflo_prefect.policies.variables import DEFAULTS

__all__ = [
    "active_policies",
    "build_context",
    "global_policies",
    "set_global_policies",
    "use_policies",
]

_ACTIVE: ContextVar[tuple[Policy, ...]] = ContextVar("wflo_active_policies", default=())
_GLOBAL: tuple[Policy, ...] = ()


def expand_policies(value: Any) -> tuple[Any, ...]:
    """``value`` as a flat tuple: a policy, a policy set (``WfloPolicySet``), or a list of both.

    Anything else is passed through for the caller to refuse by name.
    """
    items = (value,) if isinstance(value, Policy) or _is_policy_set(value) else tuple(value)
    out: list[Any] = []
    for item in items:
        out.extend(item.policies if _is_policy_set(item) else (item,))
    return tuple(out)


def _is_policy_set(value: Any) -> bool:
    from wflo_prefect.policies.blocks import WfloPolicySet

    return isinstance(value, WfloPolicySet)


def set_global_policies(policies: Sequence[Policy] | Any) -> None:
    """Apply ``policies`` (policies, or a ``WfloPolicySet``) to every governed run in
    this process (replaces the last set)."""
    global _GLOBAL
    expanded = expand_policies(policies)
    for policy in expanded:
        if not isinstance(policy, Policy):
            from wflo_prefect.errors import InvalidArgumentError

            raise InvalidArgumentError(
                "set_global_policies takes Policy objects or a WfloPolicySet",
                value=policy,
                hint="Build one with Policy(condition=..., actions=[...])",
                docs="policies.md",
            )
    _GLOBAL = expanded


def global_policies() -> tuple[Policy, ...]:
    """The process-wide policies."""
    return _GLOBAL


def active_policies() -> tuple[Policy, ...]:
    """Global policies, then those of the enclosing governed runs, outermost first."""
    return _GLOBAL + _ACTIVE.get()


@contextmanager
def use_policies(policies: Sequence[Policy]) -> Iterator[None]:
    """Make ``policies`` active inside the block (nested blocks add to them)."""
    token = _ACTIVE.set(_ACTIVE.get() + tuple(p for p in policies if p not in _ACTIVE.get()))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


_SCALARS = frozenset({bool, int, float, str, Decimal, type(None)})


def _plain(value: Any, depth: int = 0) -> Any:
    """A CEL-friendly copy of an argument: scalars, lists and maps; others as text."""
    if type(value) in _SCALARS or isinstance(value, bool | int | float | str | Decimal):
        return value
    if type(value) is dict and all(
        type(k) is str and type(v) in _SCALARS for k, v in value.items()
    ):
        return dict(value)  # the common case: flat keyword arguments
    if depth > 4:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def _spent_in_run(flow_run_id: str | None) -> Decimal:
    if not flow_run_id:
        return Decimal(0)
    from wflo_prefect.ledger import get_ledger

    entries = get_ledger().costs.entries(flow_run_id=flow_run_id)
    return sum((e.cost_usd for e in entries), Decimal(0))


def _estimated_run_cost(flow_name: str | None, flow_run_id: str | None) -> Decimal:
    """Median cost of the flow's previous runs in the ledger (this run excluded); 0 if none."""
    if not flow_name:
        return Decimal(0)
    from wflo_prefect.costs.estimates import percentile
    from wflo_prefect.ledger import get_ledger

    per_run: dict[str, Decimal] = {}
    for entry in get_ledger().costs.entries(flow_name=flow_name):
        if entry.flow_run_id and entry.flow_run_id != flow_run_id:
            per_run[entry.flow_run_id] = per_run.get(entry.flow_run_id, Decimal(0)) + entry.cost_usd
    if not per_run:
        return Decimal(0)
    return percentile(list(per_run.values()), Decimal("0.5"))


# Names read from Prefect's run context (a few microseconds), filled only when needed.
_ATTRIBUTED = frozenset(
    {"flow", "tags", "user", "deployment", "flow_run_id", "cost", "estimated_cost", "workflow"}
)


def build_context(
    point: Point,
    *,
    needed: frozenset[str],
    operation: str | None = None,
    kind: str = "",
    name: str = "",
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    describe: bool = False,
) -> dict[str, Any]:
    """The variables of one evaluation.

    Only what the conditions ``needed`` is computed (a decision over a few names
    stays a few microseconds); ``describe=True`` fills in every cheap name as well,
    for the audit trail. The ledger is read only for ``cost`` and, at ``run``,
    ``estimated_cost``.
    """
    context: dict[str, Any] = dict(DEFAULTS)
    context.update(
        point=point,
        operation=operation or "",
        kind=kind,
        name=name,
        task=name if kind == "task" else "",
    )
    if describe or "params" in needed:
        context["params"] = _plain(dict(params or {}))
    if describe or needed & _ATTRIBUTED:
        from wflo_prefect.costs.attribution import current_attribution

        who = current_attribution()
        context.update(
            flow=who.flow_name or "",
            tags=list(who.tags),
            user=who.user or "",
            deployment=who.deployment_id or "",
            flow_run_id=who.flow_run_id or "",
            workflow={"name": who.flow_name or "", "network_enabled": False},
        )
        if "cost" in needed:
            context["cost"] = _spent_in_run(who.flow_run_id)
        if "estimated_cost" in needed and point == "run":
            context["estimated_cost"] = _estimated_run_cost(who.flow_name, who.flow_run_id)
    if describe or needed & {"run_time", "execution_time"}:
        flow_ctx = FlowRunContext.get()
        start = flow_ctx.flow_run.start_time if flow_ctx and flow_ctx.flow_run else None
        if start is not None:
            elapsed = (datetime.now(UTC) - start).total_seconds()
            context["run_time"] = context["execution_time"] = max(elapsed, 0.0)
    if extra:
        context.update({k: _plain(v) for k, v in extra.items()})
    sandbox = context.get("sandbox")
    if isinstance(sandbox, Mapping) and "network_enabled" in sandbox:
        context["workflow"] = {
            **context["workflow"],
            "network_enabled": bool(sandbox["network_enabled"]),
        }
    return context
