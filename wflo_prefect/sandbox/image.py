"""Building the default sandbox image (``wflo sandbox build-image``).

Where a registry is reachable: the registry's slim Python image of this
interpreter's version (so functions pickled here load there), plus a non-root user
1000. Otherwise, offline: Debian's packages through debootstrap, by
``scripts/build_sandbox_image.sh`` (shipped inside the wheel as
``wflo_prefect/sandbox/build_sandbox_image.sh``), which needs root.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wflo_prefect.errors import ConfigurationError, ServiceUnavailableError
from wflo_prefect.observability.logging import get_logger

__all__ = ["BuiltImage", "build_image", "default_base_image", "offline_build_script"]

_log = get_logger("sandbox")

_DOCKERFILE = """\
FROM {base}
RUN (getent group 1000 || groupadd --gid 1000 sandbox) \\
 && (getent passwd 1000 || useradd --uid 1000 --gid 1000 --create-home \\
     --home-dir /home/sandbox --shell /bin/sh sandbox) \\
 && rm -rf /var/lib/apt/lists/*
LABEL org.wflo.sandbox-image=1
USER 1000:1000
WORKDIR /home/sandbox
ENV PYTHONDONTWRITEBYTECODE=1
CMD ["python3"]
"""


@dataclass(frozen=True)
class BuiltImage:
    """The image that was built and how."""

    tag: str
    method: Literal["registry", "offline"]
    base: str


def default_base_image() -> str:
    """The registry's slim Python image matching this interpreter (e.g. python:3.11-slim)."""
    return f"python:{sys.version_info[0]}.{sys.version_info[1]}-slim"


def offline_build_script() -> Path:
    """The debootstrap build script: packaged in the wheel, or scripts/ in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here / "build_sandbox_image.sh",
        here.parents[1] / "scripts" / "build_sandbox_image.sh",
    ):
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        "The offline image build script is missing from this installation",
        value=str(here),
        hint="Reinstall wflo-prefect, or run scripts/build_sandbox_image.sh from a checkout",
        docs="sandbox.md",
    )


def _pull(client: Any, base: str) -> bool:
    from docker.errors import APIError, DockerException

    repository, _, tag = base.rpartition(":") if ":" in base else (base, "", "latest")
    try:
        for line in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in line:
                return False
    except (APIError, DockerException) as exc:
        _log.info("sandbox.image_pull_failed", base=base, error=str(exc))
        return False
    return True


def _build_from_registry(client: Any, tag: str, base: str) -> None:
    from docker.errors import BuildError

    dockerfile = io.BytesIO(_DOCKERFILE.format(base=base).encode())
    try:
        client.images.build(fileobj=dockerfile, tag=tag, rm=True, pull=False)
    except BuildError as exc:
        raise ServiceUnavailableError(
            "Building the sandbox image on the registry's base failed",
            value=base,
            hint=f"{exc.msg}; use --offline to build from Debian's packages instead",
            docs="sandbox.md",
        ) from exc


def _build_offline(tag: str) -> None:
    if os.geteuid() != 0:
        raise ConfigurationError(
            "The offline sandbox image build needs root (debootstrap)",
            value=os.geteuid(),
            hint="Run `sudo wflo sandbox build-image`",
            docs="sandbox.md",
        )
    script = offline_build_script()
    completed = subprocess.run(["bash", str(script), tag], check=False)
    if completed.returncode != 0:
        raise ServiceUnavailableError(
            "The offline sandbox image build failed",
            value=str(script),
            hint="Read its output above; it needs Debian's package mirror in the apt sources",
            docs="sandbox.md",
        )


def build_image(
    client: Any,
    tag: str,
    *,
    base: str | None = None,
    mode: Literal["auto", "registry", "offline"] = "auto",
) -> BuiltImage:
    """Build the sandbox image ``tag``: from the registry's base if it answers, else offline."""
    base = base or default_base_image()
    if mode != "offline":
        if _pull(client, base):
            _build_from_registry(client, tag, base)
            return BuiltImage(tag, "registry", base)
        if mode == "registry":
            raise ServiceUnavailableError(
                "The registry's base image could not be pulled",
                value=base,
                hint="Check the engine's registry access, or use --offline",
                docs="sandbox.md",
            )
    _build_offline(tag)
    return BuiltImage(tag, "offline", "debian bookworm (debootstrap)")
