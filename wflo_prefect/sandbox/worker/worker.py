"""The ``docker-sandbox`` worker: prefect-docker's DockerWorker with hardened containers.

Everything about pulling images, watching containers, events and cancellation is
prefect-docker's (pinned, 0.7.4). This subclass changes what the container is
created with: the options of :func:`~wflo_prefect.sandbox.hardening.hardened_host_config`
(no capabilities, no new privileges, seccomp, read-only root, non-root user,
limits) and a network on which only the Prefect API is reachable, through the same
allow-list proxy a networked sandbox uses.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit

import anyio.abc
from prefect.settings import PREFECT_API_URL
from prefect.utilities.asyncutils import run_sync_in_worker_thread
from prefect_docker.worker import DockerWorkerResult

from wflo_prefect._prefect_compat import docker_worker_base
from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.egress import Egress, open_egress
from wflo_prefect.sandbox.errors import SandboxConfigError
from wflo_prefect.sandbox.hardening import (
    LABEL_ID,
    LABEL_ROLE,
    declared_volume_tmpfs,
    hardened_host_config,
    sandbox_labels,
)
from wflo_prefect.sandbox.worker.job_configuration import DockerSandboxJobConfiguration
from wflo_prefect.settings import get_settings

__all__ = ["SANDBOXED_ENV", "DockerSandboxWorker", "DockerSandboxWorkerResult"]

SANDBOXED_ENV = "WFLO_SANDBOXED"


class DockerSandboxWorkerResult(DockerWorkerResult):  # type: ignore[misc]
    """Result of a flow run in a hardened container."""


def sandbox_config_for(configuration: DockerSandboxJobConfiguration) -> SandboxConfig:
    """The SandboxConfig a flow-run container is hardened with."""
    return SandboxConfig(
        image=configuration.image,
        memory_limit=configuration.mem_limit or "1g",
        cpu_limit=configuration.cpu_limit,
        pids_limit=configuration.pids_limit,
        runtime=configuration.runtime,
        workdir="/opt/prefect/work",
        tmp_size="256m",
        workdir_size="256m",
        max_lifetime_seconds=7 * 86400,
    )


_LOOPBACK = ("127.0.0.1", "localhost")


def api_url() -> str:
    """The worker's own Prefect API URL, as the container must dial it (loopback -> the host).

    Never a job variable's: the run's network allow-lists this address, so whoever
    writes job variables must not be able to pick it.
    """
    url = PREFECT_API_URL.value()
    if not url:
        raise SandboxConfigError(
            "The docker-sandbox worker needs PREFECT_API_URL to let runs report their state",
            value=url,
            hint="Start the worker against a Prefect server (`prefect server start`)",
        )
    parts = urlsplit(url)
    if parts.hostname in _LOOPBACK:
        netloc = parts.netloc.replace(parts.hostname, "host.docker.internal", 1)
        url = parts._replace(netloc=netloc).geturl()
    return str(url)


def api_endpoint(url: str) -> str:
    """``host:port`` of an API URL, for the egress allow-list."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


