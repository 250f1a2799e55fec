"""Central budgets (wflo Central Budget blocks) on the real Prefect API: applied to
governed runs with no `budget=` in their code, by tag, deployment, work pool, user,
flow or globally; listed by `wflo budgets central`; their notify targets told when
they stop a run (real local SMTP, and Slack's Web API through slack-sdk and a fake)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from fakes.slack_server import FakeSlack
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.flow_engine import run_flow
from pydantic import SecretStr
from support.net import Inbox, free_port
from typer.testing import CliRunner

from wflo_prefect import (
    Budget,
    BudgetExceeded,
    ConfigurationError,
    EmailApprovalChannel,
    InvalidArgumentError,
    SlackApprovalChannel,
    WfloCentralBudget,
    governed_flow,
    governed_task,
)
from wflo_prefect.cli import app
from wflo_prefect.costs import Attribution, estimate_cost, flush_leases, metered_call
from wflo_prefect.costs.central import clear_central_cache
from wflo_prefect.ledger import Ledger

runner = CliRunner(env={"COLUMNS": "250"})
#: The worst case of one call (1000 tokens in, at most 1000 out).
CALL = estimate_cost("openai", "gpt-4o-mini", input_tokens=1000, output_tokens=1000)


@pytest.fixture(autouse=True)
def no_central_budgets_left() -> Iterator[None]:
    """Central budgets apply to every governed run of the session: remove them after
    each test (and before, in case an earlier run was interrupted)."""
    _delete_all()
    yield
    _delete_all()


def _delete_all() -> None:
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type("wflo-central-budget")
        except PrefectHTTPStatusError:  # the block type is not registered yet
            documents = []
        for document in documents:
            with contextlib.suppress(ObjectNotFound):
                client.delete_block_document(document.id)
    clear_central_cache()


def _save(name: str, applies_to: str, max_usd: Decimal = CALL * 2, **fields: object) -> str:
    WfloCentralBudget(max_usd=max_usd, applies_to=applies_to, **fields).save(  # type: ignore[arg-type]
        name, overwrite=True
    )
    return name


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@governed_task
def one_call() -> None:
    with metered_call("openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000) as c:
        c.settle(input_tokens=1000, output_tokens=1000)


@governed_flow
def unbudgeted(calls: int, user: str = "ann") -> int:
    """No `budget=` anywhere in this flow's code."""
    for _ in range(calls):
        one_call()
    return calls


def _spent(ledger: Ledger, name: str) -> Decimal:
    flush_leases()
    return sum((w.spent_usd for w in ledger.costs.windows(f"{name}|")), Decimal(0))


def test_a_central_tag_budget_halts_a_flow_without_budget_in_its_code(ledger: Ledger) -> None:
    """A run tagged team-a is stopped at its third call; a run without the tag is not."""
    team = _unique("team")
    name = _save(_unique("tag-budget"), f"tag:{team}")
    with tags(team):
        state = unbudgeted(5, return_state=True)
    assert state.name == "BudgetExceeded"
    with pytest.raises(BudgetExceeded) as info:
        state.result()
    assert info.value.budget_name == name
    assert len(ledger.costs.entries()) == 2  # the third call was refused before it was sent
    assert _spent(ledger, name) == CALL * 2

    assert unbudgeted(5, return_state=True).is_completed()  # not tagged: not governed by it
    assert _spent(ledger, name) == CALL * 2
    assert len(ledger.costs.entries()) == 7


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_a_runs_attribution_is_read_once_not_per_task(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, enabled: str
) -> None:
    """Every governed task asks which central budgets apply. Only the run's first ask
    reads its attribution (tags, parameters, user) and the settings; the others are a
    lookup by flow run id, whether central budgets are on or off."""
    import wflo_prefect.costs.guard as guard

    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_COSTS_CENTRAL_BUDGETS", enabled)
    built: list[str | None] = []
    real = guard.current_attribution

    def counting() -> Attribution:
        who = real()
        built.append(who.flow_run_id)
        return who

    monkeypatch.setattr(guard, "current_attribution", counting)
    name = _save(_unique("global"), "global", max_usd=CALL * 3)
    state = unbudgeted(2, return_state=True)
    assert state.is_completed()
    assert built == [str(state.state_details.flow_run_id)]
    assert _spent(ledger, name) == (CALL * 2 if enabled == "true" else 0)


