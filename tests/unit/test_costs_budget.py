"""Budget: validated when built; calendar windows in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from wflo_prefect import Budget, InvalidArgumentError
from wflo_prefect.costs.budget import window_bounds


def test_defaults_and_decimal_limit() -> None:
    """A budget defaults to one flow run, no period, thresholds 50/75/90/100 %, halt."""
    budget = Budget("2.50")
    assert budget.max_usd == Decimal("2.50")
    assert (budget.scope, budget.period, budget.on_exceeded) == ("flow_run", "none", "halt")
    assert budget.alert_thresholds == (
        Decimal("0.5"),
        Decimal("0.75"),
        Decimal("0.9"),
        Decimal("1"),
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_usd": 0}, "max_usd"),
        ({"max_usd": "-1"}, "max_usd"),
        ({"max_usd": 1, "scope": "team"}, "scope"),
        ({"max_usd": 1, "period": "hourly"}, "period"),
        ({"max_usd": 1, "alert_thresholds": (0.5, 1.5)}, "alert_thresholds"),
        ({"max_usd": 1, "on_exceeded": "explode"}, "on_exceeded"),
        ({"max_usd": 1, "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_invalid_budgets_are_refused_when_built(kwargs: dict[str, object], field: str) -> None:
    """Each invalid argument raises InvalidArgumentError naming the field and the fix."""
    with pytest.raises(InvalidArgumentError) as info:
        Budget(**kwargs)
    assert f"Budget({field}=" in str(info.value)
    assert "docs/costs.md" in str(info.value)


def test_tag_budget_needs_its_tag() -> None:
    """scope='tag' without scope_value is refused with an example of the fix."""
    with pytest.raises(InvalidArgumentError, match="scope_value"):
        Budget(1, scope="tag")


def test_thresholds_are_sorted_and_deduplicated() -> None:
    """Thresholds given in any order come back sorted, once each."""
    assert Budget(1, alert_thresholds=(0.9, 0.5, 0.9)).alert_thresholds == (
        Decimal("0.5"),
        Decimal("0.9"),
    )


def test_daily_window_starts_at_local_midnight() -> None:
    """A daily window in Europe/Berlin runs from local midnight to the next."""
    at = datetime(2026, 7, 10, 21, 30, tzinfo=UTC)  # 23:30 in Berlin (UTC+2)
    start, end = window_bounds("daily", ZoneInfo("Europe/Berlin"), at)
    assert start == datetime(2026, 7, 9, 22, 0, tzinfo=UTC)
    assert end == datetime(2026, 7, 10, 22, 0, tzinfo=UTC)
    later = datetime(2026, 7, 10, 22, 30, tzinfo=UTC)  # 00:30 next day in Berlin
    assert window_bounds("daily", ZoneInfo("Europe/Berlin"), later)[0] == end


def test_weekly_window_starts_monday_and_monthly_on_the_first() -> None:
    """Weekly windows start on Monday; monthly ones on the 1st (UTC here)."""
    at = datetime(2026, 11, 19, 12, tzinfo=UTC)  # a Thursday
    assert window_bounds("weekly", ZoneInfo("UTC"), at) == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert window_bounds("monthly", ZoneInfo("UTC"), datetime(2026, 12, 31, 23, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_window_across_a_dst_change_is_23_hours() -> None:
    """The daily window of a spring-forward day in Berlin lasts 23 hours."""
    start, end = window_bounds(
        "daily", ZoneInfo("Europe/Berlin"), datetime(2026, 3, 29, 12, tzinfo=UTC)
    )
    assert end is not None
    assert (end - start).total_seconds() == 23 * 3600


def test_period_none_is_one_window_for_ever() -> None:
    """period='none' has one window, from the epoch, with no end."""
    start, end = Budget(1).window(datetime(2030, 1, 1, tzinfo=UTC))
    assert end is None
    assert start.year == 1970


def test_display_name_is_stable() -> None:
    """Unnamed budgets get a stable name from scope, pinned value, period and limit."""
    assert Budget("5.0", scope="user", scope_value="ann", period="daily").display_name == (
        "user=ann:daily:5usd"
    )
    assert Budget(1, name="team-a").display_name == "team-a"


def test_notify_takes_block_slugs_and_url_targets() -> None:
    """notify= takes '<block-type>/<name>' and the URL targets policies take
    (slack://NAME, email://ADDRESS ...); anything else names the bad target."""
    budget = Budget("1", notify=["slack-webhook/finops", "slack://finops", "email://a@b.io"])
    assert budget.notify == ("slack-webhook/finops", "slack://finops", "email://a@b.io")
    for bad in ("sms://finops", "email://not-an-address", "finops"):
        with pytest.raises(InvalidArgumentError, match=repr(bad)):
            Budget("1", notify=[bad])
