"""The Docker engine the sandbox talks to, and the errors it turns engine failures into."""

from __future__ import annotations

import threading
from typing import Any

from wflo_prefect.errors import ServiceUnavailableError
from wflo_prefect.settings import get_settings

__all__ = ["docker_client", "engine_runtimes", "image_present"]

_client: Any = None
_lock = threading.Lock()


def docker_client() -> Any:
    """A process-wide client of the configured engine (``docker_host`` setting or env)."""
    global _client
    if _client is not None:
        return _client
    import docker
    from docker.errors import DockerException

    host = get_settings().docker_host
    with _lock:
        if _client is None:
            try:
                client = (
                    docker.DockerClient(base_url=host, timeout=60)
                    if host
                    else docker.from_env(timeout=60)
                )
                client.ping()
            except DockerException as exc:
                raise ServiceUnavailableError(
                    "The sandbox needs a Docker engine and none answers",
                    value=host or "DOCKER_HOST / local socket",
                    hint=f"Start Docker or set PREFECT_INTEGRATIONS_WFLO_DOCKER_HOST ({exc})",
                    docs="sandbox.md",
                ) from exc
            _client = client
    return _client


def engine_runtimes(client: Any) -> set[str]:
    """OCI runtimes registered with the engine (``runc``, ``runsc`` ...)."""
    return set((client.info().get("Runtimes") or {}).keys())


def image_present(client: Any, image: str) -> bool:
    """Whether ``image`` is in the engine's image store."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    return True
