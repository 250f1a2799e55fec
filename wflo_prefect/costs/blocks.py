"""Blocks operators edit in the Prefect UI: budgets and custom prices, loaded by name.

A flow declared with ``governed_flow(budget="team-a-monthly")`` loads the
``WfloBudget`` block of that name at the start of every run, so changing the
limit in the UI takes effect on the next run without a redeploy.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from wflo_prefect._prefect_compat import block_document_name
from wflo_prefect._validation import ValidatedModel
from wflo_prefect.costs.budget import Budget, OnExceeded, Period, Scope, check_notify_target
from wflo_prefect.costs.prices import CustomPrice, register_price
from wflo_prefect.costs.selectors import SELECTOR_PATTERN, BudgetSelector, parse_selector

__all__ = ["WfloBudget", "WfloCentralBudget", "WfloCustomPrice"]


class WfloBudget(ValidatedModel, Block):
    """A budget (limit, scope, period, thresholds, action) kept as a Prefect block."""

    wflo_docs: ClassVar[str | None] = "costs.md"

    _block_type_name = "wflo Budget"
    _block_type_slug = "wflo-budget"
    _description = "A USD budget every LLM call of governed flows is checked against."
    _documentation_url = "https://github.com/wflo-ai/wflo-prefect/blob/main/docs/costs.md"  # type: ignore[assignment]

    max_usd: Decimal = Field(gt=0, description="Limit in USD.", examples=["25.00"])
    scope: Scope = Field(default="flow", description="Whose spend is counted.")
    period: Period = Field(default="monthly", description="Calendar window of the limit.")
    alert_thresholds: list[Decimal] = Field(
        default_factory=lambda: [Decimal("0.5"), Decimal("0.75"), Decimal("0.9"), Decimal("1")],
        description="Fractions of the limit that alert once per window.",
    )
    on_exceeded: OnExceeded = Field(default="halt", description="halt, alert or ignore.")
    scope_value: str | None = Field(
        default=None, description="The tag (scope=tag) or the one user/flow/deployment."
    )
    timezone: str | None = Field(
        default=None, description="IANA zone of the windows (default: the costs setting)."
    )
    notify: list[str] = Field(
        default_factory=list,
        description="Saved notification blocks told of each alert and of each run a halting "
        "budget stops, as '<block-type>/<name>' or a URL such as 'slack://NAME'.",
        examples=[["slack-webhook/finops", "email://finops@example.com"]],
    )

    @field_validator("notify")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for target in value:
            check_notify_target(target)  # a ValueError naming a bad one, when it is saved
        return value

    def to_budget(self, name: str | None = None) -> Budget:
        """The :class:`Budget` this block describes, named after the block document."""
        return Budget(
            self.max_usd,
            scope=self.scope,
            period=self.period,
            alert_thresholds=tuple(self.alert_thresholds),
            on_exceeded=self.on_exceeded,
            scope_value=self.scope_value,
            timezone=self.timezone,
            notify=tuple(self.notify),
            name=name or block_document_name(self),
        )


class WfloCentralBudget(WfloBudget):
    """A budget an operator sets once: every governed run its selector matches is held
    to it, with no ``budget=`` in the flow's code.

    Governed flow runs read all blocks of this type when they start (one API read per
    run) and apply each one whose ``applies_to`` matches the run: ``global``,
    ``tag:<tag>``, ``deployment:<name>``, ``user:<name>``, ``work_pool:<name>`` or
    ``flow:<name>``. ``scope`` says how the matched spend is split: ``global``
    (default) pools all matched runs in one limit, ``flow_run`` gives each run its own.
    """

    _block_type_name = "wflo Central Budget"
    _block_type_slug = "wflo-central-budget"
    _description = (
        "A USD budget applied to every governed run it matches (global, tag, deployment, "
        "user, work pool or flow), with no change to the flows' code."
    )

    applies_to: str = Field(
        default="global",
        pattern=SELECTOR_PATTERN,
        description="Which runs: 'global', or 'tag:', 'deployment:', 'user:', 'work_pool:' "
        "or 'flow:' followed by the name.",
        examples=["global", "tag:team-a", "deployment:research/nightly", "work_pool:gpu"],
    )
    scope: Scope = Field(
        default="global",
        description="How matched spend is split: global pools every matched run in one "
        "limit; flow_run, flow, deployment or user give each its own.",
    )

    @field_validator("applies_to", mode="before")
    @classmethod
    def _selector(cls, value: object) -> str:
        return str(parse_selector(value))

    @property
    def selector(self) -> BudgetSelector:
        """The parsed ``applies_to``."""
        return parse_selector(self.applies_to)


class WfloCustomPrice(ValidatedModel, Block):
    """A custom price for one provider's model, per million tokens."""

    wflo_docs: ClassVar[str | None] = "costs.md"

    _block_type_name = "wflo Custom Price"
    _block_type_slug = "wflo-custom-price"
    _description = "A price for a model genai-prices does not know, or a negotiated rate."
    _documentation_url = "https://github.com/wflo-ai/wflo-prefect/blob/main/docs/costs.md"  # type: ignore[assignment]

    provider: str = Field(description="Provider id.", examples=["openai"])
    model: str = Field(description="Model name as the API reports it.", examples=["ft:my-model"])
    input_per_mtok: Decimal = Field(ge=0, description="USD per million input tokens.")
    output_per_mtok: Decimal = Field(ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="USD per million cached input tokens."
    )
    input_audio_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="USD per million audio input tokens (default: input)."
    )
    effective_from: datetime | None = Field(default=None, description="Applies from (inclusive).")
    effective_to: datetime | None = Field(default=None, description="Applies until (exclusive).")

    def to_price(self) -> CustomPrice:
        """The :class:`CustomPrice` this block describes."""
        return CustomPrice(
            provider=self.provider,
            model=self.model,
            input_per_mtok=self.input_per_mtok,
            output_per_mtok=self.output_per_mtok,
            cached_input_per_mtok=self.cached_input_per_mtok,
            input_audio_per_mtok=self.input_audio_per_mtok,
            effective_from=self.effective_from,
            effective_to=self.effective_to,
        )

    def register(self) -> CustomPrice:
        """Use this price in the current process; returns it."""
        price = self.to_price()
        register_price(price)
        return price
