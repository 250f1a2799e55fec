"""No public model or block leaks pydantic's ValidationError: mistakes are WfloErrors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import wflo_prefect
from wflo_prefect.errors import WfloError

MODELS = sorted(
    {
        value
        for name in wflo_prefect.__all__
        if isinstance(value := getattr(wflo_prefect, name), type)
        and issubclass(value, BaseModel)
        and name != "WfloSettings"  # from the environment: tests/unit/test_settings.py
    },
    key=lambda cls: cls.__name__,
)


class _Opaque:
    """A value no field of any model accepts."""


def _bad_inputs(cls: type[BaseModel]) -> list[dict[str, Any]]:
    """Every field given a value of the wrong type, one at a time, plus nothing at all."""
    cases: list[dict[str, Any]] = [{}]
    for field in cls.model_fields:
        if field.startswith("_") or field in ("block_type_slug",):
            continue
        cases.append({field: _Opaque()})
    return cases


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_bad_arguments_raise_a_wflo_error_naming_the_field(cls: type[BaseModel]) -> None:
    """Each public model, given a wrong value for any field, raises a WfloError (or accepts)."""
    for data in _bad_inputs(cls):
        raised: BaseException | None = None
        try:
            cls(**data)
        except Exception as exc:  # classified below: only WfloErrors may come out
            raised = exc
        if raised is None:
            continue
        assert isinstance(raised, WfloError), (
            f"{cls.__name__}(**{data}) raised {type(raised).__name__}: {raised}"
        )
        bad = next(iter(data), None)
        assert bad is None or bad in str(raised) or "needs `" in str(raised), (cls, data)


def test_named_examples_from_the_issue_are_wflo_errors() -> None:
    """The reported cases: negative prices and budgets, a bad notify target, a bad timeout."""
    from decimal import Decimal

    cases = [
        lambda: wflo_prefect.CustomPrice(
            provider="acme", model="m", input_per_mtok=Decimal(-1), output_per_mtok=Decimal(1)
        ),
        lambda: wflo_prefect.WfloBudget(max_usd=Decimal(-1)),
        lambda: wflo_prefect.Notify(target="bad"),
        lambda: wflo_prefect.ApprovalPolicy(action="x", timeout=-1),
    ]
    for build in cases:
        with pytest.raises(WfloError) as caught:
            build()
        assert "(got " in str(caught.value) or "needs" in str(caught.value)
