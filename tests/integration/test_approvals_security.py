"""Holes a red-team pass found in approval gates, each closed as a class (issue 10, items 6-10)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from approval_support import paused_request, refusals, run_logs, start_flow, wait_for
from fakes.pagerduty_server import FakePagerDuty
from fakes.slack_server import FakeSlack
from fakes.webhook_receiver import WebhookReceiver
from fastapi.testclient import TestClient
from prefect import flow
from prefect.flow_runs import resume_flow_run
from test_approvals_channels import SIGNING_SECRET, _slack_post
from test_approvals_gate import KEYS, directory

from tests.support.net import Inbox, free_port
from wflo_prefect import (
    ApprovalPolicy,
    ApprovalRejected,
    Approvers,
    EmailApprovalChannel,
    InvalidArgumentError,
    PagerDutyApprovalChannel,
    SlackApprovalChannel,
    WebhookApprovalChannel,
    governed_task,
    require_approval,
)
from wflo_prefect.approvals import EscalationTier, Principal, Vote, decide, hash_api_key
from wflo_prefect.approvals.channels import ApprovalChannel, ApprovalMessage, Delivery
from wflo_prefect.approvals.decisions import MAX_UI_PROOF_FAILURES, one_time_code
from wflo_prefect.approvals.links import make_link_token
from wflo_prefect.approvals.notify import build_message, message_for
from wflo_prefect.approvals.prefect_run import read_state
from wflo_prefect.approvals.service import create_app
from wflo_prefect.approvals.ui_answers import count_ui_answer
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

LINK_SECRET = "link-secret"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The approval service with link and Slack secrets (the gates sign links too)."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET", LINK_SECRET)
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_SERVICE_URL", "http://testserver")
    with TestClient(create_app(sweep_every=0)) as client:
        yield client


def _stored(ledger: Ledger, *, status: str = "pending") -> ApprovalRequestRecord:
    """A request of alice, bob and carol (quorum 2) stored directly in the ledger."""
    record = ledger.approvals.create(
        action="wire money",
        details={"eur": "100.00"},
        digest="a" * 64,
        approvers=list(KEYS),
        quorum=2,
        status=status,
        policy={
            "principals": {
                n: {"email": None, "slack_id": f"U{n.upper()}", "api_key_hashes": [hash_api_key(k)]}
                for n, k in KEYS.items()
            }
        },
    )
    return record


# --- item 6: a message to several people carries nobody's credentials --------------------


_BOARD: list[ApprovalMessage] = []


class _TeamBoard(ApprovalChannel):
    """A custom channel that does not declare per-recipient delivery."""

    _block_type_slug = "wflo-test-team-board"

    def channel_name(self) -> str:
        return "board"

    def send(self, message: ApprovalMessage) -> Delivery:
        _BOARD.append(message)
        return Delivery("board", delivered=True)


def _link_approver(url: str) -> str:
    body = url.rsplit("/", 1)[-1].split(".")[0]
    claim = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return str(claim["a"])


def test_shared_messages_carry_no_approver_credentials(ledger: Ledger, service: TestClient) -> None:
    """Webhook, PagerDuty, Slack, a custom channel and a shared mailbox get no links or codes."""
    team = Approvers(
        users=[
            Principal(name="alice", email="alice@example.com", slack_id="UALICE"),
            Principal(name="bob", email="team@example.com", slack_id="UBOB"),
            Principal(name="carol", email="TEAM@example.com", slack_id="UCAROL"),
        ]
    )
    receiver = WebhookReceiver("hook-secret")
    pagerduty = FakePagerDuty()
    slack = FakeSlack()
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    channels = [
        WebhookApprovalChannel(url=receiver.url, secret="hook-secret"),
        PagerDutyApprovalChannel(routing_key="R0UTING", events_url=pagerduty.url),
        SlackApprovalChannel(token="xoxb-test-token", channel="C0OPS", base_url=slack.base_url),
        EmailApprovalChannel(
            smtp_host="127.0.0.1", smtp_port=port, sender="wflo@example.com", starttls=False
        ),
        _TeamBoard(),
    ]
    _BOARD.clear()

    @flow
    def payout() -> object:
        return require_approval("pay out", principals=team, quorum=3, notify=channels, timeout=120)

    future = start_flow(payout)
    try:
        request = paused_request("pay out")
        wait_for(
            lambda: receiver.received and pagerduty.events and slack.messages and _BOARD,
            what="webhook, PagerDuty, Slack and custom deliveries",
        )
        wait_for(lambda: len(inbox.mails) == 2, what="two e-mails (one personal, one shared)")
        codes = [one_time_code(request, n) for n in ("alice", "bob", "carol")]
        shared_texts = {
            "webhook": json.dumps(receiver.received[0][1]),
            "pagerduty": json.dumps(pagerduty.events[0]),
            "slack": json.dumps(next(iter(slack.messages.values()))),
            "custom": repr(_BOARD[0]),
        }
        for name, text in shared_texts.items():
            assert "/links/" not in text, name
            assert not any(code in text for code in codes), name
        assert _BOARD[0].links == {}
        assert _BOARD[0].codes == {}
        mails = {m["To"].lower(): m.get_payload(decode=True).decode() for m in inbox.mails}
        shared = mails["team@example.com"]
        assert "/links/" not in shared
        assert not any(code in shared for code in codes)
        personal = mails["alice@example.com"]
        assert {
            _link_approver(u) for u in re.findall(r"http://testserver/links/\S+", personal)
        } == {"alice"}
        assert one_time_code(request, "alice") in personal
        assert not any(code in personal for code in codes[1:])
        full = build_message(request, 0)
        assert full.links, "the gate still makes per-approver links"
        assert full.codes, "and per-approver codes"
        assert message_for(channels[0], full).links == {}
        decide(request.id, Vote("alice", False, request.digest, "cli"))
        future.result(timeout=60)
    finally:
        smtp.stop()
        receiver.close()
        pagerduty.close()
        slack.close()


# --- item 7: names nobody can prove are refused where the gate is defined ------------------


def test_unverifiable_approver_names_are_refused_at_definition() -> None:
    """Named approvers or a quorum above 1 without principals raise InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match="principals=") as caught:
        require_approval("rotate keys", approvers=["bob", "carol"], quorum=2)
    assert caught.value.value == ["bob", "carol"]
    with pytest.raises(InvalidArgumentError, match="principals="):
        ApprovalPolicy(approvers=["bob"])
    with pytest.raises(InvalidArgumentError, match="principals="):
        ApprovalPolicy(timeout=60, escalation=[EscalationTier(approvers=["cfo"], timeout=60)])
    with pytest.raises(InvalidArgumentError, match="quorum=2"):
        ApprovalPolicy(quorum=2)
    with pytest.raises(InvalidArgumentError, match="principals="):

        @governed_task(approval=ApprovalPolicy(approvers=["ops-lead"]))
        def purge() -> None:
            """Never defined: its gate names an approver nobody can verify."""

    assert ApprovalPolicy(timeout=600).approvers == []
    assert ApprovalPolicy(approvers=["bob"], principals=directory(), quorum=1).approvers == ["bob"]


