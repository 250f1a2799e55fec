"""A real browser answers a paused run in both Prefect UIs, as an approver would.

One ``prefect server start`` serves the module. Screenshots of what the approver
sees are taken on the way; ``WFLO_UPDATE_SCREENSHOTS=1`` copies them into
``docs/images/`` (``docs/approvals.md`` shows them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support.net import free_port
from wflo_prefect.approvals.decisions import one_time_code
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord

pytestmark = pytest.mark.browser

FLOW = Path(__file__).with_name("approval_ui_flow.py")
DOC_IMAGES = Path(__file__).parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": api,
        "PREFECT_API_URL": api,
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            *("server", "start", "--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("prefect server start did not become healthy within 90 s")
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)


class PausedFlow:
    """approval_ui_flow.py running against the server, paused at its gate."""

    def __init__(self, api: str, ledger: Ledger, home: Path) -> None:
        env = {
            **os.environ,
            "PREFECT_API_URL": api,
            "PREFECT_HOME": str(home),
            "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": ledger.engine.url.render_as_string(
                hide_password=False
            ),
        }
        self.process = subprocess.Popen(
            [sys.executable, str(FLOW)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not (pending := [r for r in ledger.approvals.list_requests() if r.keyset]):
            assert self.process.poll() is None, "the flow ended before its gate"
            assert time.monotonic() < deadline, "the flow never paused at its gate"
            time.sleep(0.2)
        self.request: ApprovalRequestRecord = pending[0]

    def decision(self) -> dict[str, Any]:
        output, _ = self.process.communicate(timeout=60)
        line = next(x for x in output.splitlines() if x.startswith("DECISION "))
        return dict(json.loads(line.removeprefix("DECISION ")))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def paused(prefect_server: str, ledger: Ledger, tmp_path: Path) -> Iterator[PausedFlow]:
    """A fresh run of the e2e flow, paused at its gate (killed if still running after)."""
    run = PausedFlow(prefect_server, ledger, tmp_path / "prefect")
    try:
        yield run
    finally:
        run.stop()


def _shot(target: Page | Locator, name: str, tmp_path: Path) -> None:
    """Screenshot into tmp_path; with WFLO_UPDATE_SCREENSHOTS=1 also into docs/images/."""
    path = tmp_path / f"{name}.png"
    target.screenshot(path=str(path))
    if os.environ.get("WFLO_UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / f"{name}.png")


def _wait_for_stored_log(api: str, flow_run_id: str | None, text: str) -> None:
    """Wait until the run's logs in the API hold ``text``: the flow ships them in batches,
    and the V2 run page does not refresh a paused run's logs by itself."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = httpx.post(
            f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}}
        ).json()
        if any(text in log["message"] for log in logs):
            return
        time.sleep(0.2)
    raise AssertionError(f"no log line with {text!r} reached the API within 30 s")


def _page(browser: Any) -> Page:
    page: Page = browser.new_page(viewport={"width": 1100, "height": 820})
    return page


def _pick_v1(page: Page, dialog: Locator, label: str, choice: str) -> list[str]:
    """Choose ``choice`` in the V1 dialog's select for ``label``; return the options shown."""
    index = {"Decision": 0, "Approver": 1}[label]
    control = dialog.locator(".p-select-button__control").nth(index)
    # A mouse click does not open the V1 select inside the dialog under playwright;
    # the keyboard does (as for a person tabbing through the form).
    control.focus()
    control.press("ArrowDown")
    options = page.locator(".p-select-option")
    options.first.wait_for(timeout=10_000)
    shown = [o.strip() for o in options.all_inner_texts()]
    options.filter(has_text=choice).first.click()
    return shown


def _pick_v2(page: Page, dialog: Locator, label: str, choice: str) -> list[str]:
    """Choose ``choice`` in the V2 dialog's select for ``label``; return the options shown.

    The V2 select is a popover that re-renders while the form validates, so an
    option can detach under the click, and a popover that is still closing can
    be mistaken for the new one. Wait for any earlier popover to go, open this
    one, click; if the popover went away under the click, open it again. The
    choice counts once the select's button shows it.
    """
    button = dialog.get_by_role("button", name=f"Select {label}")
    options = page.get_by_role("option")
    shown: list[str] = []
    for _attempt in range(4):
        options.first.wait_for(state="detached", timeout=10_000)
        button.click()
        options.first.wait_for(timeout=10_000)
        shown = [o.strip() for o in options.all_inner_texts()]
        try:
            options.filter(has_text=choice).first.click(timeout=5_000)
        except PlaywrightTimeoutError:
            if options.count():
                page.keyboard.press("Escape")
            continue
        if choice in button.inner_text():
            return shown
    raise AssertionError(f"the V2 select {label!r} did not take {choice!r}; options {shown}")


