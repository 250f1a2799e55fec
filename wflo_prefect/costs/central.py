"""Central budgets: the ``WfloCentralBudget`` blocks that apply to a governed run.

A governed flow run reads every block document of that type once, when it starts
(one API read; plus one deployment read when a ``deployment:<name>`` selector must
be matched against a run from a deployment), keeps the budgets whose selector
matches the run (cached by flow run id, so its tasks do not read again), and holds
every LLM call of the run to them as well as to its code's ``budget=``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wflo_prefect.costs.attribution import Attribution
from wflo_prefect.costs.blocks import WfloCentralBudget
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.selectors import RunFacts
from wflo_prefect.costs.settings import get_cost_settings
from wflo_prefect.errors import ConfigurationError, ServiceUnavailableError, WfloError
from wflo_prefect.observability.logging import get_logger

__all__ = [
    "CentralBudget",
    "central_budgets_for",
    "central_budgets_of_run",
    "clear_central_cache",
    "known_central_budgets",
    "read_central_budgets",
]

_log = get_logger("costs")
_SLUG = "wflo-central-budget"
_CACHE_MAX = 512
_OUTSIDE_RUN_TTL = 30.0


@dataclass(frozen=True, slots=True)
class CentralBudget:
    """One saved central budget: its block document's name, the block and its budget."""

    name: str
    block: WfloCentralBudget
    budget: Budget


def read_central_budgets() -> list[CentralBudget]:
    """Every saved ``WfloCentralBudget`` block (one Prefect API read), sorted by name.

    Raises :class:`ConfigurationError` naming a saved document that is not a valid
    central budget (a central budget that cannot be applied must not be skipped
    silently), :class:`ServiceUnavailableError` when the API cannot be read.
    """
    from prefect.exceptions import PrefectHTTPStatusError

    from wflo_prefect._prefect_client import prefect_client

    try:
        with prefect_client() as client:
            documents = client.read_block_documents_by_type(_SLUG, include_secrets=False)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 404:  # the block type was never registered
            return []
        raise _unreadable(exc) from exc
    except Exception as exc:  # httpx errors, timeouts: the API is not reachable
        raise _unreadable(exc) from exc
    found = []
    for document in documents:
        if document.is_anonymous or not document.name:
            continue
        found.append(_central(document.name, dict(document.data)))
    return sorted(found, key=lambda c: c.name)


def _unreadable(exc: BaseException) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "Central budgets (wflo Central Budget blocks) could not be read from the Prefect API",
        value=f"{type(exc).__name__}: {exc}",
        hint="Check PREFECT_API_URL, or run without central budgets: "
        "PREFECT_INTEGRATIONS_WFLO_COSTS_CENTRAL_BUDGETS=false",
        docs="costs.md#central-budgets",
    )


def _central(name: str, data: dict[str, Any]) -> CentralBudget:
    try:
        block = WfloCentralBudget(**data)
        budget = block.to_budget(name)
    except WfloError as exc:
        raise ConfigurationError(
            f"The central budget block {name!r} is invalid: {exc}",
            value=name,
            hint="Fix it in the Prefect UI (Blocks > wflo Central Budget) or save it again "
            "from code; until then governed runs refuse to start",
            docs="costs.md#central-budgets",
        ) from exc
    return CentralBudget(name, block, budget)


def _deployment_name(deployment_id: str) -> str | None:
    from wflo_prefect._prefect_client import prefect_client

    try:
        with prefect_client() as client:
            name: str = client.read_deployment(deployment_id).name
    except Exception as exc:
        raise ServiceUnavailableError(
            "The run's deployment could not be read to match `deployment:` central budgets",
            value=deployment_id,
            hint="Check PREFECT_API_URL, or select the deployment by its id",
            docs="costs.md#central-budgets",
        ) from exc
    return name


def matching(central: Sequence[CentralBudget], who: Attribution) -> tuple[Budget, ...]:
    """The budgets of ``central`` whose selector matches a run attributed to ``who``."""
    if not central:
        return ()
    deployment_name = None
    if who.deployment_id and any(c.block.selector.needs_deployment_name for c in central):
        deployment_name = _deployment_name(who.deployment_id)
    facts = RunFacts(
        flow_name=who.flow_name,
        deployment_id=who.deployment_id,
        deployment_name=deployment_name,
        work_pool=who.work_pool,
        user=who.user,
        tags=who.tags,
    )
    return tuple(c.budget for c in central if c.block.selector.matches(facts))


_cache: OrderedDict[str | None, tuple[float, tuple[Budget, ...]]] = OrderedDict()
_cache_lock = threading.Lock()


def central_budgets_of_run(
    flow_run_id: str | None, who: Callable[[], Attribution]
) -> tuple[Budget, ...]:
    """:func:`central_budgets_for` for a call in the flow run ``flow_run_id``: the
    attribution ``who()`` is built only on the run's first call (every governed task
    asks: for a run already seen the answer is one dictionary lookup)."""
    if flow_run_id is not None and (known := known_central_budgets(flow_run_id)) is not None:
        return known
    return central_budgets_for(who())


def known_central_budgets(flow_run_id: str) -> tuple[Budget, ...] | None:
    """The central budgets already decided for the flow run ``flow_run_id``, or None if
    they are not decided yet (no I/O: a cache lookup)."""
    with _cache_lock:
        cached = _cache.get(flow_run_id)
    return None if cached is None else cached[1]


def central_budgets_for(who: Attribution) -> tuple[Budget, ...]:
    """The central budgets that apply to the run ``who`` belongs to (read once per flow
    run; outside a flow run, at most every 30 s)."""
    key = who.flow_run_id
    if not get_cost_settings().central_budgets:
        if key is not None:  # decided once per flow run, like the budgets themselves
            with _cache_lock:
                _remember(key, ())
        return ()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and (key is not None or time.monotonic() < cached[0]):
            return cached[1]
        budgets = matching(read_central_budgets(), who)
        _remember(key, budgets)
    if budgets:
        _log.info(
            "budget.central_applied",
            flow_run_id=key,
            budgets=[b.display_name for b in budgets],
        )
    return budgets


def _remember(key: str | None, budgets: tuple[Budget, ...]) -> None:
    # Called with _cache_lock held.
    _cache[key] = (time.monotonic() + _OUTSIDE_RUN_TTL, budgets)
    _cache.move_to_end(key)
    while len(_cache) > _CACHE_MAX:
        _cache.popitem(last=False)


def clear_central_cache() -> None:
    """Forget which central budgets applied to which runs (they are read again)."""
    with _cache_lock:
        _cache.clear()
