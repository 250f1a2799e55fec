"""Channels and the approval service: Slack, e-mail links, REST API, PagerDuty."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from aiosmtpd.controller import Controller
from approval_support import paused_request, start_flow, wait_for
from fakes.pagerduty_server import FakePagerDuty
from fakes.slack_server import FakeSlack
from fastapi.testclient import TestClient
from prefect import flow
from slack_sdk.signature import SignatureVerifier
from test_approvals_gate import KEYS, directory

from tests.support.net import Inbox, free_port
from wflo_prefect import (
    EmailApprovalChannel,
    PagerDutyApprovalChannel,
    SlackApprovalChannel,
    require_approval,
)
from wflo_prefect.approvals.service import create_app
from wflo_prefect.ledger import Ledger

SIGNING_SECRET = "slack-signing-secret"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The approval service app with link and Slack secrets configured."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET", "link-secret")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_SERVICE_URL", "http://testserver")
    with TestClient(create_app(sweep_every=0)) as client:
        yield client


def _gated_flow(action: str, channel: Any) -> Any:
    @flow
    def gated() -> object:
        return require_approval(
            action,
            details={"rows": 42},
            approvers=["ops"],
            principals=directory(),
            notify=[channel],
            timeout=120,
        )

    return gated


def _slack_post(
    client: TestClient,
    payload: dict[str, Any],
    *,
    timestamp: int | None = None,
    secret: str = SIGNING_SECRET,
) -> Any:
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    return client.post("/slack/interactions", content=body, headers=headers)


def test_slack_buttons_approve_through_signed_interactivity(
    ledger: Ledger, service: TestClient
) -> None:
    """A signed click by an approver approves; forged, stale and outsider clicks do not."""
    slack = FakeSlack()
    channel = SlackApprovalChannel(
        token="xoxb-test-token", channel="C0OPS", base_url=slack.base_url
    )
    future = start_flow(_gated_flow("scale down", channel))
    try:
        assert slack.posted.wait(30)
        message = next(iter(slack.messages.values()))
        buttons = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
        approve = next(b for b in buttons if b["action_id"] == "wflo_approve")

        def click(user: str, ts: str) -> dict[str, Any]:
            return {
                "type": "block_actions",
                "user": {"id": user},
                "actions": [{**approve, "action_ts": ts}],
            }

        assert _slack_post(service, click("UBOB", "1.0"), secret="forged").status_code == 401
        stale = _slack_post(service, click("UBOB", "1.1"), timestamp=int(time.time()) - 600)
        assert stale.status_code == 401
        outsider = _slack_post(service, click("UMALLORY", "1.2")).json()
        assert outsider == {
            "ok": False,
            "reason": "not_an_approver",
            "text": "You are not an approver.",
        }
        request = paused_request("scale down")
        assert request.status == "pending"
        ok = _slack_post(service, click("UBOB", "1.3")).json()
        assert ok == {"ok": True, "status": "approved", "approver": "bob"}
        decision = future.result(timeout=60).result()
        assert decision.approvers == ["bob"]
        assert decision.channel == "slack"
        assert slack.updated.wait(10)
        assert "Approved" in str(next(iter(slack.messages.values()))["text"])
    finally:
        slack.close()


def test_email_link_resumes_run_once(ledger: Ledger, service: TestClient) -> None:
    """Each approver gets a mail over real SMTP; its approve link resumes the run, once."""
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        channel = EmailApprovalChannel(
            smtp_host="127.0.0.1", smtp_port=port, sender="wflo@example.com", starttls=False
        )
        future = start_flow(_gated_flow("send invoices", channel))
        wait_for(lambda: len(inbox.mails) == 3, what="three e-mails")
    finally:
        smtp.stop()
    to_carol = next(m for m in inbox.mails if m["To"] == "carol@example.com")
    text = to_carol.get_payload(decode=True).decode()
    link = re.search(r"Approve: (\S+)", text)
    assert link is not None
    assert "one-time code" in text
    path = urlsplit(link.group(1)).path
    # Opening the link (as a mail scanner would) only shows what it will decide.
    shown = service.get(path)
    assert shown.status_code == 200, shown.text
    assert '<form method="post">' in shown.text
    assert "Approve as carol" in shown.text
    [request] = ledger.approvals.list_requests()
    assert ledger.approvals.get(request.id).status == "pending"  # type: ignore[union-attr]
    assert service.get(path).status_code == 200, "opening it again changes nothing"
    first = service.post(path)
    assert first.status_code == 200, first.text
    decision = future.result(timeout=60).result()
    assert decision.approvers == ["carol"]
    assert decision.channel == "email-link"
    assert service.post(path).status_code == 409
    assert service.get(path).status_code == 409, "a decided request says so"
    tampered = path[:-3] + "abc"
    assert service.get(tampered).status_code == 401
    assert service.post(tampered).status_code == 401


def test_rest_api_decides_and_pagerduty_alert_is_resolved(
    ledger: Ledger, service: TestClient
) -> None:
    """REST: inbox by API key, bad key refused, decision resumes run; PD trigger then resolve."""
    pagerduty = FakePagerDuty()
    channel = PagerDutyApprovalChannel(routing_key="R0UTING", events_url=pagerduty.url)
    future = start_flow(_gated_flow("rotate certs", channel))
    try:
        request = paused_request("rotate certs")
        wait_for(lambda: pagerduty.events, what="a PagerDuty trigger")
        assert service.get("/api/approvals", headers={"X-API-Key": "nope"}).json() == []
        inbox = service.get("/api/approvals", headers={"X-API-Key": KEYS["carol"]}).json()
        assert [(r["id"], r["you"]) for r in inbox] == [(request.id, "carol")]
        bad = service.post(
            f"/api/approvals/{request.id}/decision",
            json={"approve": True, "digest": request.digest},
            headers={"X-API-Key": "nope"},
        )
        assert bad.status_code == 401
        stale = service.post(
            f"/api/approvals/{request.id}/decision",
            json={"approve": True, "digest": "f" * 64},
            headers={"X-API-Key": KEYS["carol"]},
        )
        assert stale.status_code == 409
        assert stale.json()["detail"]["reason"] == "digest_mismatch"
        ok = service.post(
            f"/api/approvals/{request.id}/decision",
            json={"approve": False, "digest": request.digest, "comment": "no"},
            headers={"X-API-Key": KEYS["carol"]},
        )
        assert ok.json() == {"request_id": request.id, "status": "rejected", "approver": "carol"}
        state = future.result(timeout=60)
        assert state.is_failed()
        assert pagerduty.resolved.wait(10)
        actions = [e["event_action"] for e in pagerduty.events]
        assert actions == ["trigger", "resolve"]
        assert {e["dedup_key"] for e in pagerduty.events} == {f"wflo-approval-{request.id}"}
    finally:
        pagerduty.close()


def test_openapi_document_lists_the_decision_routes(service: TestClient) -> None:
    """The service publishes its OpenAPI document with the REST, Slack and link routes."""
    paths = service.get("/openapi.json").json()["paths"]
    assert {
        "/api/approvals",
        "/api/approvals/{request_id}/decision",
        "/slack/interactions",
        "/links/{token}",
    } <= set(paths)


def test_wflo_approvals_serve_runs_the_service(tmp_path: Any) -> None:
    """`wflo approvals serve` starts uvicorn with the app: health and OpenAPI answer."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    port = free_port()
    wflo = str(Path(sys.executable).with_name("wflo"))
    server = subprocess.Popen(
        [wflo, "approvals", "serve", "--port", str(port), "--sweep-every", "0"],
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json() == {
                    "status": "ok"
                }
            except httpx.HTTPError:
                return False

        assert wait_for(healthy, timeout=60, what="the approval service")
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        assert spec["info"]["title"] == "wflo approvals"
    finally:
        server.terminate()
        server.wait(timeout=30)
