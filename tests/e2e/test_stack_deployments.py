"""prefect.yaml on `wflo stack up`: `prefect deploy --all`, then each agent runs through its worker.

The stack turns the approval service's loopback wake-up off, so every decision below
reaches its waiting run only through Prefect's API and events, as from another host.
Approvals are answered through the approval service's REST API with each approver's
own API key, as an approver's tool (or a Slack click relayed by the service) would.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from fakes.openai_server import FakeOpenAI

from tests.support.stack import (
    BIN,
    ROOT,
    Stack,
    build_flows_image,
    free_port,
    running_stack,
    save_approvers,
)

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

KEYS = {"erin": "key-erin-editor", "dan": "key-dan-owner", "dora": "key-dora", "dave": "key-dave"}
GROUPS = {"editors": ["erin"], "data-owners": ["dan"], "dba": ["dora", "dave"]}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The flows image, a full stack, the approvers, and `prefect deploy --all` (as a user)."""
    build_flows_image()
    with running_stack(tmp_path_factory.mktemp("stack") / "stack") as running:
        save_approvers(running, "wflo-approvers", KEYS, GROUPS)
        deployed = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
            env=running.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        state = json.loads((running.directory / "state.json").read_text())
        worker = next(c for c in state["components"] if c["name"] == "sandbox-worker")
        yield running
    # `wflo stack down` left no container or network of the sandbox worker's runs behind.
    owner = f"{socket.gethostname()}:{worker['pid']}:"
    leftovers = [
        c.name
        for c in docker.from_env().containers.list(all=True, filters={"label": "org.wflo.sandbox"})
        if c.labels.get("org.wflo.sandbox.owner", "").startswith(owner)
    ]
    assert not leftovers, leftovers


def _api(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.server_port}/api"


def _start(stack: Stack, name: str, parameters: dict[str, Any], env: dict[str, str]) -> str:
    api = _api(stack)
    deployment = httpx.get(f"{api}/deployments/name/{name}", timeout=30).json()
    created = httpx.post(
        f"{api}/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": parameters, "job_variables": {"env": env} if env else {}},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _pending_for(stack: Stack, flow_run_id: str, key: str, timeout: float = 300) -> dict[str, Any]:
    """The approver's pending request of this run, from the approval service's inbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inbox = httpx.get(
            f"http://127.0.0.1:{stack.approvals_port}/api/approvals",
            headers={"X-API-Key": key},
            timeout=30,
        ).json()
        mine = [r for r in inbox if r["flow_run_id"] == flow_run_id]
        if mine:
            return dict(mine[0])
        _fail_if_final(stack, flow_run_id)
        time.sleep(0.5)
    pytest.fail(f"no pending approval for flow run {flow_run_id} within {timeout} s")


def _approve(stack: Stack, request: dict[str, Any], key: str) -> dict[str, Any]:
    answer = httpx.post(
        f"http://127.0.0.1:{stack.approvals_port}/api/approvals/{request['id']}/decision",
        headers={"X-API-Key": key},
        json={"approve": True, "digest": request["digest"], "comment": "reviewed"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _state(stack: Stack, flow_run_id: str) -> dict[str, Any]:
    run = httpx.get(f"{_api(stack)}/flow_runs/{flow_run_id}", timeout=30).json()
    return dict(run["state"] or {})


def _fail_if_final(stack: Stack, flow_run_id: str) -> None:
    state = _state(stack, flow_run_id)
    if state.get("type") in FINAL:
        pytest.fail(f"flow run ended {state['type']} before its approval: {state.get('message')}")


def _final(stack: Stack, flow_run_id: str, timeout: float = 400) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(stack, flow_run_id)
        if state.get("type") in FINAL:
            return state
        time.sleep(0.5)
    pytest.fail(f"flow run {flow_run_id} did not finish within {timeout} s: {state}")


def _logs(stack: Stack, flow_run_id: str) -> str:
    logs = httpx.post(
        f"{_api(stack)}/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200},
        timeout=30,
    ).json()
    return "\n".join(entry["message"] for entry in logs)


def _logs_once(stack: Stack, flow_run_id: str, needle: str, timeout: float = 120) -> str:
    """The run's logs once ``needle`` arrived (runs send their logs in batches)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = _logs(stack, flow_run_id)
        if needle in logs:
            return logs
        time.sleep(1)
    return _logs(stack, flow_run_id)