def test_ui_answers_under_other_names_do_not_meet_a_quorum(ledger: Ledger) -> None:
    """Principals without names: all users are approvers; typed names without codes count 0."""

    @flow
    def migrate() -> object:
        return require_approval("migrate", principals=directory(), quorum=2, timeout=120)

    future = start_flow(migrate)
    request = paused_request("migrate")
    assert request.approvers == ["alice", "bob", "carol"]
    flow_run_id = request.flow_run_id or ""
    answer = {"decision": "approve", "code": "", "comment": ""}
    keyset = request.keyset
    for name in ("bob", "carol"):
        resume_flow_run(flow_run_id, run_input={**answer, "approver": name})
        keyset = paused_request("migrate", not_keyset=keyset).keyset
    assert ledger.approvals.votes(request.id) == []
    assert [e.outcome for e in refusals(channel="prefect-ui")] == ["bad_credentials"] * 2
    decide(request.id, Vote("bob", False, request.digest, "cli"))
    future.result(timeout=60)


# --- items 8 and 10: UI codes are limited; every refused form answer is explained ----------


def test_ui_code_guessing_locks_the_approver_out_of_the_request(ledger: Ledger) -> None:
    """Five wrong codes lock alice's form answers (even the right code); bob is unaffected."""

    @flow
    def release() -> object:
        return require_approval(
            "release", approvers=["alice", "bob"], principals=directory(), timeout=300
        )

    future = start_flow(release)
    request = paused_request("release")
    flow_run_id = request.flow_run_id or ""
    answer = {"decision": "approve", "approver": "alice", "comment": ""}
    keyset = request.keyset
    for guess in range(MAX_UI_PROOF_FAILURES):
        resume_flow_run(flow_run_id, run_input={**answer, "code": f"{guess:08d}"})
        keyset = paused_request("release", not_keyset=keyset).keyset
    resume_flow_run(flow_run_id, run_input={**answer, "code": one_time_code(request, "alice")})
    keyset = paused_request("release", not_keyset=keyset).keyset
    assert ledger.approvals.votes(request.id) == []
    outcomes = [e.outcome for e in reversed(refusals(channel="prefect-ui"))]
    assert outcomes == ["bad_credentials"] * MAX_UI_PROOF_FAILURES + ["locked_out"]
    wait_for(
        lambda: any("locked_out" in m for m in run_logs(flow_run_id)),
        what="the lock-out explained in the run's logs",
    )
    bob = {**answer, "approver": "bob", "code": one_time_code(request, "bob")}
    resume_flow_run(flow_run_id, run_input=bob)
    decision = future.result(timeout=60).result()
    assert decision.approvers == ["bob"]


