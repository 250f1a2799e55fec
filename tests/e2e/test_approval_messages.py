"""What an approver receives by e-mail and in Slack, opened in a real Chromium.

The e-mail goes through EmailApprovalChannel over real SMTP to a local aiosmtpd
server and is shown exactly as received (its HTML part, or its text part in a
``<pre>``). The Slack message is the Block Kit ``blocks`` of the real
``chat.postMessage`` request slack-sdk sent to the local fake Slack server,
drawn by ``tests/support/blockkit_html.py`` (Slack's own client cannot be
reached). ``WFLO_UPDATE_SCREENSHOTS=1`` copies the screenshots into
``docs/images/`` (``docs/approvals.md`` shows them).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fakes.slack_server import FakeSlack
from playwright.sync_api import Locator, Page
from support.blockkit_html import blocks_to_html

from tests.support.net import Inbox, free_port
from wflo_prefect import EmailApprovalChannel, SlackApprovalChannel
from wflo_prefect.approvals.decisions import new_code_salt, one_time_code
from wflo_prefect.approvals.digest import digest_of
from wflo_prefect.approvals.notify import notify_all
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

pytestmark = pytest.mark.browser

DOC_IMAGES = Path(__file__).parents[2] / "docs" / "images"
SERVICE_URL = "https://approvals.example.com"
ACTION = "ship release"
DETAILS = {"version": "2.0.0", "environment": "production"}


@pytest.fixture
def request_record(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> ApprovalRequestRecord:
    """A pending request for alice or bob, stored as the gate stores it, links enabled."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET", "link-secret")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_SERVICE_URL", SERVICE_URL)
    now = datetime.now(UTC)
    principals = {
        name: {"email": f"{name}@example.com", "slack_id": f"U{name.upper()}"}
        for name in ("alice", "bob")
    }
    return ledger.approvals.create(
        action=ACTION,
        details=DETAILS,
        digest=digest_of(ACTION, DETAILS),
        approvers=["alice", "bob"],
        quorum=1,
        deadline_at=now + timedelta(hours=1),
        expires_at=now + timedelta(hours=1),
        policy={"principals": principals, "code_salt": new_code_salt()},
    )


def _deadline(request: ApprovalRequestRecord) -> str:
    """The deadline as both messages must state it."""
    assert request.deadline_at is not None
    return f"answer by {request.deadline_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _page(browser: Any, markup: str) -> Page:
    page: Page = browser.new_page(viewport={"width": 760, "height": 600}, device_scale_factor=1)
    page.set_content(markup)
    return page


def _shot(target: Locator, name: str, tmp_path: Path) -> None:
    """Screenshot into tmp_path; with WFLO_UPDATE_SCREENSHOTS=1 also into docs/images/."""
    path = tmp_path / f"{name}.png"
    target.screenshot(path=str(path))
    if os.environ.get("WFLO_UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / f"{name}.png")


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def _mail_markup(mail: Message) -> str:
    """The mail as a client shows it: its headers, then its HTML part, else its text in <pre>."""
    parts = list(mail.walk()) if mail.is_multipart() else [mail]
    html_part = next((p for p in parts if p.get_content_type() == "text/html"), None)
    text_part = next(p for p in parts if p.get_content_type() == "text/plain")
    if html_part is not None:
        body = _decoded(html_part)
    else:
        body = f"<pre>{html.escape(_decoded(text_part))}</pre>"
    head = "".join(
        f"<div><b>{k}:</b> {html.escape(str(mail[k]))}</div>" for k in ("From", "To", "Subject")
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        "body{margin:0;font:14px Arial,sans-serif;background:#fff}"
        "#mail{display:inline-block;padding:14px 18px;max-width:720px}"
        "#head{border-bottom:1px solid #ddd;padding-bottom:8px;margin-bottom:4px;color:#333}"
        "pre{font:13px/1.4 Menlo,Consolas,monospace;white-space:pre-wrap;"
        "word-break:break-all;margin:8px 0 0 0}"
        f"</style></head><body><div id='mail'><div id='head'>{head}</div>{body}</div>"
        "</body></html>"
    )


def test_approval_email_shows_action_details_links_and_code(
    browser: Any, request_record: ApprovalRequestRecord, tmp_path: Path
) -> None:
    """alice's mail, sent over real SMTP, shows the action, details, her links and her code."""
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        channel = EmailApprovalChannel(
            smtp_host="127.0.0.1", smtp_port=port, sender="wflo@example.com", starttls=False
        )
        deliveries = notify_all(request_record, [channel], 0, background=False)
        assert isinstance(deliveries, list)
        [delivery] = deliveries
    finally:
        smtp.stop()
    assert delivery.delivered, delivery.detail
    mail = next(m for m in inbox.mails if m["To"] == "alice@example.com")
    assert mail["Subject"] == f"Approval needed: {ACTION}"

    page = _page(browser, _mail_markup(mail))
    shown = page.locator("#mail")
    text = shown.inner_text()
    assert f"Approval needed: {ACTION}" in text
    assert "version: 2.0.0" in text
    assert "environment: production" in text
    assert request_record.id in text
    assert _deadline(request_record) in text
    approve = re.search(r"Approve: (\S+)", text)
    reject = re.search(r"Reject: +(\S+)", text)
    assert approve is not None
    assert reject is not None
    assert approve.group(1).startswith(f"{SERVICE_URL}/links/")
    assert reject.group(1).startswith(f"{SERVICE_URL}/links/")
    assert approve.group(1) != reject.group(1)
    assert one_time_code(request_record, "alice") in text
    _shot(shown, "approval-email", tmp_path)
    page.close()


def test_approval_slack_message_has_approve_and_reject_buttons_for_the_request(
    browser: Any, request_record: ApprovalRequestRecord, tmp_path: Path
) -> None:
    """The posted Block Kit message shows action, details, approvers and two buttons."""
    slack = FakeSlack()
    try:
        channel = SlackApprovalChannel(
            token="xoxb-test-token", channel="C0OPS", base_url=slack.base_url
        )
        deliveries = notify_all(request_record, [channel], 0, background=False)
        assert isinstance(deliveries, list)
        [delivery] = deliveries
        assert delivery.delivered, delivery.detail
        [(method, args)] = slack.calls
    finally:
        slack.close()
    assert method == "chat.postMessage"
    blocks = args["blocks"]

    page = _page(browser, blocks_to_html(blocks))
    shown = page.locator(".message")
    text = shown.inner_text()
    assert f"Approval needed: {ACTION}" in text
    assert "version" in text
    assert '"2.0.0"' in text
    assert "@UALICE, @UBOB" in text
    assert request_record.id[:8] in text
    assert _deadline(request_record) in text
    buttons = page.get_by_role("button")
    assert buttons.all_inner_texts() == ["Approve", "Reject"]
    for name, style, action in (
        ("Approve", "primary", "wflo_approve"),
        ("Reject", "danger", "wflo_reject"),
    ):
        button = page.get_by_role("button", name=name)
        assert style in (button.get_attribute("class") or "")
        assert button.get_attribute("data-action-id") == action
        value = json.loads(button.get_attribute("data-value") or "{}")
        assert value == {"request_id": request_record.id, "digest": request_record.digest}
    _shot(shown, "approval-slack", tmp_path)
    page.close()
