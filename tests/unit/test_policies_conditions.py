"""Policy conditions are CEL, compiled and checked when the policy is built."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wflo_prefect import AuditLog, Halt, InvalidArgumentError, Notify, Policy, RequireApproval
from wflo_prefect.errors import WfloRuntimeError
from wflo_prefect.policies.condition import to_cel
from wflo_prefect.policies.errors import PolicyConditionError
from wflo_prefect.policies.variables import DEFAULTS


def ctx(**values: object) -> dict[str, object]:
    return {**DEFAULTS, **values}


@pytest.mark.parametrize(
    ("text", "cel"),
    [
        ("cost > 100 OR operation == 'delete'", "cost > 100  ||  operation == 'delete'"),
        ("a AND NOT b", "a  &&   !  b"),
        ("name == 'OR AND'", "name == 'OR AND'"),
        ('name == "not this" or x', 'name == "not this"  ||  x'),
        ("  *  ", "true"),
        ("operator == 'x'", "operator == 'x'"),
    ],
)
def test_keywords_become_cel_outside_strings(text: str, cel: str) -> None:
    """AND / OR / NOT become &&, ||, ! except inside string literals and longer words."""
    assert to_cel(text) == cel


def test_the_products_example_reads_as_written() -> None:
    """`cost > 100 OR operation == 'delete'` matches on either side, with Decimal money."""
    policy = Policy(condition="cost > 100 OR operation == 'delete'", actions=[Halt()])
    assert policy.matches(ctx(cost=Decimal("150.25"), operation="read"))
    assert policy.matches(ctx(cost=Decimal(1), operation="delete"))
    assert not policy.matches(ctx(cost=Decimal("99.99"), operation="read"))


def test_maps_lists_and_macros() -> None:
    """Conditions can index params, test tags, and use CEL macros."""
    policy = Policy(
        condition="params.table.startsWith('prod_') && tags.exists(t, t == 'nightly')",
        actions=[AuditLog()],
    )
    assert policy.matches(ctx(params={"table": "prod_users"}, tags=["nightly"]))
    assert not policy.matches(ctx(params={"table": "dev_users"}, tags=["nightly"]))


def test_star_always_matches() -> None:
    """'*' is the catch-all rule of first-match routing."""
    assert Policy(condition="*", actions=[AuditLog()]).matches(ctx())


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("cost > ", "column 8 \\('end of text'\\): expected a value"),
        ("costs > 1", "unknown name 'costs'"),
        ("", "non-empty"),
    ],
)
def test_bad_conditions_fail_when_built(condition: str, message: str) -> None:
    """Syntax errors and unknown names fail at construction, naming the condition."""
    with pytest.raises(InvalidArgumentError, match=message):
        Policy(condition=condition, actions=[Halt()])


def test_names_of_other_points_are_refused_where_they_are_not_provided() -> None:
    """`model` exists only at the spend point: a policy pinned to `run` cannot use it."""
    with pytest.raises(PolicyConditionError, match="unknown name 'model'"):
        Policy(condition="model == 'gpt-4o'", on="run", actions=[Halt()])


def test_point_specific_names() -> None:
    """`model` and `provider` are usable in a policy evaluated at the spend point."""
    policy = Policy(
        condition="model == 'gpt-4o' && estimated_cost > 0.5", on="spend", actions=[Halt()]
    )
    assert policy.matches(ctx(model="gpt-4o", estimated_cost=Decimal("0.6")))


def test_non_boolean_condition_is_refused_when_built() -> None:
    """A condition whose type is not bool (`cost`, a double) fails at construction."""
    with pytest.raises(PolicyConditionError, match="must be true or false, this is a double"):
        Policy(condition="cost", actions=[Halt()])


def test_dyn_value_that_is_not_a_bool_is_a_run_time_error() -> None:
    """A `params` value is only known at run time; a non-boolean result is still refused."""
    policy = Policy(condition="params.flag", actions=[Halt()])
    with pytest.raises(WfloRuntimeError, match="true or false"):
        policy.matches(ctx(params={"flag": 3}))


def test_actions_validate() -> None:
    """Notify needs a block, a '<type>/<name>' slug or a known URL; quorum must be positive."""
    with pytest.raises(ValueError, match="sms://ops"):
        Notify(target="sms://ops")
    with pytest.raises(ValueError, match="notify"):
        Notify(target=42)
    with pytest.raises(ValueError, match="quorum"):
        RequireApproval(quorum=0)
    assert Notify(target="slack-webhook/ops").target == "slack-webhook/ops"


def test_policy_name_defaults_to_condition_and_actions_accept_one() -> None:
    """A lone action is accepted, and an unnamed policy is named by its condition."""
    policy = Policy(condition="cost > 1", actions=Halt(reason="too dear"))
    assert policy.name == "cost > 1"
    assert policy.actions == (Halt(reason="too dear"),)
