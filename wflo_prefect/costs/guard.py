"""The ``budget=`` keyword of the governed decorators.

Accepts a :class:`Budget`, a :class:`WfloBudget` block, the name of a saved
``WfloBudget`` block (loaded at the start of every run, so operators can change
it without a redeploy), or a list of these. The guard applies to every governed
run, with or without ``budget=``: the saved central budgets that match the run
(:mod:`wflo_prefect.costs.central`) are added to its code's. While the run
executes its budgets are active (see :mod:`wflo_prefect.costs.context`); when a
governed flow run with any budget ends, its calls are published as a table and a
markdown artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Literal

from wflo_prefect._prefect_compat import load_block
from wflo_prefect.costs.artifacts import publish_run_costs
from wflo_prefect.costs.attribution import current_attribution
from wflo_prefect.costs.blocks import WfloBudget
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.central import central_budgets_of_run, known_central_budgets
from wflo_prefect.costs.context import use_budgets
from wflo_prefect.costs.enforcement import register_budget
from wflo_prefect.errors import ConfigurationError, InvalidArgumentError
from wflo_prefect.governance import NOTHING_TO_DO, GovernedCall, Guard

__all__ = ["BudgetGuard"]

BudgetSpec = Budget | WfloBudget | str


def _resolve(spec: BudgetSpec) -> Budget:
    if isinstance(spec, Budget):
        return spec
    if isinstance(spec, WfloBudget):
        return spec.to_budget()
    try:
        block = load_block(WfloBudget, spec)
    except ValueError as exc:
        raise ConfigurationError(
            f"No WfloBudget block named {spec!r} could be loaded",
            value=spec,
            hint="Create it in the Prefect UI (Blocks > wflo Budget) or with "
            f"WfloBudget(max_usd=...).save({spec!r})",
            docs="costs.md#budget-blocks",
        ) from exc
    assert isinstance(block, WfloBudget)
    return block.to_budget(spec)


class BudgetGuard(Guard):
    """Makes the run's budgets active and publishes its costs."""

    keyword: ClassVar[str] = "budget"
    order: ClassVar[int] = 20
    always: ClassVar[bool] = True

    def validate(
        self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]
    ) -> tuple[BudgetSpec, ...]:
        if value is None:
            return ()
        items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if not isinstance(item, (Budget, WfloBudget, str)) or item == "":
                raise InvalidArgumentError(
                    f"`budget=` on {fn.__qualname__} takes a Budget, a WfloBudget block, "
                    "a block name, or a list of them",
                    value=item,
                    hint="e.g. budget=Budget(max_usd=Decimal('5'), scope='flow_run')",
                    docs="costs.md#budgets",
                )
        return items

    def around(self, call: GovernedCall, value: Any) -> AbstractContextManager[None]:
        flow_run_id = call.correlation.flow_run_id
        # A task with no budget of its own in a run whose central budgets are known to be
        # none (its flow decided them): nothing to hold it to beyond its flow's.
        if (
            not value
            and call.kind == "task"
            and flow_run_id is not None
            and known_central_budgets(flow_run_id) == ()
        ):
            return NOTHING_TO_DO
        return self._scope(call, value)

    @contextmanager
    def _scope(self, call: GovernedCall, value: tuple[BudgetSpec, ...]) -> Iterator[None]:
        budgets = [_resolve(spec) for spec in value]
        central = central_budgets_of_run(call.correlation.flow_run_id, current_attribution)
        budgets += [b for b in central if b not in budgets]
        for budget in budgets:
            register_budget(budget)
        try:
            with use_budgets(*budgets):
                yield
        finally:
            if budgets and call.kind == "flow" and call.correlation.flow_run_id:
                publish_run_costs(call.correlation.flow_run_id)