def test_prefect_deploy_all_creates_the_agents_and_the_recovery_flows(stack: Stack) -> None:
    """Each deployment is on its pool; the sandboxed one uses the pool's default image."""
    found = httpx.post(f"{_api(stack)}/deployments/filter", json={}, timeout=30).json()
    pools = {d["name"]: d["work_pool_name"] for d in found}
    assert pools == {
        "research-report": "wflo-process",
        "research-agent": "wflo-process",
        "code-agent-sandboxed": "wflo-sandbox",
        "reviewed-cleanup": "wflo-process",
        "wflo-recover-run": "wflo-process",
        "wflo-compensation-sweep": "wflo-process",
    }
    sandboxed = next(d for d in found if d["name"] == "code-agent-sandboxed")
    assert "image" not in (sandboxed["job_variables"] or {})
    pool = httpx.get(f"{_api(stack)}/work_pools/wflo-sandbox", timeout=30).json()
    image = pool["base_job_template"]["variables"]["properties"]["image"]
    assert image["default"] == "wflo-agent:latest"


def test_the_agents_run_through_their_workers_with_approvals_from_the_service(
    stack: Stack, tmp_path: Path
) -> None:
    """Research (budget + editor), code agent (sandbox), clean-up (low and high risk, undo)."""
    closed_port = free_port()
    with FakeOpenAI() as llm:
        llm_env = {"OPENAI_BASE_URL": f"{llm.url}/v1", "OPENAI_API_KEY": "sk-stack-e2e"}
        research = _start(
            stack,
            "research-report/research-report",
            {"publish_dir": str(tmp_path / "reports"), "topic": "stack e2e"},
            llm_env,
        )
        code = _start(stack, "code-agent/code-agent-sandboxed", {}, {})
        low_db, high_db = tmp_path / "low.db", tmp_path / "high.db"
        low = _start(
            stack,
            "reviewed-cleanup/reviewed-cleanup",
            {"db_path": str(low_db), "archive_dir": str(tmp_path / "a1"), "seed_rows": 12},
            {},
        )
        high = _start(
            stack,
            "reviewed-cleanup/reviewed-cleanup",
            {
                "db_path": str(high_db),
                "archive_dir": str(tmp_path / "a2"),
                "seed_rows": 12,
                "high_risk_share": 0.2,
                "owner_webhook": f"http://127.0.0.1:{closed_port}/hook",
            },
            {},
        )

        # Research: the editor approves publishing, through the approval service.
        request = _pending_for(stack, research, KEYS["erin"])
        assert request["action"] == "publish research report"
        assert request["details"]["sections"] == 3
        assert _approve(stack, request, KEYS["erin"])["status"] == "approved"

        # Clean-up, low risk (4 of 12 rows): one data owner decides.
        request = _pending_for(stack, low, KEYS["dan"])
        assert request["details"]["risk"] == "low"
        assert request["quorum"] == 1
        assert _approve(stack, request, KEYS["dan"])["status"] == "approved"

        # Clean-up, high risk (4 of 12 > 20 %): two DBAs must agree; dan is not asked.
        request = _pending_for(stack, high, KEYS["dora"])
        assert request["details"]["risk"] == "high"
        assert request["quorum"] == 2
        assert request["approvers"] == ["dora", "dave"]
        assert _approve(stack, request, KEYS["dora"])["status"] == "pending"
        assert _approve(stack, request, KEYS["dave"])["status"] == "approved"

        research_state = _final(stack, research)
        assert research_state["type"] == "COMPLETED", research_state
        assert len(llm.requests) == 3
        reports = list((tmp_path / "reports").glob("*.md"))
        assert len(reports) == 1
        assert reports[0].read_text().count("## ") == 3
        assert "approved by erin" in _logs_once(stack, research, "approved by erin")

    low_state = _final(stack, low)
    assert low_state["type"] == "COMPLETED", low_state
    with sqlite3.connect(low_db) as db:
        assert db.execute("select count(*) from customers").fetchone()[0] == 8

    # Telling the owner failed after the delete: the run fails and the rows are restored.
    high_state = _final(stack, high)
    assert high_state["type"] == "FAILED", high_state
    with sqlite3.connect(high_db) as db:
        assert db.execute("select count(*) from customers").fetchone()[0] == 12
    assert list((tmp_path / "a2").glob("*.json"))

    # The sandboxed run reports through the Prefect API only; its logs say what was blocked.
    code_state = _final(stack, code)
    worker_log = (stack.directory / "logs" / "sandbox-worker.log").read_text(errors="replace")
    assert code_state["type"] == "COMPLETED", (code_state, worker_log[-3000:])
    assert "hostile code: {'network': 'blocked" in _logs_once(stack, code, "hostile code:")
