"""A real browser approves a paused run in the Prefect UI's resume form."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from wflo_prefect.approvals.decisions import one_time_code
from wflo_prefect.ledger import Ledger

pytestmark = pytest.mark.browser

FLOW = Path(__file__).with_name("approval_ui_flow.py")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[str]:
    """`prefect server start` on a free loopback port, with its own PREFECT_HOME."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": api,
        "PREFECT_API_URL": api,
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("prefect server start did not become healthy within 60 s")
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_browser_approves_paused_run_in_prefect_ui(
    prefect_server: str, ledger: Ledger, tmp_path: Path
) -> None:
    """Chromium opens the paused run, fills the form with alice's code, submits; the run ends."""
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": ledger.engine.url.render_as_string(
            hide_password=False
        ),
    }
    run = subprocess.Popen(
        [sys.executable, str(FLOW)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (pending := [r for r in ledger.approvals.list_requests() if r.keyset]):
            assert time.monotonic() < deadline, "the flow never paused at its gate"
            time.sleep(0.2)
        request = pending[0]
        ui = prefect_server.removesuffix("/api")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            page.goto(f"{ui}/runs/flow-run/{request.flow_run_id}")
            page.get_by_role("button", name="Resume").click(timeout=30_000)
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Approval needed: ship release").wait_for(timeout=15_000)
            assert request.digest in dialog.inner_text()
            dialog.get_by_role("switch").click()
            boxes = dialog.locator("textarea")
            boxes.nth(0).fill("alice")
            boxes.nth(1).fill(one_time_code(request, "alice"))
            boxes.nth(2).fill("approved in the browser")
            dialog.get_by_role("button", name="Submit").click()
            output, _ = run.communicate(timeout=60)
            browser.close()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    line = next(x for x in output.splitlines() if x.startswith("DECISION "))
    decision = json.loads(line.removeprefix("DECISION "))
    assert decision["approved"] is True
    assert decision["approvers"] == ["alice"]
    assert decision["channel"] == "prefect-ui"
    assert decision["comments"] == {"alice": "approved in the browser"}
    assert run.returncode == 0