def test_every_refused_form_answer_is_logged_in_the_run(ledger: Ledger) -> None:
    """A wrong code is logged with why and re-pauses; answers the form forbids never resume."""

    @flow
    def ship() -> object:
        return require_approval("ship", approvers=["alice"], principals=directory(), timeout=300)

    future = start_flow(ship)
    request = paused_request("ship")
    flow_run_id = request.flow_run_id or ""
    good = {
        "decision": "approve",
        "approver": "alice",
        "code": one_time_code(request, "alice"),
        "comment": "",
    }
    # The form's schema (validated by Prefect's server) refuses these before wflo sees them.
    no_choice = {k: v for k, v in good.items() if k != "decision"}
    for forbidden in (no_choice, {**good, "approver": "mallory"}, {**good, "approve": True}):
        with pytest.raises(RuntimeError, match="Validation failed"):
            resume_flow_run(flow_run_id, run_input=forbidden)
    resume_flow_run(flow_run_id, run_input={**good, "code": "00000000"})
    paused_request("ship", not_keyset=request.keyset)

    def explained() -> list[str]:
        return [m for m in run_logs(flow_run_id) if "Approval answer not counted" in m]

    (line,) = wait_for(explained, what="the refusal in the run's logs")
    assert "(bad_credentials)" in line
    assert "form" in line.lower()
    assert good["code"] not in line
    assert [e.outcome for e in refusals(channel="prefect-ui")] == ["bad_credentials"]
    state = read_state(flow_run_id)
    assert state is not None
    assert state.is_paused()
    resume_flow_run(flow_run_id, run_input=good)
    assert future.result(timeout=60).result().approved


def test_blank_names_and_empty_answers_are_refused_and_logged(ledger: Ledger) -> None:
    """Answers that pass the form but not wflo (a blank name, an empty answer) are logged."""

    @flow
    def tidy() -> object:
        return require_approval("tidy", timeout=300)

    future = start_flow(tidy)
    request = paused_request("tidy")
    flow_run_id = request.flow_run_id or ""
    run_id = UUID(flow_run_id)
    # What the gate does with what it reads from Prefect's run input (see waiter.py).
    count_ui_answer(request, {"decision": "approve", "approver": "  "}, run_id)
    count_ui_answer(request, None, run_id)
    count_ui_answer(request, {"approver": "dana"}, run_id)
    expected = ["missing_approver", "no_answer", "no_answer"]
    assert [e.outcome for e in reversed(refusals(channel="prefect-ui"))] == expected

    def explained() -> list[str]:
        lines = [m for m in run_logs(flow_run_id) if "Approval answer not counted" in m]
        return lines if len(lines) >= 3 else []

    lines = wait_for(explained, what="three refusals in the run's logs")
    assert "decision" in lines[2]
    resume_flow_run(flow_run_id, run_input={"decision": "reject", "approver": "dana"})
    with pytest.raises(ApprovalRejected):
        future.result(timeout=60).result()


