"""``up``, ``down`` and ``status`` of a stack (see :mod:`wflo_prefect.stack`)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wflo_prefect.errors import ConfigurationError, ServiceUnavailableError
from wflo_prefect.stack.checks import (
    bridge_gateway,
    ensure_databases,
    require_free_port,
    require_postgres,
)
from wflo_prefect.stack.processes import Component, alive, read_state, spawn, stop, write_state
from wflo_prefect.stack.spec import LOOPBACK, PROCESS_POOL, SANDBOX_POOL, StackSpec

__all__ = ["StackStatus", "down", "status", "up"]

_DOCS = "deployment.md"
Say = Callable[[str], None]


@dataclass(frozen=True)
class StackStatus:
    """What runs, and where."""

    directory: Path
    components: list[tuple[Component, bool]]
    ui_url: str | None


def _quiet(_: str) -> None:
    return None


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_http(url: str, component: Component, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(component):
            break
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServiceUnavailableError(
        f"The stack's {component.name} did not answer {url} within {timeout:.0f} s",
        value=component.log,
        hint=f"Its last log lines:\n{_tail(component.log)}",
        docs=_DOCS,
    )


def _wait_worker(spec: StackSpec, pool: str, component: Component, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    url = f"{spec.api_url}/work_pools/{pool}/workers/filter"
    while time.monotonic() < deadline and alive(component):
        try:
            response = httpx.post(url, json={}, timeout=5)
            if response.status_code == 200 and any(
                w.get("status") == "ONLINE" for w in response.json()
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServiceUnavailableError(
        f"The {component.name} did not come online on work pool {pool} within {timeout:.0f} s",
        value=component.log,
        hint=f"Its last log lines:\n{_tail(component.log)}",
        docs=_DOCS,
    )


def _refuse_if_running(spec: StackSpec) -> None:
    components, _ = read_state(spec.state_file)
    running = [c.name for c in components if alive(c)]
    if running:
        raise ConfigurationError(
            f"A stack already runs from {spec.directory}",
            value=running,
            hint="Stop it with `wflo stack down` (or use another --dir and other ports)",
            docs=_DOCS,
        )


def _write_env(spec: StackSpec, env: dict[str, str]) -> None:
    import shlex

    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    spec.env_file.touch(mode=0o600)
    os.chmod(spec.env_file, 0o600)
    spec.env_file.write_text("\n".join(lines) + "\n")


def up(spec: StackSpec, say: Say = _quiet) -> StackStatus:
    """Check, then start every component; on any failure stop what was started and raise."""
    spec.directory.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(spec)
    ports = [
        (spec.server_port, "Prefect server", "--server-port"),
        (spec.approvals_port, "approval service", "--approvals-port"),
        (spec.metrics_port, "metrics endpoint", "--metrics-port"),
    ]
    if len({p for p, _, _ in ports}) != len(ports):
        raise ConfigurationError(
            "The stack's ports must differ", value=[p for p, _, _ in ports], docs=_DOCS
        )
    for port, what, option in ports:
        require_free_port(LOOPBACK, port, what=what, option=option)
    gateway = bridge_gateway() if spec.sandbox_worker else None
    if gateway is not None:
        require_free_port(gateway, spec.server_port, what="Docker relay", option="--server-port")
    version = require_postgres(spec.postgres_url)
    created = ensure_databases(spec.postgres_url, spec.database, spec.ledger_database)
    say(
        f"PostgreSQL {version}: databases {spec.database}, {spec.ledger_database}"
        + (f" (created {', '.join(created)})" if created else " (reused)")
    )

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        **spec.environment(),
    }
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    logs = spec.directory / "logs"
    logs.mkdir(exist_ok=True)
    _write_env(spec, spec.environment())

    python = sys.executable
    started: list[Component] = []
    extra = {
        "ports": {
            "server": spec.server_port,
            "approvals": spec.approvals_port,
            "metrics": spec.metrics_port,
        },
        "ui_url": spec.ui_url,
    }

    def start(name: str, argv: list[str], address: str) -> Component:
        component = spawn(name, argv, env=env, log_dir=logs, cwd=spec.workdir, address=address)
        started.append(component)
        write_state(spec.state_file, started, **extra)
        return component

    try:
        server = start(
            "prefect-server",
            [
                python,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                LOOPBACK,
                "--port",
                str(spec.server_port),
            ],
            spec.ui_url,
        )
        _wait_http(f"{spec.api_url}/health", server, timeout=300)
        say(f"Prefect server  {spec.ui_url} (API {spec.api_url})")
        if gateway is not None:
            relay_address = f"{gateway}:{spec.server_port}"
            relay = start(
                "docker-relay",
                [
                    python,
                    "-m",
                    "wflo_prefect.stack.relay",
                    "--listen",
                    relay_address,
                    "--to",
                    f"{LOOPBACK}:{spec.server_port}",
                ],
                relay_address,
            )
            _wait_http(f"http://{relay_address}/api/health", relay, timeout=60)
            say(f"Docker relay    {relay_address} -> the API (for sandboxed flow runs)")
        approvals = start(
            "approval-service",
            [
                python,
                "-m",
                "wflo_prefect.cli",
                "approvals",
                "serve",
                "--host",
                LOOPBACK,
                "--port",
                str(spec.approvals_port),
            ],
            spec.approvals_url,
        )
        metrics = start(
            "metrics",
            [
                python,
                "-m",
                "wflo_prefect.observability.exporter",
                "--addr",
                LOOPBACK,
                "--port",
                str(spec.metrics_port),
            ],
            spec.metrics_url,
        )
        workers = [
            start(
                "process-worker",
                [
                    python,
                    "-m",
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    PROCESS_POOL,
                    "--type",
                    "process",
                    "--name",
                    "wflo-stack-process",
                ],
                PROCESS_POOL,
            )
        ]
        if spec.sandbox_worker:
            workers.append(
                start(
                    "sandbox-worker",
                    [
                        python,
                        "-m",
                        "prefect",
                        "worker",
                        "start",
                        "--pool",
                        SANDBOX_POOL,
                        "--type",
                        "docker-sandbox",
                        "--name",
                        "wflo-stack-sandbox",
                    ],
                    SANDBOX_POOL,
                )
            )
        _wait_http(f"{spec.approvals_url}/healthz", approvals, timeout=120)
        say(f"Approvals       {spec.approvals_url} (REST API {spec.approvals_url}/docs)")
        _wait_http(spec.metrics_url, metrics, timeout=120)
        say(f"Metrics         {spec.metrics_url}")
        for worker in workers:
            _wait_worker(spec, worker.address, worker, timeout=180)
            say(f"Worker          {worker.name} on work pool {worker.address}")
    except BaseException:
        for component in reversed(started):
            stop(component)
        spec.state_file.unlink(missing_ok=True)
        raise
    return status(spec)


def down(spec: StackSpec, say: Say = _quiet) -> list[str]:
    """Stop every component of the stack in ``spec.directory``; return those that were up."""
    components, _ = read_state(spec.state_file)
    stopped, stuck = [], []
    for component in reversed(components):
        was_up = alive(component)
        if stop(component):
            if was_up:
                stopped.append(component.name)
                say(f"stopped {component.name} (pid {component.pid})")
        else:
            stuck.append(f"{component.name} (pid {component.pid})")
    if stuck:
        raise ServiceUnavailableError(
            "Some of the stack's processes did not stop", value=stuck, hint="Kill them by pid"
        )
    if any(c.name == "sandbox-worker" for c in components):
        _collect_sandbox_garbage(say)
    spec.state_file.unlink(missing_ok=True)
    return stopped


def _collect_sandbox_garbage(say: Say) -> None:
    """Remove the containers and networks of flow runs the stopped sandbox worker owned.

    A worker stopped while (or right after) a run ends has no time to remove the run's
    egress proxy and network; they carry the worker's pid as owner, now dead.
    """
    from docker.errors import DockerException

    from wflo_prefect.sandbox.cleanup import collect_garbage
    from wflo_prefect.sandbox.engine import docker_client

    try:
        collected = collect_garbage(docker_client())
    except (DockerException, ServiceUnavailableError) as exc:
        say(f"could not remove leftover sandbox containers ({exc}); run `wflo sandbox gc`")
        return
    for name in [*collected.containers, *collected.networks]:
        say(f"removed leftover sandbox resource {name}")


def status(spec: StackSpec) -> StackStatus:
    """The recorded components and whether each still runs."""
    components, extra = read_state(spec.state_file)
    ui = extra.get("ui_url")
    return StackStatus(spec.directory, [(c, alive(c)) for c in components], str(ui) if ui else None)
