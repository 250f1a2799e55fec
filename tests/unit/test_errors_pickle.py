"""Every WfloError survives pickling, as Prefect stores exceptions in states and results."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import cloudpickle
import pytest

import wflo_prefect
from wflo_prefect.errors import WfloError


def _all_subclasses(cls: type[WfloError]) -> Iterator[type[WfloError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _error_classes() -> list[type[WfloError]]:
    for module in pkgutil.walk_packages(wflo_prefect.__path__, "wflo_prefect."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    return sorted({WfloError, *_all_subclasses(WfloError)}, key=lambda c: c.__qualname__)


def _decision() -> object:
    from wflo_prefect.approvals import ApprovalDecision

    return ApprovalDecision(
        request_id="r-1",
        action="ship release",
        digest="d" * 64,
        approved=False,
        status="rejected",
        approvers=["alice"],
        comments={"alice": "not today"},
        channel="cli",
        decided_at=datetime(2026, 11, 29, tzinfo=UTC),
    )


def _sandbox_result() -> object:
    from wflo_prefect.sandbox import SandboxResult

    return SandboxResult(
        sandbox_id="s-1", exit_code=1, stdout="out", stderr="err", duration_seconds=0.5
    )


def _factories() -> dict[str, Callable[[type[WfloError]], WfloError]]:
    """How to build each error class whose __init__ differs from WfloError's, with real args."""
    return {
        "ApprovalGateError": lambda c: c("bad gate", value=3, hint="fix it"),
        "ApprovalRejected": lambda c: c(_decision()),  # type: ignore[call-arg]
        "ApprovalTimeout": lambda c: c("ship release", "r-1", 3600.0),  # type: ignore[call-arg]
        "DecisionRefused": lambda c: c("bad_code", "Wrong code", value="123", hint="retry"),  # type: ignore[call-arg]
        "BudgetExceeded": lambda c: c(  # type: ignore[call-arg]
            "team",
            limit_usd=Decimal("1"),
            spent_usd=Decimal("0.9"),
            attempted_usd=Decimal("0.2"),
            window_start="2026-11-29",
        ),
        "UnknownModelPrice": lambda c: c("openai", "gpt-9"),  # type: ignore[call-arg]
        "PolicyConditionError": lambda c: c(  # type: ignore[call-arg]
            "cost >", "syntax error", position=6, text=">"
        ),
        "PolicyViolation": lambda c: c("no-prod", "prod table", {"operation": "delete"}),  # type: ignore[call-arg]
        "RunHalted": lambda c: c("execution_timeout", "took longer than 600 s"),  # type: ignore[call-arg]
        "SandboxConfigError": lambda c: c("bad limit", value="9x", hint="e.g. 256m"),
        "SandboxSerializationError": lambda c: c("no json", value=object, hint="plain data"),
        "SandboxError": lambda c: c("boom", value=1, hint="h", result=_sandbox_result()),  # type: ignore[call-arg]
    }


def _build(cls: type[WfloError]) -> WfloError:
    factories = _factories()
    for klass in cls.__mro__:  # the nearest class with its own __init__ decides how
        if klass.__name__ in factories:
            return factories[klass.__name__](cls)
        if klass is WfloError or "__init__" in vars(klass):
            break
    assert "__init__" not in vars(cls) or cls is WfloError, (
        f"{cls.__qualname__} has its own __init__: add a factory with real arguments here"
    )
    return cls("something went wrong", value={"bad": 1}, hint="do this", docs="errors.md")


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__qualname__)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_every_error_round_trips_through_pickle(
    cls: type[WfloError], dumps: Callable[[object], bytes]
) -> None:
    """A pickled WfloError comes back as the same class with the same message and fields."""
    error = _build(cls)
    copy = pickle.loads(dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert repr(vars(copy)) == repr(vars(error))


def test_an_unpicklable_value_travels_as_its_repr() -> None:
    """An error about an unpicklable value (a lambda) still pickles, keeping the value's repr."""
    bad = lambda: None  # noqa: E731
    error = wflo_prefect.InvalidArgumentError("not a handler", value=bad)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert copy.value == repr(bad)
    assert str(copy) == str(error)
