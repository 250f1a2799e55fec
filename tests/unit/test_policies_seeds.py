"""The product description's policy spellings work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import wflo_prefect.policies
from wflo_prefect import (
    ApprovalRule,
    AuditLog,
    Condition,
    Halt,
    HaltExecution,
    Notify,
    Policy,
    PolicyConditionError,
    RequireApproval,
)
from wflo_prefect.policies.files import try_policies
from wflo_prefect.policies.targets import UrlTarget, parse_target


def test_condition_objects_and_halt_execution() -> None:
    """`Condition("...")` is accepted as a condition and `HaltExecution` is `Halt`."""
    policy = Policy(
        name="execution_timeout",
        condition=Condition("execution_time > 600"),
        actions=[HaltExecution(), Notify("pagerduty://ops")],
    )
    assert policy.condition == "execution_time > 600"
    assert isinstance(policy.actions[0], Halt)
    with pytest.raises(PolicyConditionError, match="unknown name 'executiontime'"):
        Condition("executiontime > 600")


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("slack://finance-channel", UrlTarget("slack", "finance-channel")),
        ("pagerduty://ops", UrlTarget("pagerduty", "ops")),
        ("email://ops@company.com", UrlTarget("email", "ops@company.com")),
        ("email://ops@company.com?via=smtp2", UrlTarget("email", "ops@company.com", "smtp2")),
    ],
)
def test_notify_takes_url_targets_positionally(target: str, parsed: UrlTarget) -> None:
    """`Notify("slack://...")` and the pagerduty:// and email:// forms name saved blocks."""
    assert Notify(target).target == target
    assert parse_target(target) == parsed


@pytest.mark.parametrize("target", ["sms://x", "email://not-an-address", "slack://a?via=b"])
def test_bad_url_targets_are_refused(target: str) -> None:
    """An unknown scheme, a bad address or a misplaced ?via= fails when the action is built."""
    with pytest.raises(ValueError, match=re.escape(target)):
        Notify(target)


def test_network_policy_is_evaluated_where_the_network_is_decided() -> None:
    """`workflow.network_enabled == true` is evaluated before a sandbox starts."""
    policy = Policy(
        name="no_network_default",
        condition=Condition("workflow.network_enabled == true"),
        actions=[RequireApproval(approvers=["security-team"]), AuditLog(severity="high")],
    )
    assert policy.on == ("sandbox",)
    [(_, hit)] = try_policies(
        [policy], "sandbox", {"workflow": {"name": "f", "network_enabled": True}}
    )
    assert hit is True


def test_approval_rules_route_to_the_first_match() -> None:
    """ApprovalRule lists route each call to exactly one rule, as the seeds describe."""
    rules = [
        ApprovalRule(
            condition="cost > 100 OR operation == 'delete'",
            require_approval=True,
            approvers=["senior-ops"],
        ),
        ApprovalRule(condition="cost > 10", require_approval=False, audit_log=True),
        ApprovalRule(condition="*", require_approval=False),
    ]
    assert [a.kind for a in rules[0].actions] == ["require_approval"]
    assert [a.kind for a in rules[1].actions] == ["audit_log"]
    assert rules[2].actions == ()
    decided = try_policies(rules, "run", {"cost": 50})
    assert [hit for _, hit in decided] == [False, True, None]
    with pytest.raises(ValueError, match="asks nobody"):
        ApprovalRule(condition="*", require_approval=False, approvers=["x"])


def test_the_package_docstring_example_runs() -> None:
    """The example in wflo_prefect.policies' docstring runs as written."""
    doc = wflo_prefect.policies.__doc__ or ""
    [code] = re.findall(r"```python\n(.*?)```", doc, re.S)
    namespace: dict[str, object] = {}
    exec(compile(code, "wflo_prefect.policies docstring", "exec"), namespace)  # noqa: S102 - our own docs


def test_the_seeds_examples_are_in_the_docs() -> None:
    """docs/policies.md carries the seeds' three policies, so the docs test runs them."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text()
    for name in ("high_cost_approval", "execution_timeout", "no_network_default", "ApprovalRule("):
        assert name in page
