"""The docker-sandbox worker type: registered with Prefect, strict template, hardened runs."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.support.docker_net import bridge_gateway
from wflo_prefect.sandbox.hardening import LABEL, LABEL_ID, LABEL_ROLE
from wflo_prefect.sandbox.worker import DockerSandboxJobConfiguration, DockerSandboxWorker

pytestmark = pytest.mark.docker

# Host servers listen on every address: the containers dial the host through its bridge.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool_name() -> Iterator[str]:
    """A docker-sandbox work pool created with Prefect's own CLI, against the test API."""
    name = f"sandbox-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    created = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "prefect"),
            "work-pool",
            "create",
            name,
            "--type",
            "docker-sandbox",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    yield name
    with get_client(sync_client=True) as client:
        client.delete_work_pool(name)


def test_work_pool_create_with_the_docker_sandbox_type(pool_name: str) -> None:
    """`prefect work-pool create --type docker-sandbox` stores the strict template."""
    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(pool_name)
    variables = pool.base_job_template["variables"]["properties"]
    assert pool.type == "docker-sandbox"
    assert variables["privileged"]["const"] is False
    assert variables["networks"]["maxItems"] == 0
    assert "cap_add" not in variables["container_create_kwargs"]["propertyNames"]["enum"]
    assert variables["runtime"]["enum"] == ["runc", "runsc"]


@pytest.mark.parametrize(
    "job_variables",
    [
        {"privileged": True},
        {"volumes": ["/etc:/host-etc"]},
        {"volumes": ["another-workloads-volume:/data"]},
        {"container_create_kwargs": {"cap_add": ["NET_ADMIN"]}},
        {"network_mode": "host"},
        {"networks": ["bridge"]},
    ],
)
def test_server_refuses_loosening_job_variables(
    pool_name: str, job_variables: dict[str, Any]
) -> None:
    """A deployment asking for privileged, host volumes, caps or host network is refused."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("sandboxed-flow")
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_deployment(
                flow_id=flow_id,
                name=f"bad-{uuid.uuid4().hex[:6]}",
                work_pool_name=pool_name,
                job_variables=job_variables,
            )
    assert refused.value.response.status_code == 422
    field = next(iter(job_variables))
    assert f"validation failed for field '{field}" in refused.value.response.text.lower()


def test_server_accepts_tightening_job_variables(pool_name: str) -> None:
    """Limits within the hardening (memory, CPUs, gVisor without network) are accepted."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("sandboxed-flow")
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name=f"ok-{uuid.uuid4().hex[:6]}",
            work_pool_name=pool_name,
            job_variables={
                "mem_limit": "256m",
                "cpu_limit": 0.5,
                "runtime": "runsc",
                "network": "none",
            },
        )
        client.delete_deployment(deployment_id)


async def test_worker_refuses_a_hand_edited_template() -> None:
    """A template whose job_configuration hard-codes privileged is refused by the worker too."""
    template = DockerSandboxWorker.get_default_base_job_template()
    template["job_configuration"]["privileged"] = True
    with pytest.raises(ValueError, match="refuses job variable `privileged`"):
        await DockerSandboxJobConfiguration.from_template_and_values(template, {})


@pytest.fixture
def fake_api() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on all host addresses standing in for the Prefect API's /health."""
    paths: list[str] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((ALL_INTERFACES, 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], paths
    server.shutdown()


CHECKS = r"""
import json, os, socket, urllib.request
status = open("/proc/self/status").read()
facts = {
    "uid": os.getuid(),
    "cap_eff": [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0],
    "no_new_privs": [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")][0],
    "root_ro": [l.split()[5] for l in open("/proc/self/mountinfo") if l.split()[4] == "/"][0],
}
try:
    health = os.environ["PREFECT_API_URL"] + "/health"
    facts["api"] = urllib.request.urlopen(health, timeout=5).read().decode()
except Exception as e:
    facts["api"] = type(e).__name__
s = socket.socket(); s.settimeout(3)
try:
    s.connect((os.environ["GATEWAY"], int(os.environ["OTHER_PORT"]))); facts["other"] = "connected"
except OSError as e:
    facts["other"] = type(e).__name__
print(json.dumps(facts))
ok = (facts["uid"] == 1000 and int(facts["cap_eff"], 16) == 0
      and facts["no_new_privs"] == "1" and "ro" in facts["root_ro"].split(",")
      and facts["api"] == "true" and facts["other"] != "connected")
raise SystemExit(0 if ok else 3)
"""


async def test_worker_runs_a_hardened_container_that_reaches_only_the_api(
    pool_name: str, fake_api: tuple[int, list[str]], docker_client: Any
) -> None:
    """The worker's container: uid 1000, no caps, no new privileges, read-only, API-only network.

    The API it reaches is the worker's own, not the one a job variable names; removing
    the run's containers leaves another run's of the same `name` alone.
    """
    api_port, paths = fake_api
    other = socket_server()
    from prefect import flow as prefect_flow

    @prefect_flow(name="sandboxed-flow")
    def placeholder() -> None: ...

    async with get_client() as client:
        flow_run = await client.create_flow_run(placeholder)
        flow = await client.read_flow(flow_run.flow_id)
    template = DockerSandboxWorker.get_default_base_job_template()
    configuration = await DockerSandboxJobConfiguration.from_template_and_values(
        template,
        {
            "image": "wflo-sandbox:latest",
            "image_pull_policy": "Never",
            "command": f"python3 -c '{CHECKS}'",
            "env": {
                # Not the worker's API: the allow-list must ignore what job variables say.
                "PREFECT_API_URL": f"http://127.0.0.1:{other.getsockname()[1]}/api",
                "OTHER_PORT": str(other.getsockname()[1]),
                "GATEWAY": bridge_gateway(docker_client),
            },
            "stream_output": False,
        },
    )
    configuration.prepare_for_flow_run(flow_run, flow=flow)
    # A container of a concurrent run with the same job `name`, labelled as that run's.
    bystander = docker_client.containers.create(
        "wflo-sandbox:latest",
        ["true"],
        labels={LABEL: "1", LABEL_ID: configuration.name, LABEL_ROLE: "flow-run"},
    )
    try:
        async with DockerSandboxWorker(work_pool_name=pool_name) as worker:
            # The worker's own API setting is what its runs may reach.
            with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{api_port}/api"}):
                result = await worker.run(flow_run, configuration)
        bystander.reload()  # still there
    finally:
        bystander.remove(force=True)
    other.close()
    # Exit 0: the run reached the worker's API (the worker itself calls it too).
    assert "/api/health" in paths
    assert result.status_code == 0
    assert not docker_client.containers.list(all=True, filters={"name": configuration.name})
    assert not docker_client.networks.list(filters={"label": "org.wflo.sandbox.role=egress"})


def socket_server() -> Any:
    """A listening TCP socket on all host addresses (a service the run must not reach)."""
    import socket

    return socket.create_server((ALL_INTERFACES, 0))