class DockerSandboxWorker(docker_worker_base()):  # type: ignore[misc]
    """Runs each flow run in a hardened Docker container (``--type docker-sandbox``)."""

    type = "docker-sandbox"
    job_configuration = DockerSandboxJobConfiguration
    _description = (
        "Run flow runs in locked-down Docker containers: no capabilities, read-only root, "
        "non-root user, seccomp, resource limits, network only to the Prefect API. Job "
        "variables that would loosen this are refused."
    )
    _display_name = "Docker sandbox (wflo)"
    _documentation_url = "https://github.com/wflo-ai/wflo-prefect/blob/main/docs/sandbox.md"

    async def run(
        self,
        flow_run: Any,
        configuration: Any,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> DockerSandboxWorkerResult:
        """Open the run's API-only network, run the container, then remove the network."""
        # One id per run, never the job's `name` (a job variable two runs may share): the
        # run's containers are found and removed by it.
        run_id = uuid.uuid4().hex[:12]
        egress: Egress | None = None
        if configuration.network == "prefect-api-only":
            url = api_url()
            configuration.env["PREFECT_API_URL"] = url
            egress = await run_sync_in_worker_thread(self._open_api_egress, url, run_id)
            configuration.env.update(egress.proxy_env)
            configuration.env["NO_PROXY"] = ""
        configuration.__dict__["_wflo_egress"] = egress
        configuration.__dict__["_wflo_run_id"] = run_id
        try:
            result = await super().run(flow_run, configuration, task_status)
        finally:
            await run_sync_in_worker_thread(self._remove_after_exit, run_id, egress)
        return DockerSandboxWorkerResult(
            status_code=result.status_code, identifier=result.identifier
        )

    def _open_api_egress(self, url: str, run_id: str) -> Egress:
        proxy_config = SandboxConfig(
            image=get_settings().sandbox_image,
            network_enabled=True,
            allowed_hosts=(api_endpoint(url),),
        )
        client = self.docker_client()
        return open_egress(client, proxy_config, sandbox_id=run_id)

    def _remove_after_exit(self, run_id: str, egress: Egress | None) -> None:
        from docker.errors import NotFound

        # Found by this run's own label: prefect-docker renames the container on a name
        # conflict, and another run may carry the same name.
        client = self.docker_client()
        selector = {"label": [f"{LABEL_ID}={run_id}", f"{LABEL_ROLE}=flow-run"]}
        for container in client.containers.list(all=True, filters=selector, ignore_removed=True):
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
        if egress is not None:
            egress.close()

    def _declared_volumes(self, docker_client: Any, configuration: Any) -> dict[str, Any]:
        """The image's ``VOLUME`` paths; the image is pulled first if it is not here yet."""
        from docker.errors import ImageNotFound

        try:
            image = docker_client.images.get(configuration.image)
        except ImageNotFound:
            # prefect-docker pulls after building the settings; the tmpfs over declared
            # volumes must be known before, so pull now (it then finds the image here).
            self.pull_image(docker_client, configuration)
            image = docker_client.images.get(configuration.image)
        return dict(image.attrs["Config"].get("Volumes") or {})

    def container_settings(self, docker_client: Any, configuration: Any) -> dict[str, Any]:
        """prefect-docker's settings, with the hardening laid over them."""
        settings: dict[str, Any] = super().container_settings(docker_client, configuration)
        config = sandbox_config_for(configuration)
        hardened = hardened_host_config(config)
        hardened["tmpfs"] = {
            **declared_volume_tmpfs(self._declared_volumes(docker_client, configuration), config),
            **hardened["tmpfs"],
        }
        environment = {
            **hardened["environment"],
            # Paths inside the container, on its tmpfs.
            "HOME": "/tmp",  # noqa: S108
            "PREFECT_HOME": "/tmp/.prefect",  # noqa: S108
            # Tells flow code it already runs in a hardened container (no Docker inside).
            SANDBOXED_ENV: "docker-sandbox",
            **(settings.get("environment") or {}),
        }
        settings.update(hardened)
        settings["environment"] = environment
        # The image's WORKDIR (where its flow code is) unless the job names another; the
        # writable tmpfs is mounted at config.workdir for the run's scratch files.
        settings["working_dir"] = (configuration.container_create_kwargs or {}).get("working_dir")
        settings["labels"] = {
            **(settings.get("labels") or {}),
            **sandbox_labels(
                config, sandbox_id=configuration.__dict__["_wflo_run_id"], role="flow-run"
            ),
        }
        settings["volumes"] = []
        egress: Egress | None = configuration.__dict__.get("_wflo_egress")
        settings["network_mode"] = None if egress is not None else "none"
        settings["network"] = egress.network if egress is not None else None
        if egress is not None:
            settings["dns"] = ["127.0.0.1"]
        else:
            settings.pop("extra_hosts", None)
        return settings
