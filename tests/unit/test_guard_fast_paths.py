"""A governed task with nothing to govern: guards step aside, its signature is read once."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

import wflo_prefect.costs.central as central
from wflo_prefect import Budget, Halt, Policy, governed_task
from wflo_prefect.costs.context import active_budgets
from wflo_prefect.costs.guard import BudgetGuard
from wflo_prefect.governance import NOTHING_TO_DO, GovernedCall
from wflo_prefect.observability.correlation import Correlation
from wflo_prefect.policies.context import use_policies
from wflo_prefect.policies.guard import PolicyGuard


def refund(order: str, amount: int = 5, *, reason: str = "") -> str:
    return order


def _call(kind: str = "task", flow_run_id: str | None = "run-1") -> GovernedCall:
    return GovernedCall(
        kind=kind,  # type: ignore[arg-type]
        name="refund",
        fn=refund,
        args=("o-1",),
        kwargs={},
        operation="refund",
        correlation=Correlation(flow_run_id=flow_run_id),
    )


def test_a_task_without_policies_skips_the_policy_scope_only_when_none_apply() -> None:
    guard = PolicyGuard()
    assert guard.around(_call(), ()) is NOTHING_TO_DO
    assert guard.around_async(_call(), ()) is NOTHING_TO_DO
    assert guard.around(_call(kind="flow"), ()) is not NOTHING_TO_DO  # a flow watches its run
    halt = Policy(name="no-refunds", condition="operation == 'refund'", actions=[Halt()])
    assert guard.around(_call(), (halt,)) is not NOTHING_TO_DO
    with use_policies((halt,)):  # e.g. the enclosing flow's
        assert guard.around(_call(), ()) is not NOTHING_TO_DO
    spend_only = halt.model_copy(update={"on": ("spend",)})
    with use_policies((spend_only,)):  # not evaluated at a run's start
        assert guard.around(_call(), ()) is NOTHING_TO_DO


@pytest.fixture
def central_cache() -> object:
    central.clear_central_cache()
    yield central
    central.clear_central_cache()


def test_a_task_without_budgets_skips_the_budget_scope_once_its_runs_are_known(
    central_cache: object,
) -> None:
    guard = BudgetGuard()
    with central._cache_lock:
        central._remember("run-1", ())
    assert guard.around(_call(), ()) is NOTHING_TO_DO
    assert guard.around(_call(flow_run_id="run-2"), ()) is not NOTHING_TO_DO  # not decided yet
    assert guard.around(_call(flow_run_id=None), ()) is not NOTHING_TO_DO
    own = Budget(max_usd=Decimal("1"), name="own")
    with guard.around(_call(), (own,)):
        assert own in active_budgets()
    with central._cache_lock:
        central._remember("run-3", (own,))
    with guard.around(_call(flow_run_id="run-3"), ()):
        assert own in active_budgets()


def pay(order, amount=5, *, reason=""):  # type: ignore[no-untyped-def]
    """No annotations: nothing postponed (this module postpones its own)."""
    return order


def test_a_governed_tasks_signature_is_read_once_and_is_its_own() -> None:
    task = governed_task(pay)
    assert inspect.signature(task.fn) == inspect.signature(pay)
    assert inspect.signature(task.fn) is inspect.signature(task.fn)  # not walked again
    assert inspect.unwrap(task.fn) is pay  # source-based cache keys still read pay
    assert task.fn("o-2", reason="late") == "o-2"


def test_postponed_annotations_keep_prefects_own_signature_reading() -> None:
    """A signature set on the wrapper is returned as is, never evaluated: a function
    with string annotations is left to Prefect, which evaluates them for its schemas."""
    task = governed_task(refund)
    assert "__signature__" not in vars(task.fn)
    assert inspect.signature(task.fn, eval_str=True) == inspect.signature(refund, eval_str=True)