def test_a_global_central_budget_applies_to_every_governed_run(ledger: Ledger) -> None:
    """A global budget pools every run: the second run is stopped where the first left off."""
    name = _save(_unique("global"), "global", max_usd=CALL * 3)
    assert unbudgeted(2, return_state=True).is_completed()
    state = unbudgeted(2, return_state=True)
    assert state.name == "BudgetExceeded"
    assert _spent(ledger, name) == CALL * 3


def test_a_non_matching_central_budget_does_not_apply(ledger: Ledger) -> None:
    """Budgets for another tag, user, flow, work pool or deployment leave the run alone."""
    for selector in (
        "tag:someone-else",
        "user:zed",
        "flow:another-flow",
        "work_pool:no-such-pool",
        "deployment:unbudgeted/nightly",
    ):
        _save(_unique("other"), selector, max_usd=CALL / 10)
    assert unbudgeted(3, "ann", return_state=True).is_completed()
    assert ledger.costs.windows() == []


def test_user_and_flow_selectors_use_the_runs_attribution(ledger: Ledger) -> None:
    """`user:dave` halts dave's run (the `user` parameter), not erin's; `flow:` names the flow."""
    dave = _save(_unique("dave"), "user:dave")
    flow_budget = _save(_unique("flow"), "flow:unbudgeted", max_usd=Decimal("10"))
    assert unbudgeted(3, "dave", return_state=True).name == "BudgetExceeded"
    assert unbudgeted(3, "erin", return_state=True).is_completed()
    assert _spent(ledger, dave) == CALL * 2
    assert _spent(ledger, flow_budget) == CALL * 5


def test_two_matching_budgets_both_count_with_the_codes_budget(any_ledger: Ledger) -> None:
    """A deployment run matching a deployment and a work-pool budget (and its code's own
    budget) counts each call to all three; the tightest stops it (SQLite and PostgreSQL)."""
    ledger = any_ledger
    pool = _unique("pool")
    by_deployment = _save(_unique("dep"), "deployment:deployed-research/nightly", CALL * 10)
    by_pool = _save(_unique("pool-budget"), f"work_pool:{pool}", CALL * 3)

    @governed_flow(name="deployed-research", budget=Budget(CALL * 100, name="in-code"))
    def deployed(calls: int) -> None:
        for _ in range(calls):
            one_call()

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        deployment_id = deployed.to_deployment(name="nightly", work_pool_name=pool).apply()
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters={"calls": 5})
    state = run_flow(deployed, flow_run=flow_run, return_type="state")
    assert state.name == "BudgetExceeded"  # type: ignore[union-attr]
    assert _spent(ledger, by_pool) == CALL * 3
    assert _spent(ledger, by_deployment) == CALL * 3
    assert _spent(ledger, "in-code") == CALL * 3
    [window] = ledger.costs.windows(f"{by_deployment}|")
    assert window.budget_key == f"{by_deployment}|global=*"

    result = runner.invoke(app, ["budgets", "central"])
    assert result.exit_code == 0, result.output
    assert f"work_pool:{pool}" in result.output
    assert "deployment:deployed-research/nightly" in result.output
    row = next(line for line in result.output.splitlines() if by_pool in line)
    assert str(CALL * 3) in row
    assert "100.0%" in row
    assert "monthly" in row