def test_v1_form_needs_a_choice_picks_a_listed_approver_and_shows_the_outcome(
    browser: Any, paused: PausedFlow, prefect_server: str, tmp_path: Path
) -> None:
    """Default UI: readable waiting line and artifact; no-choice submit refused; alice approves."""
    request = paused.request
    ui = prefect_server.removesuffix("/api")
    page = _page(browser)
    page.goto(f"{ui}/runs/flow-run/{request.flow_run_id}")
    waiting = page.get_by_text("Approval requested: ship release — approvers alice, bob")
    waiting.wait_for(timeout=30_000)
    assert f"wflo approvals approve {request.id}" in waiting.inner_text()
    _shot(page, "approval-run-page", tmp_path)

    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text(f"wflo-approval-{request.id}").first.click(timeout=15_000)
    page.get_by_text("Waiting for approval: ship release").wait_for(timeout=15_000)
    for shown in (request.digest, "How to answer", "2.0.0"):
        assert shown in page.locator("body").inner_text()
    _shot(page, "approval-artifact-pending", tmp_path)

    page.goto(f"{ui}/runs/flow-run/{request.flow_run_id}")
    page.get_by_role("button", name="Resume").click(timeout=30_000)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Approval needed: ship release").wait_for(timeout=15_000)
    text = dialog.inner_text()
    assert request.digest in text
    assert "(Optional)" not in text.split("Comment")[0], "decision, approver, code are required"
    assert dialog.locator("[role=switch]").count() == 0, "no toggle that defaults to reject"
    _shot(dialog, "approval-form", tmp_path)

    dialog.get_by_role("button", name="Submit").click()
    dialog.get_by_text("'decision' is a required property").wait_for(timeout=15_000)
    assert paused.process.poll() is None, "the run still waits"

    assert _pick_v1(page, dialog, "Decision", "approve") == ["approve", "reject"]
    assert _pick_v1(page, dialog, "Approver", "alice") == ["alice", "bob"]
    boxes = dialog.locator("textarea")
    boxes.nth(0).fill(one_time_code(request, "alice"))
    boxes.nth(1).fill("approved in the browser")
    dialog.get_by_role("button", name="Submit").click()

    decision = paused.decision()
    assert decision["approved"] is True
    assert decision["approvers"] == ["alice"]
    assert decision["channel"] == "prefect-ui"
    assert decision["comments"] == {"alice": "approved in the browser"}
    assert paused.process.returncode == 0

    page.goto(f"{ui}/runs/flow-run/{request.flow_run_id}")
    page.get_by_text("The run continues: ship release approved by alice").wait_for(timeout=30_000)
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text(f"wflo-approval-{request.id}").first.click(timeout=15_000)
    page.get_by_text("Approved: ship release").wait_for(timeout=15_000)
    assert "approved in the browser" in page.locator("body").inner_text()
    _shot(page, "approval-artifact-outcome", tmp_path)
    page.close()


def test_v2_ui_form_needs_a_choice_and_bob_rejects(
    browser: Any, paused: PausedFlow, prefect_server: str, tmp_path: Path
) -> None:
    """V2 UI: Resume from the run's menu; no-choice submit refused on the page; bob rejects."""
    request = paused.request
    ui = prefect_server.removesuffix("/api")
    page = _page(browser)
    _wait_for_stored_log(prefect_server, request.flow_run_id, "Approval requested: ship release")
    page.goto(f"{ui}/v2/runs/flow-run/{request.flow_run_id}")
    page.get_by_text("Approval requested: ship release").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Open menu").first.click(timeout=30_000)
    page.get_by_role("menuitem", name="Resume").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Approval needed: ship release").wait_for(timeout=15_000)
    assert request.digest in dialog.inner_text()

    dialog.get_by_role("button", name="Resume").click()
    page.get_by_text("'decision' is a required property").first.wait_for(timeout=15_000)
    assert paused.process.poll() is None, "the run still waits"

    assert _pick_v2(page, dialog, "Decision", "reject") == ["approve", "reject"]
    assert _pick_v2(page, dialog, "Approver", "bob") == ["alice", "bob"]
    boxes = dialog.locator("textarea")
    boxes.nth(0).fill(one_time_code(request, "bob"))
    boxes.nth(1).fill("wrong environment")
    _shot(dialog, "approval-form-v2", tmp_path)
    dialog.get_by_role("button", name="Resume").click()

    decision = paused.decision()
    assert decision["approved"] is False
    assert decision["approvers"] == ["bob"]
    assert decision["comments"] == {"bob": "wrong environment"}
    assert paused.process.returncode != 0
    page.close()
