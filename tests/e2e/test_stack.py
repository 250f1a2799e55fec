"""`wflo stack up` / `down`: every component answers on loopback, and nothing outlives `down`."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support.stack import POSTGRES_URL, free_port, running_stack, wflo

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _flow_ids_in_postgres(database: str) -> set[str]:
    engine = sa.create_engine(sa.engine.make_url(POSTGRES_URL).set(database=database))
    try:
        with engine.connect() as conn:
            return {str(r[0]) for r in conn.execute(sa.text("select id from flow"))}
    finally:
        engine.dispose()


def test_up_starts_every_component_and_down_stops_them(tmp_path: Path) -> None:
    """Server on PostgreSQL, both workers online, approvals and metrics answer; down ends all."""
    with running_stack(tmp_path / "stack") as stack:
        output = stack.up_output
        assert f"http://127.0.0.1:{stack.server_port}" in output
        assert f"http://127.0.0.1:{stack.approvals_port}" in output
        assert f"http://127.0.0.1:{stack.metrics_port}/metrics" in output
        api = f"http://127.0.0.1:{stack.server_port}/api"
        assert httpx.get(f"{api}/health", timeout=10).json() is True
        # The server really runs on the stack's own PostgreSQL database.
        flow = httpx.post(f"{api}/flows/", json={"name": "stack-probe"}, timeout=10).json()
        assert flow["id"] in _flow_ids_in_postgres(stack.database)
        for pool, kind in (("wflo-process", "process"), ("wflo-sandbox", "docker-sandbox")):
            assert httpx.get(f"{api}/work_pools/{pool}", timeout=10).json()["type"] == kind
            workers = httpx.post(f"{api}/work_pools/{pool}/workers/filter", json={}).json()
            assert [w["status"] for w in workers] == ["ONLINE"], workers
        health = urllib.request.urlopen(f"http://127.0.0.1:{stack.approvals_port}/healthz")
        assert json.load(health) == {"status": "ok"}
        openapi = httpx.get(f"http://127.0.0.1:{stack.approvals_port}/openapi.json").json()
        assert "/api/approvals" in openapi["paths"]
        metrics = httpx.get(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=10).text
        assert "wflo_" in metrics
        status = wflo("stack", "status", "--dir", str(stack.directory))
        assert status.returncode == 0
        assert " down " not in status.stdout, status.stdout
        state = json.loads((stack.directory / "state.json").read_text())
        names = [c["name"] for c in state["components"]]
        assert names == [
            "prefect-server",
            "docker-relay",
            "approval-service",
            "metrics",
            "process-worker",
            "sandbox-worker",
        ]
        # The Docker bridge reaches the loopback API through the relay.
        relay = state["components"][1]["address"]
        assert httpx.get(f"http://{relay}/api/health", timeout=10).json() is True
        assert oct((stack.directory / "env").stat().st_mode & 0o777) == "0o600"
        pids = [c["pid"] for c in state["components"]]
    # After `down`: no process left, no port held, no state recorded.
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for port in (stack.server_port, stack.approvals_port, stack.metrics_port):
        assert not _listening(port), port
    assert not (stack.directory / "state.json").exists()


def test_up_refuses_a_taken_port_and_starts_nothing(tmp_path: Path) -> None:
    """A port in use is named with the option that changes it; no process is started."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = wflo(
            "stack",
            "up",
            "--dir",
            str(tmp_path),
            "--approvals-port",
            str(port),
            "--server-port",
            "0",
            "--no-sandbox-worker",
        )
    assert done.returncode == 1
    assert f"Port {port} on 127.0.0.1 for the approval service is taken" in done.stderr
    assert "--approvals-port" in done.stderr
    assert not (tmp_path / "state.json").exists()


def test_up_refuses_when_postgresql_is_missing(tmp_path: Path) -> None:
    """No PostgreSQL at the URL: a clear message with how to get one; nothing started."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    url = f"postgresql://wflo:secret-pw@127.0.0.1:{closed}/postgres"
    done = wflo(
        "stack",
        "up",
        "--dir",
        str(tmp_path),
        "--postgres-url",
        url,
        "--no-sandbox-worker",
        "--server-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
    )
    assert done.returncode == 1
    assert f"PostgreSQL is not reachable at postgresql://wflo:***@127.0.0.1:{closed}" in (
        done.stderr.replace("\n", "")
    )
    assert "provision.sh postgres" in done.stderr
    assert "secret-pw" not in done.stderr + done.stdout
    assert not (tmp_path / "state.json").exists()
