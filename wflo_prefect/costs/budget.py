"""``Budget``: a limit in USD over a scope and a calendar period.

A budget is validated when it is built. Where it applies is its *scope*; which
spend it counts is its *key* (the scope's value for the call, e.g. the flow run
id) and its *window* (the calendar period the call falls in, in the configured
time zone).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wflo_prefect._validation import usage_error
from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.observability.notify import check_target

__all__ = ["Budget", "Period", "Scope", "check_notify_target", "window_bounds"]

Scope = Literal["flow_run", "flow", "deployment", "user", "tag", "global"]
Period = Literal["none", "daily", "weekly", "monthly"]
OnExceeded = Literal["halt", "alert", "ignore"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Budget(BaseModel):
    """A spending limit every LLM call in its scope is checked against, before it is sent.

    Args:
        max_usd: the limit in USD (a Decimal, or a str/int; > 0).
        scope: whose spend is counted: ``flow_run`` (default), ``flow``, ``deployment``,
            ``user``, ``tag`` or ``global``.
        period: ``none`` (for ever), ``daily``, ``weekly`` (from Monday) or ``monthly``,
            as calendar windows in ``timezone``.
        alert_thresholds: fractions of the limit (0 < t <= 1) that raise an alert once per
            window; default 50, 75, 90 and 100 %.
        on_exceeded: ``halt`` (refuse the call: BudgetExceeded), ``alert`` (send it, alert)
            or ``ignore`` (send it, record it).
        name: a stable name (default derived from scope, period and limit); operators
            see it in ``wflo budgets`` and alerts.
        scope_value: the one value the budget applies to (required for ``tag``, e.g.
            ``"team-a"``; optional for ``user``, ``flow`` and ``deployment``).
        timezone: IANA zone of the windows (default: the costs ``timezone`` setting).
        notify: saved Prefect notification blocks (``"<block-type>/<name>"``, e.g.
            ``"slack-webhook/finops"``, or a URL naming one: ``slack://NAME``,
            ``email://ADDRESS`` ...) told of every threshold and overrun alert, and of
            each run a ``halt`` budget stops.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_usd: Decimal = Field(gt=0)
    scope: Scope = "flow_run"
    period: Period = "none"
    alert_thresholds: tuple[Decimal, ...] = (
        Decimal("0.5"),
        Decimal("0.75"),
        Decimal("0.9"),
        Decimal("1"),
    )
    on_exceeded: OnExceeded = "halt"
    name: str | None = None
    scope_value: str | None = None
    timezone: str | None = None
    notify: tuple[str, ...] = ()

    def __init__(self, max_usd: Any = None, /, **data: Any) -> None:
        if max_usd is not None:
            data["max_usd"] = max_usd
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise usage_error("Budget", exc, docs="costs.md#budgets", hints=_HINTS) from None
        if self.scope == "tag" and not self.scope_value:
            raise InvalidArgumentError(
                "Budget(scope='tag') needs the tag it applies to",
                value=self.scope_value,
                hint="Pass scope_value='<tag>', e.g. "
                "Budget('5', scope='tag', scope_value='team-a')",
                docs="costs.md#budgets",
            )

    @field_validator("max_usd", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value

    @field_validator("alert_thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        if isinstance(value, (int, float, str, Decimal)):
            value = (value,)
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValueError(f"thresholds are fractions of the limit, not {type(value).__name__}")
        items = [Decimal(repr(v)) if isinstance(v, float) else v for v in value]
        return tuple(items)

    @field_validator("alert_thresholds")
    @classmethod
    def _thresholds_range(cls, value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        for item in value:
            if not Decimal(0) < item <= Decimal(1):
                raise ValueError(f"each threshold must be > 0 and <= 1, got {item}")
        return tuple(sorted(set(value)))

    @field_validator("notify", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        if not isinstance(value, str | list | tuple):
            raise ValueError(f"notify targets are block names, not {type(value).__name__}")
        items = (value,) if isinstance(value, str) else tuple(value)
        return tuple(check_notify_target(item) for item in items)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def display_name(self) -> str:
        """The budget's name, or one derived from its scope, period and limit."""
        if self.name:
            return self.name
        pinned = f"={self.scope_value}" if self.scope_value else ""
        limit = format(self.max_usd.normalize(), "f")
        return f"{self.scope}{pinned}:{self.period}:{limit}usd"

    def zone(self) -> ZoneInfo:
        """The time zone of the budget's windows."""
        if self.timezone:
            return ZoneInfo(self.timezone)
        from wflo_prefect.costs.settings import get_cost_settings

        return ZoneInfo(get_cost_settings().timezone)

    def window(self, at: datetime | None = None) -> tuple[datetime, datetime | None]:
        """The window (start, end) in UTC that ``at`` (default now) falls in."""
        return window_bounds(self.period, self.zone(), at or datetime.now(UTC))


def check_notify_target(item: Any) -> Any:
    """A block slug, or a URL target (``slack://NAME``, ``email://ADDRESS`` ...)."""
    if isinstance(item, str) and "://" in item:
        from wflo_prefect.policies.targets import parse_target

        parse_target(item)  # a ValueError naming the target when it is a bad one
        return item
    return check_target(item)


_HINTS = {
    "max_usd": "Pass a positive amount of USD, e.g. Budget(max_usd=Decimal('5.00'))",
    "scope": "Use one of flow_run, flow, deployment, user, tag, global",
    "period": "Use one of none, daily, weekly, monthly",
    "alert_thresholds": "Pass fractions of the limit, e.g. (0.5, 0.75, 0.9)",
    "on_exceeded": "Use one of halt, alert, ignore",
    "timezone": "Use an IANA time zone name such as 'UTC' or 'Europe/Berlin'",
}


def window_bounds(period: Period, zone: ZoneInfo, at: datetime) -> tuple[datetime, datetime | None]:
    """Calendar window of ``period`` containing ``at``, as UTC datetimes (end exclusive)."""
    if period == "none":
        return _EPOCH, None
    local = at.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    # Attach the zone to the local wall-clock times (DST-aware), then convert to UTC.
    return (
        start.replace(tzinfo=zone).astimezone(UTC),
        end.replace(tzinfo=zone).astimezone(UTC),
    )
