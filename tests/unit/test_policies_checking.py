"""Conditions are type-checked when a policy is built: nothing unsafe or ill-typed runs."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from wflo_prefect import Halt, Policy, WfloError
from wflo_prefect.policies.condition import cel_context
from wflo_prefect.policies.errors import PolicyConditionError
from wflo_prefect.policies.variables import DEFAULTS, SANDBOX, names_at


@pytest.mark.parametrize(
    ("condition", "column", "text", "problem"),
    [
        ("__import__('os').system('id')", 1, "__import__", "unknown function '__import__'"),
        ("operation.__class__", 1, "operation.__class__", "has no field '__class__'"),
        ("operation.system('id')", 1, "operation.system", "unknown function 'system'"),
        ("cost + 1 > 2", 1, "cost + 1", "does not mix double and int"),
        ("workflow.network_enabled == 'yes'", 1, "workflow.network_enabled == 'yes'", "always"),
        ("sandbox.network", 1, "sandbox.network", "sandbox has no field 'network'"),
        ("size(1) > 0", 1, "size(1)", "size() is not defined on a int"),
        ("tags.exists(t, t > 1)", 16, "t > 1", "not defined for string and int"),
        ("operation == 'a' && kind", 21, "kind", "'&&' needs bools, not string"),
        ("params.a > 1 AND lowerAscii(user) == 'x'", 18, "lowerAscii", "unknown function"),
    ],
)
def test_unsafe_and_ill_typed_conditions_are_refused_when_built(
    condition: str, column: int, text: str, problem: str
) -> None:
    """Unknown functions, fields and type errors fail at construction, with column and text."""
    with pytest.raises(PolicyConditionError) as caught:
        Policy(condition=condition, actions=[Halt()])
    error = caught.value
    assert (error.position, error.text) == (column, text)
    assert problem in error.problem
    assert isinstance(error, WfloError)
    assert repr(condition) in str(error)
    assert "docs/policies.md" in str(error)


def test_condition_error_survives_pickling() -> None:
    """A refused condition's error crosses process boundaries with its position and text."""
    with pytest.raises(PolicyConditionError) as caught:
        Policy(condition="operation.__class__", actions=[Halt()])
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert (copy.condition, copy.position) == ("operation.__class__", 1)
    assert copy.text == caught.value.text
    assert str(copy) == str(caught.value)


def test_model_validate_refuses_too() -> None:
    """Policies loaded from data (files, blocks) are checked like those built in code."""
    with pytest.raises(ValueError, match="has no field '__class__'"):
        Policy.model_validate({"condition": "operation.__class__", "actions": [{"kind": "halt"}]})


ACCEPTED = [
    ("*", "run"),
    ("cost > 100 OR operation == 'delete'", "run"),
    ("estimated_cost > 1.5 || (model.startsWith('gpt-4') && cost > 20)", "spend"),
    ("params.table.startsWith('prod_') && tags.exists(t, t == 'nightly')", "run"),
    ("size(tags) > 2 || 'urgent' in tags || has(params.force)", "run"),
    ("run_time > 600.0 && !(user in ['alice', 'bob'])", "run"),
    ("tags.filter(t, t.startsWith('team:')).size() == 0", "run"),
    ("sandbox.network_enabled && sandbox.runtime != 'runsc'", "sandbox"),
    ("workflow.network_enabled == true", "sandbox"),
    ("double(sandbox.pids_limit) * 2.0 > sandbox.cpu_limit", "sandbox"),
    ("int(cost) % 2 == 0 ? operation == 'a' : kind == 'task'", "run"),
    ("params['amount'] > 10 && sandbox['image'].contains('python')", "sandbox"),
]


@pytest.mark.parametrize(("condition", "point"), ACCEPTED)
def test_accepted_conditions_evaluate_on_a_typed_sample(condition: str, point: str) -> None:
    """Whatever the checker accepts runs on a sample context of the declared types without error."""
    policy = Policy(condition=condition, actions=[Halt()])
    assert policy.on == (point,)
    sample = {
        **DEFAULTS,
        "params": {"table": "prod_x", "amount": 11, "force": True},
        "tags": ["nightly"],
        "cost": Decimal("2.5"),
        "sandbox": {name: _sample(kind) for name, kind in SANDBOX.fields.items()},
    }
    assert policy.compiled.variables <= names_at(point)
    assert isinstance(
        policy.compiled.evaluate(cel_context(sample, policy.compiled.variables)), bool
    )


def _sample(kind: object) -> object:
    return {"string": "python:3.12", "double": 1.0, "int": 64, "bool": True}.get(str(kind), [])


def test_sandbox_fields_match_the_sandbox_config() -> None:
    """The `sandbox` fields a condition may use are exactly SandboxConfig's fields."""
    from wflo_prefect.sandbox import SandboxConfig

    assert set(SANDBOX.fields) == set(SandboxConfig.model_fields)


def test_explicit_points_restrict_the_names() -> None:
    """A policy on `run` and `spend` can use only names both points provide."""
    with pytest.raises(PolicyConditionError, match="unknown name 'provider'"):
        Policy(condition="provider == 'openai'", on=("run", "spend"), actions=[Halt()])
    assert Policy(condition="provider == 'openai'", actions=[Halt()]).on == ("spend",)