def test_a_deployment_selector_by_id_matches_without_reading_the_deployment(
    ledger: Ledger,
) -> None:
    """`deployment:<id>` selects one deployment by its id."""

    @governed_flow(name="by-id-research")
    def by_id(calls: int) -> None:
        for _ in range(calls):
            one_call()

    deployment_id = by_id.to_deployment(name="hourly").apply()
    name = _save(_unique("by-id"), f"deployment:{deployment_id}")
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters={"calls": 4})
    state = run_flow(by_id, flow_run=flow_run, return_type="state")
    assert state.name == "BudgetExceeded"  # type: ignore[union-attr]
    assert _spent(ledger, name) == CALL * 2


def test_the_cli_lists_central_budgets_and_says_when_there_are_none(ledger: Ledger) -> None:
    """`wflo budgets central` lists selector, scope, limit, period, notify and spend."""
    empty = runner.invoke(app, ["budgets", "central"])
    assert empty.exit_code == 0, empty.output
    assert "No central budgets saved" in empty.output
    team = _unique("team")
    name = _save(
        _unique("listed"),
        f"tag:{team}",
        max_usd=Decimal("4"),
        period="daily",
        scope="flow_run",
        notify=["email://finops@example.com"],
    )
    with tags(team):
        assert unbudgeted(2, return_state=True).is_completed()
    flush_leases()
    result = runner.invoke(app, ["budgets", "central"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if name in line)
    for text in (f"tag:{team}", "flow_run", "4", "daily", "email://finops@example.com"):
        assert text in row, (text, row)
    assert str(CALL * 2) in row


def test_bad_selectors_are_refused_naming_the_value() -> None:
    """A selector wflo does not understand is an InvalidArgumentError naming it."""
    for bad in ("team:a", "tag:", "everyone", "deployment"):
        with pytest.raises(InvalidArgumentError, match=repr(bad)):
            WfloCentralBudget(max_usd=Decimal("1"), applies_to=bad)


def test_bad_notify_targets_are_refused_when_the_block_is_built() -> None:
    """A notify target that is neither a block slug nor a known URL is refused at once."""
    with pytest.raises(InvalidArgumentError, match="sms://finops"):
        WfloCentralBudget(max_usd=Decimal("1"), notify=["sms://finops"])
    block = WfloCentralBudget(max_usd=Decimal("1"), notify=["email://finops@example.com"])
    assert block.to_budget("ok").notify == ("email://finops@example.com",)


def test_an_invalid_saved_document_stops_runs_with_a_clear_error(ledger: Ledger) -> None:
    """A document edited through the API into a bad selector is not skipped silently:
    governed runs refuse to start, naming the block."""
    name = _save(_unique("broken"), "global")
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name, "wflo-central-budget")
        from prefect.client.schemas.actions import BlockDocumentUpdate

        client.update_block_document(
            document.id,
            BlockDocumentUpdate(data={**document.data, "applies_to": "team:a"}),
        )
    clear_central_cache()
    state = unbudgeted(1, return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigurationError, match=name):
        state.result()
    assert ledger.costs.entries() == []


def test_a_halting_central_budget_emails_its_notify_targets_when_it_stops_a_run(
    ledger: Ledger,
) -> None:
    """The notify= targets of a halting budget get one message per stopped run (real
    SMTP), and the delivery is audited."""
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    via = _unique("finops-mail")
    try:
        EmailApprovalChannel(
            smtp_host="127.0.0.1", smtp_port=port, sender="wflo@example.com", starttls=False
        ).save(via, overwrite=True)
        team = _unique("team")
        name = _save(
            _unique("notifying"),
            f"tag:{team}",
            alert_thresholds=[Decimal("0.99")],
            notify=[f"email://finops@example.com?via={via}"],
        )
        with tags(team):
            first = unbudgeted(5, return_state=True)
            second = unbudgeted(5, return_state=True)
    finally:
        smtp.stop()
    assert first.name == second.name == "BudgetExceeded"
    stops = [m for m in inbox.mails if "stopped a run" in str(m["Subject"])]
    assert len(stops) == 2, [m["Subject"] for m in inbox.mails]
    assert all(m["To"] == "finops@example.com" for m in stops)
    bodies = [m.get_payload(decode=True).decode() for m in stops]
    assert str(first.state_details.flow_run_id) in bodies[0]
    assert str(second.state_details.flow_run_id) in bodies[1]
    assert name in str(stops[0]["Subject"])
    notified = ledger.audit.recent(50, event_prefix="budget.notified")
    assert sorted((e.payload["alert"], e.outcome) for e in notified) == [
        ("0.99", "sent"),  # the threshold, once in the window
        ("refused", "sent"),  # each stopped run
        ("refused", "sent"),
    ]
    assert {e.flow_run_id for e in notified if e.payload["alert"] == "refused"} == {
        str(first.state_details.flow_run_id),
        str(second.state_details.flow_run_id),
    }


