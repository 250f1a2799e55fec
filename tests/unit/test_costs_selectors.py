"""Central budgets' `applies_to` selectors: parsing and matching a run's facts."""

from __future__ import annotations

import pytest

from wflo_prefect import InvalidArgumentError
from wflo_prefect.costs.selectors import RunFacts, parse_selector

DEPLOYMENT_ID = "3f2b8a1e-0c4d-4e5f-9a6b-7c8d9e0f1a2b"
RUN = RunFacts(
    flow_name="research",
    deployment_id=DEPLOYMENT_ID,
    deployment_name="nightly",
    work_pool="gpu",
    user="ann",
    tags=("team-a", "user:ann"),
)


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("global", True),
        ("tag:team-a", True),
        ("tag:team-b", False),
        ("user:ann", True),
        ("user:bob", False),
        ("work_pool:gpu", True),
        ("work_pool:cpu", False),
        ("flow:research", True),
        ("flow:other", False),
        ("deployment:nightly", True),
        ("deployment:research/nightly", True),
        ("deployment:other/nightly", False),
        ("deployment:hourly", False),
        (f"deployment:{DEPLOYMENT_ID}", True),
        (f"deployment:{DEPLOYMENT_ID.upper()}", True),
        ("deployment:00000000-0000-0000-0000-000000000000", False),
    ],
)
def test_selectors_match_the_runs_facts(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(RUN) is matches


def test_a_run_outside_a_deployment_matches_no_deployment_selector() -> None:
    plain = RunFacts(flow_name="research", tags=("team-a",))
    assert not parse_selector("deployment:nightly").matches(plain)
    assert not parse_selector("work_pool:gpu").matches(plain)
    assert parse_selector("tag:team-a").matches(plain)


def test_only_deployment_names_need_the_deployment_read() -> None:
    assert parse_selector("deployment:nightly").needs_deployment_name
    assert not parse_selector(f"deployment:{DEPLOYMENT_ID}").needs_deployment_name
    assert not parse_selector("tag:x").needs_deployment_name


def test_selectors_print_as_written() -> None:
    for text in ("global", "tag:team-a", "deployment:research/nightly", "work_pool:gpu"):
        assert str(parse_selector(text)) == text
    assert str(parse_selector("  tag:team-a ")) == "tag:team-a"


@pytest.mark.parametrize("bad", ["", "team:a", "tag:", "tag: ", "Global", "user", 7, None])
def test_bad_selectors_name_the_value(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="applies_to") as info:
        parse_selector(bad)
    assert info.value.value == bad
    assert "tag:team-a" in str(info.value)  # says what to write
