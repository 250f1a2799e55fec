"""A deployment on a docker-sandbox work pool, run by `prefect worker start`, as a user runs it.

A real Prefect server (listening where the Docker bridge reaches it), a work pool
created with Prefect's CLI, the code-agent example deployed with an image that has
Prefect, wflo-prefect and flows/ in it (built offline by `wflo sandbox build-image
--flows`, the pool's default image), and one `prefect worker start --run-once`. The run must
complete inside the hardened container, talking only to the API, and the generated
hostile code must be blocked there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


@pytest.fixture(scope="module")
def agent_image(docker_client: Any) -> str:
    """The pool's default image, built as a user builds it: `wflo sandbox build-image --flows`."""
    from wflo_prefect.sandbox.flows_image import DEFAULT_FLOWS_IMAGE

    built = subprocess.run(
        [str(BIN / "wflo"), "sandbox", "build-image", "--flows", "--project", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert f"built {DEFAULT_FLOWS_IMAGE}" in built.stdout
    attrs = docker_client.images.get(DEFAULT_FLOWS_IMAGE).attrs
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Labels"]["org.wflo.flows-image"] == "1"
    return DEFAULT_FLOWS_IMAGE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on all addresses (the container dials the host's bridge)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path_factory.mktemp("prefect-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTEST_"))},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "0.0.0.0", "--port", str(port)],  # noqa: S104
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the Prefect server did not start within 120 s")
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)


def _run(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


DEPLOY = """
import sys
from flows.code_agent import code_agent
from prefect.deployments import run_deployment
deployment_id = code_agent.deploy(
    name="e2e", work_pool_name=sys.argv[1], image=sys.argv[2], build=False, push=False,
    job_variables={"mem_limit": "1g"},
    print_next_steps=False,
)
print(run_deployment(deployment_id, timeout=0).id)
"""


def test_flow_run_completes_in_a_hardened_container(
    server: dict[str, str], agent_image: str, docker_client: Any
) -> None:
    """The deployment's run completes on the docker-sandbox pool; hostile code is blocked."""
    pool = f"sandbox-e2e-{uuid.uuid4().hex[:6]}"
    _run(server, str(BIN / "prefect"), "work-pool", "create", pool, "--type", "docker-sandbox")
    flow_run_id = _run(server, str(BIN / "python"), "-c", DEPLOY, pool, agent_image).stdout
    worker = _run(
        server,
        str(BIN / "prefect"),
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "docker-sandbox",
        "--run-once",
        timeout=300,
    )
    state = _run(
        server,
        str(BIN / "python"),
        "-c",
        "import sys; from prefect.client.orchestration import get_client\n"
        "with get_client(sync_client=True) as c:\n"
        "    print(c.read_flow_run(sys.argv[1]).state.type.value)",
        flow_run_id.strip().splitlines()[-1],
    )
    output = worker.stdout + worker.stderr
    assert state.stdout.strip() == "COMPLETED", output[-3000:]
    assert "hostile code: {'network': 'blocked" in output
    assert "'etc': 'blocked: Read-only file system'" in output
    assert not docker_client.networks.list(filters={"label": "org.wflo.sandbox.role=egress"})