def test_a_halting_central_budget_posts_to_slack_when_it_stops_a_run(ledger: Ledger) -> None:
    """A Slack channel block as a notify target gets the stop through slack-sdk (fake
    Slack Web API); a channel whose token Slack refuses is audited as failed, and the
    run still ends with the budget's own error."""
    slack = FakeSlack()
    try:
        good, bad = _unique("finops-slack"), _unique("bad-slack")
        SlackApprovalChannel(
            token=SecretStr(slack.token), channel="#finops", base_url=slack.base_url
        ).save(good, overwrite=True)
        SlackApprovalChannel(
            token=SecretStr("xoxb-wrong"), channel="#finops", base_url=slack.base_url
        ).save(bad, overwrite=True)
        name = _save(
            _unique("slack-notifying"),
            "global",
            alert_thresholds=[Decimal("1")],
            notify=[f"wflo-slack-approval-channel/{good}", f"wflo-slack-approval-channel/{bad}"],
        )
        state = unbudgeted(4, return_state=True)
    finally:
        slack.close()
    assert state.name == "BudgetExceeded"
    texts = [str(m["text"]) for m in slack.messages.values()]
    stops = [t for t in texts if "stopped a run" in t]
    assert len(stops) == 1, texts
    assert name in stops[0]
    assert str(state.state_details.flow_run_id) in stops[0]
    assert all(m["channel"] == "#finops" for m in slack.messages.values())
    refused = [
        e
        for e in ledger.audit.recent(50, event_prefix="budget.notified")
        if e.payload["alert"] == "refused"
    ]
    outcomes = {e.payload["target"].split("/")[1]: e.outcome for e in refused}
    assert outcomes[good] == "sent"
    assert outcomes[bad].startswith("failed:")
    assert "invalid_auth" in outcomes[bad]


def test_an_async_governed_flow_is_held_to_a_central_budget(ledger: Ledger) -> None:
    """Async flows discover central budgets the same way (the read runs off the loop)."""
    team = _unique("team")
    name = _save(_unique("async"), f"tag:{team}")

    @governed_flow
    async def async_unbudgeted(calls: int) -> None:
        for _ in range(calls):
            one_call()

    with tags(team):
        state = asyncio.run(async_unbudgeted(4, return_state=True))  # type: ignore[arg-type]
    assert state.name == "BudgetExceeded"
    assert _spent(ledger, name) == CALL * 2


def test_concurrent_tasks_of_a_run_never_overrun_a_central_budget(any_ledger: Ledger) -> None:
    """Ten tasks submitted at once (thread pool) are all held to the run's central budget:
    exactly the three that fit are charged, the rest refused (SQLite and PostgreSQL)."""
    team = _unique("team")
    name = _save(_unique("concurrent"), f"tag:{team}", max_usd=CALL * 3)

    @governed_flow
    def fan_out(calls: int) -> int:
        futures = [one_call.submit() for _ in range(calls)]
        done = 0
        for future in futures:
            try:
                future.result()
                done += 1
            except BudgetExceeded:
                pass
        return done

    with tags(team):
        assert fan_out(10) == 3
    assert _spent(any_ledger, name) == CALL * 3
    assert len(any_ledger.costs.entries()) == 3