def test_slack_refusals_are_audited_and_a_missing_timestamp_is_a_4xx(
    ledger: Ledger, service: TestClient
) -> None:
    """A missing or garbled timestamp is a 401; forged, outsider, unknown clicks are audited."""
    request = _stored(ledger)
    body = "payload=%7B%7D"
    for headers in ({}, {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=x"}):
        answer = service.post(
            "/slack/interactions",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        assert answer.status_code == 401
    value = json.dumps({"request_id": request.id, "digest": request.digest})

    def click(user: str, request_value: str = value) -> dict[str, Any]:
        action = {
            "action_id": "wflo_approve",
            "value": request_value,
            "action_ts": str(time.time()),
        }
        return {"type": "block_actions", "user": {"id": user}, "actions": [action]}

    assert _slack_post(service, click("UMALLORY")).json()["reason"] == "not_an_approver"
    unknown = json.dumps({"request_id": "0" * 36, "digest": request.digest})
    assert _slack_post(service, click("UBOB", unknown)).json()["reason"] == "unknown_request"
    assert _slack_post(service, click("UBOB"), secret="forged").status_code == 401
    garbled = service.post(
        "/slack/interactions",
        content="payload=%7Bnot-json",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": _signature("payload=%7Bnot-json"),
        },
    )
    assert garbled.status_code == 400
    audited = [(e.outcome, e.actor, e.payload["request_id"]) for e in refusals(channel="slack")]
    assert list(reversed(audited)) == [
        ("bad_credentials", None, None),
        ("bad_credentials", None, None),
        ("not_an_approver", "slack:UMALLORY", request.id),
        ("unknown_request", "slack:UBOB", "0" * 36),
        ("bad_credentials", None, None),
    ]


def _signature(body: str) -> str:
    from slack_sdk.signature import SignatureVerifier

    return SignatureVerifier(SIGNING_SECRET).generate_signature(
        timestamp=str(int(time.time())), body=body
    )


def test_rest_api_is_no_oracle_for_request_ids_and_audits_401s(
    ledger: Ledger, service: TestClient
) -> None:
    """Without an approver's key, an unknown and a real id get the same 401, each audited."""
    request = _stored(ledger)
    unknown = "f" * 8 + request.id[8:]
    answers = []
    for request_id in (unknown, request.id, request.id[:8]):
        for key in ({}, {"X-API-Key": "nope"}):
            got = service.get(f"/api/approvals/{request_id}", headers=key)
            posted = service.post(
                f"/api/approvals/{request_id}/decision",
                json={"approve": True, "digest": request.digest},
                headers=key,
            )
            answers += [(got.status_code, got.json()), (posted.status_code, posted.json())]
    assert {status for status, _ in answers} == {401}
    assert len({json.dumps(body) for _, body in answers}) == 1
    api = refusals(channel="api")
    assert len(api) == len(answers)
    assert {e.outcome for e in api} == {"bad_credentials"}
    # Full id (4 calls) and, once a key was sent, the prefix resolved to the id (2).
    assert sum(e.payload["request_id"] == request.id for e in api) == 6
    mine = service.get(f"/api/approvals/{request.id}", headers={"X-API-Key": KEYS["bob"]})
    assert mine.json()["you"] == "bob"
    assert (
        service.get(f"/api/approvals/{unknown}", headers={"X-API-Key": KEYS["bob"]}).status_code
        == 401
    )


def test_refused_links_are_audited(ledger: Ledger, service: TestClient) -> None:
    """A tampered link (401) and an expired one (410) are audited as approval.refused."""
    from pydantic import SecretStr

    request = _stored(ledger)
    token = make_link_token(
        SecretStr(LINK_SECRET),
        request_id=request.id,
        approver="carol",
        approve=True,
        digest=request.digest,
        ttl_seconds=-5,
    )
    assert service.post(f"/links/{token}").status_code == 410
    assert service.post(f"/links/{token[:-3]}abc").status_code == 401
    audited = [(e.outcome, e.payload["request_id"]) for e in refusals(channel="email-link")]
    assert list(reversed(audited)) == [("expired", request.id), ("bad_credentials", None)]
    assert ledger.approvals.get(request.id).status == "pending"  # type: ignore[union-attr]
