"""Create and start one hardened sandbox container (and its egress path when networked)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from wflo_prefect.errors import ServiceUnavailableError
from wflo_prefect.sandbox.attached import AttachedRunner
from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.errors import SandboxError
from wflo_prefect.sandbox.hardening import (
    declared_volume_tmpfs,
    hardened_host_config,
    sandbox_labels,
)

__all__ = ["Launched", "launch_container"]


@dataclass
class Launched:
    """A started sandbox container and what must be removed after it."""

    sandbox_id: str
    container: Any
    teardown: list[Callable[[], None]] = field(default_factory=list)
    runner: AttachedRunner | None = None


def _resident_command() -> list[str]:
    source = resources.files("wflo_prefect.sandbox").joinpath("resident_runner.py").read_text()
    return ["python3", "-u", "-c", source]


def _missing_image(config: SandboxConfig, exc: Exception) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "The sandbox image is not in the Docker engine",
        value=config.image,
        hint=f"Build it with `wflo sandbox build-image` ({exc})",
        docs="sandbox.md",
    )


def launch_container(
    client: Any,
    config: SandboxConfig,
    *,
    sandbox_id: str,
    role: str = "session",
    resident: bool = False,
) -> Launched:
    """Create and start the container of sandbox ``sandbox_id``; roll back on failure.

    With ``resident``, its main process is the resident runner (needs python3 in the
    image) and runs go over its attach stream; otherwise it idles and runs are execs.
    """
    from docker.errors import APIError, ImageNotFound

    from wflo_prefect.sandbox.egress import open_egress

    launched = Launched(sandbox_id, None)
    options = hardened_host_config(config)
    if config.network_enabled:
        egress = open_egress(client, config, sandbox_id=sandbox_id)
        launched.teardown.append(egress.close)
        options["network"] = egress.network
        options["dns"] = ["127.0.0.1"]  # no upstream resolver: names resolve at the proxy
        options["environment"] = {**options["environment"], **egress.proxy_env}
    else:
        options["network_mode"] = "none"
    try:
        declared = client.images.get(config.image).attrs["Config"].get("Volumes")
        options["tmpfs"] = {**declared_volume_tmpfs(declared, config), **options["tmpfs"]}
        if resident:
            # The runner serves until its stdin closes; `timeout` still bounds its life.
            command = ["timeout", str(config.max_lifetime_seconds), *_resident_command()]
            # StdinOnce (docker-py sets it on a create that is not detached): the engine
            # closes the runner's stdin when our attach stream closes (the sandbox closed,
            # or this process died, even by SIGKILL); the runner exits, and AutoRemove
            # has the engine remove the container by itself.
            options.update(stdin_open=True, auto_remove=True)
        else:
            command = ["sleep", str(config.max_lifetime_seconds)]
        launched.container = client.containers.create(
            config.image,
            command,
            name=f"wflo-sandbox-{sandbox_id}",
            labels=sandbox_labels(config, sandbox_id=sandbox_id, role=role),
            detach=not resident,
            **options,
        )
        if resident:
            launched.runner = AttachedRunner(client, launched.container.id)
        launched.container.start()
    except ImageNotFound as exc:
        _undo(launched)
        raise _missing_image(config, exc) from exc
    except APIError as exc:
        _undo(launched)
        raise SandboxError(
            "The Docker engine refused to start the sandbox container",
            value=config.runtime,
            hint=f"Check `wflo doctor` ({exc.explanation or exc})",
        ) from exc
    return launched


def _undo(launched: Launched) -> None:
    from docker.errors import NotFound

    if launched.container is not None:
        with contextlib.suppress(NotFound):
            launched.container.remove(force=True, v=True)
    for step in launched.teardown:
        step()
