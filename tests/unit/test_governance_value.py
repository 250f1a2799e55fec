"""One frozen, typed Governance value, built by one factory, used by both decorators."""

from __future__ import annotations

import dataclasses
import inspect
from decimal import Decimal

import pytest

import wflo_prefect.decorators as decorators
from wflo_prefect import Budget, governed_flow, governed_task
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import (
    GOVERNANCE_KEYWORDS,
    Governance,
    GovernanceKeywords,
    governance,
)


def work(x: int) -> int:
    return x


def test_the_factory_validates_and_returns_a_frozen_value() -> None:
    budget = Budget(max_usd=Decimal("1"))
    rules = governance(work, "task", GovernanceKeywords(budget=budget), operation="delete")
    assert isinstance(rules, Governance)
    assert (rules.kind, rules.name, rules.operation) == ("task", "work", "delete")
    assert "budget" in [guard.keyword for guard, _ in rules.guards]
    orders = [guard.order for guard, _ in rules.guards]
    assert orders == sorted(orders)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.operation = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.keywords.budget = None  # type: ignore[misc]


def test_the_factory_names_a_bad_operation_or_value() -> None:
    with pytest.raises(InvalidArgumentError, match="operation="):
        governance(work, "flow", GovernanceKeywords(), operation="  ")
    with pytest.raises(InvalidArgumentError, match="budget="):
        governance(work, "flow", GovernanceKeywords(budget=10))


def test_both_decorators_take_exactly_the_governance_keywords() -> None:
    for decorator in (governed_flow, governed_task):
        params = inspect.signature(decorator).parameters
        # rollback_enabled= is a modifier of snapshot= (folded into its value), not a guard.
        ours = [
            n
            for n, p in params.items()
            if p.kind is p.KEYWORD_ONLY and n not in ("operation", "rollback_enabled")
        ]
        assert tuple(ours) == GOVERNANCE_KEYWORDS


def test_both_decorators_build_their_governance_with_the_one_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Governance] = []

    def spy(*args: object, **kwargs: object) -> Governance:
        rules = governance(*args, **kwargs)  # type: ignore[arg-type]
        built.append(rules)
        return rules

    monkeypatch.setattr(decorators, "governance", spy)
    governed_task(operation="read")(work)
    governed_flow(name="named")(work)
    assert [(g.kind, g.name, g.operation) for g in built] == [
        ("task", "work", "read"),
        ("flow", "named", None),
    ]


def test_a_governed_functions_signature_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Binding a call's arguments reuses the function's signature (reading it is ~60 µs)."""
    from wflo_prefect import governance
    from wflo_prefect.governance import GovernedCall
    from wflo_prefect.observability.correlation import Correlation

    reads: list[object] = []
    real = inspect.signature

    def counting(fn: object) -> inspect.Signature:
        reads.append(fn)
        return real(fn)  # type: ignore[arg-type]

    def refund(order_id: str, amount: int = 5) -> None: ...

    monkeypatch.setattr(governance.inspect, "signature", counting)
    for n in range(3):
        call = GovernedCall(
            kind="task",
            name="refund",
            fn=refund,
            args=(f"o-{n}",),
            kwargs={},
            operation=None,
            correlation=Correlation(),
        )
        assert call.bound_arguments() == {"order_id": f"o-{n}", "amount": 5}
    assert reads == [refund]
