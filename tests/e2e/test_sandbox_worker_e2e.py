"""A deployment on a docker-sandbox work pool, run by `prefect worker start`, as a user runs it.

A real Prefect server (listening where the Docker bridge reaches it), a work pool
created with Prefect's CLI, the code-agent example deployed with an image that has
Prefect, wflo-prefect and flows/ in it (built offline from the sandbox image and this
checkout's packages), and one `prefect worker start --run-once`. The flow run must
complete inside the hardened container, talking only to the API, and the generated
hostile code must be blocked there.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import tarfile
import tempfile
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
SITE = ROOT / ".venv" / "lib" / "python3.11" / "site-packages"
# Not needed to run a flow, and most of the venv's size.
SKIP = ("playwright", "material", "babel", "mypy", "ruff", "pymdown", "mkdocs", "__editable__")

DOCKERFILE = b"""FROM wflo-sandbox:latest
COPY site /opt/site
COPY app /opt/flows
ENV PYTHONPATH=/opt/site
WORKDIR /opt/flows
"""


def _sources_digest() -> str:
    digest = hashlib.sha256((ROOT / "uv.lock").read_bytes())
    for path in sorted([*ROOT.glob("wflo_prefect/**/*"), *ROOT.glob("flows/*.py")]):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _skip_member(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    top = info.name.split("/")[1] if "/" in info.name else ""
    if top.startswith(SKIP) or top.endswith(".pth") or "__pycache__" in info.name:
        return None
    return info


@pytest.fixture(scope="module")
def agent_image(docker_client: Any) -> str:
    """An image with Prefect, wflo-prefect and flows/ (rebuilt only when they change)."""
    tag = f"wflo-agent-e2e:{_sources_digest()}"
    if docker_client.images.list(name=tag):
        return tag
    for old in docker_client.images.list(name="wflo-agent-e2e"):
        docker_client.images.remove(old.id, force=True)
    with tempfile.TemporaryFile() as context:
        with tarfile.open(fileobj=context, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(DOCKERFILE)
            tar.addfile(info, io.BytesIO(DOCKERFILE))
            tar.add(SITE, arcname="site", filter=_skip_member)
            tar.add(ROOT / "wflo_prefect", arcname="site/wflo_prefect", filter=_skip_member)
            tar.add(ROOT / "flows", arcname="app/flows", filter=_skip_member)
        context.seek(0)
        docker_client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return tag


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
    job_variables={"command": "python3 -m prefect flow-run execute",
                   "image_pull_policy": "Never", "mem_limit": "1g"},
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
