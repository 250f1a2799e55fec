"""Cost governance: every LLM call priced, attributed, and held to its budgets before it is sent.

Importing this package registers the ``budget=`` guard of the governed decorators.
"""

from wflo_prefect.costs.attribution import Attribution, attribute_to, current_attribution
from wflo_prefect.costs.blocks import WfloBudget, WfloCentralBudget, WfloCustomPrice
from wflo_prefect.costs.budget import Budget
from wflo_prefect.costs.caching import ResponseCache
from wflo_prefect.costs.clients import instrument
from wflo_prefect.costs.context import active_budgets, use_budgets
from wflo_prefect.costs.errors import BudgetExceeded, UnknownModelPrice
from wflo_prefect.costs.guard import BudgetGuard
from wflo_prefect.costs.handlers import (
    BudgetEvent,
    clear_budget_handlers,
    on_budget_alert,
    on_budget_exceeded,
)
from wflo_prefect.costs.leases import flush_leases
from wflo_prefect.costs.metering import (
    MeteredCall,
    estimate_cost,
    metered_call,
    record_llm_usage,
)
from wflo_prefect.costs.prices import CustomPrice, clear_custom_prices, find_price, register_price
from wflo_prefect.costs.routing import ModelRouting
from wflo_prefect.governance import register_guard

register_guard(BudgetGuard())

__all__ = [
    "Attribution",
    "Budget",
    "BudgetEvent",
    "BudgetExceeded",
    "BudgetGuard",
    "CustomPrice",
    "MeteredCall",
    "ModelRouting",
    "ResponseCache",
    "UnknownModelPrice",
    "WfloBudget",
    "WfloCentralBudget",
    "WfloCustomPrice",
    "active_budgets",
    "attribute_to",
    "clear_budget_handlers",
    "clear_custom_prices",
    "current_attribution",
    "estimate_cost",
    "find_price",
    "flush_leases",
    "instrument",
    "metered_call",
    "on_budget_alert",
    "on_budget_exceeded",
    "record_llm_usage",
    "register_price",
    "use_budgets",
]
