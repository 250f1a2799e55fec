"""The image a ``docker-sandbox`` work pool runs flows in (``wflo sandbox build-image --flows``).

It holds Python, this project's *locked* dependencies (``uv export --frozen`` of
``uv.lock``, installed with ``uv pip install --target`` from the configured package
index, so offline machines use their local index), wflo-prefect itself and the
project's ``flows/`` directory at ``/opt/flows/flows``. It runs as uid 1000.

The base is either the offline sandbox image (Debian packages through debootstrap,
built first if missing: needs root) or a registry's slim Python image given with
``--base`` (e.g. ``python:3.11-slim``). The base's Python must have this
interpreter's major.minor version: the packages installed are this platform's wheels.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wflo_prefect.errors import ConfigurationError, ServiceUnavailableError
from wflo_prefect.observability.logging import get_logger

__all__ = ["DEFAULT_FLOWS_IMAGE", "FlowsImage", "build_flows_image", "find_uv"]

_log = get_logger("sandbox")

#: What the docker-sandbox work pool's job template runs by default.
DEFAULT_FLOWS_IMAGE = "wflo-agent:latest"

_DOCKERFILE = """\
FROM {base}
USER root
RUN (getent group 1000 >/dev/null || groupadd --gid 1000 sandbox) \\
 && (getent passwd 1000 >/dev/null || useradd --uid 1000 --gid 1000 --create-home \\
     --home-dir /home/sandbox --shell /bin/sh sandbox)
COPY site /opt/wflo/site
COPY flows /opt/flows/flows
RUN printf '#!/bin/sh\\nexec python3 -m prefect "$@"\\n' >/usr/local/bin/prefect \\
 && printf '#!/bin/sh\\nexec python3 -m wflo_prefect.cli "$@"\\n' >/usr/local/bin/wflo \\
 && chmod 0755 /usr/local/bin/prefect /usr/local/bin/wflo \\
 && PYTHONPATH=/opt/wflo/site python3 -m compileall -q /opt/wflo/site /opt/flows >/dev/null \\
 && rm -rf /opt/wflo/site/bin
ENV PYTHONPATH=/opt/wflo/site PYTHONDONTWRITEBYTECODE=1
LABEL org.wflo.sandbox-image=1 org.wflo.flows-image=1
USER 1000:1000
WORKDIR /opt/flows
CMD ["python3"]
"""

_CHECK = (
    "import json, os, sys, prefect, wflo_prefect, flows; "
    "print(json.dumps([os.getuid(), list(sys.version_info[:2]), prefect.__version__]))"
)


@dataclass(frozen=True)
class FlowsImage:
    """The flows image that was built."""

    tag: str
    base: str
    python: str
    prefect_version: str
    packages: int


def find_uv(project: Path) -> str:
    """``uv`` on PATH, or the one ``scripts/bootstrap.sh`` put in ``.tools/bin``."""
    found = shutil.which("uv")
    if found:
        return found
    local = project / ".tools" / "bin" / "uv"
    if local.is_file():
        return str(local)
    raise ConfigurationError(
        "Building the flows image needs `uv` to install the locked dependencies",
        value=str(project),
        hint="Install uv (`pip install uv`) or run scripts/bootstrap.sh in the checkout",
        docs="deployment.md",
    )


def _uv(uv: str, project: Path, *args: str) -> str:
    done = subprocess.run(
        [uv, *args], cwd=project, capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise ServiceUnavailableError(
            f"`uv {args[0]} {args[1] if len(args) > 1 else ''}` failed while building the "
            "flows image",
            value=done.stderr.strip()[-800:],
            hint="Check that uv.lock is current (`uv lock`) and the package index is reachable",
            docs="deployment.md",
        )
    return done.stdout


def _image_python(client: Any, base: str) -> tuple[int, int]:
    from docker.errors import ContainerError, ImageNotFound

    try:
        out = client.containers.run(
            base,
            ["python3", "-c", "import sys; print(*sys.version_info[:2])"],
            remove=True,
            network_mode="none",
            user="0",
        )
    except (ContainerError, ImageNotFound) as exc:
        raise ConfigurationError(
            "The base image has no runnable python3",
            value=base,
            hint="Give a Python image with --base (e.g. python:3.11-slim) or build the "
            "offline sandbox image first (`sudo wflo sandbox build-image --offline`)",
            docs="deployment.md",
        ) from exc
    major, minor = (int(x) for x in out.decode().split())
    return major, minor


def _ensure_base(client: Any, base: str | None, sandbox_image: str) -> str:
    from docker.errors import ImageNotFound

    if base is None:
        try:
            client.images.get(sandbox_image)
        except ImageNotFound:
            from wflo_prefect.sandbox.image import build_image

            build_image(client, sandbox_image, mode="offline")
        return sandbox_image
    from wflo_prefect.sandbox.image import _pull

    try:
        client.images.get(base)
    except ImageNotFound:
        if not _pull(client, base):
            raise ServiceUnavailableError(
                "The base image is not here and could not be pulled",
                value=base,
                hint="Check the engine's registry access, or leave out --base to build "
                "from the offline sandbox image",
                docs="deployment.md",
            ) from None
    return base


def build_flows_image(
    client: Any,
    tag: str = DEFAULT_FLOWS_IMAGE,
    *,
    project: Path,
    flows_dir: Path | None = None,
    base: str | None = None,
    extras: tuple[str, ...] = ("openai",),
) -> FlowsImage:
    """Build ``tag``: ``base`` + the project's locked dependencies, wflo-prefect and flows/."""
    from docker.errors import BuildError

    project = project.resolve()
    flows = (flows_dir or project / "flows").resolve()
    if not (project / "uv.lock").is_file() or not (project / "pyproject.toml").is_file():
        raise ConfigurationError(
            "The flows image is built from a project with pyproject.toml and uv.lock",
            value=str(project),
            hint="Run the command from the project's root or pass --project",
            docs="deployment.md",
        )
    if not flows.is_dir():
        raise ConfigurationError(
            "The flows directory does not exist",
            value=str(flows),
            hint="Pass --flows-dir, or create flows/ in the project",
            docs="deployment.md",
        )
    from wflo_prefect.settings import get_settings

    base_image = _ensure_base(client, base, get_settings().sandbox_image)
    python = _image_python(client, base_image)
    if python != sys.version_info[:2]:
        raise ConfigurationError(
            "The base image's Python differs from this one; its wheels would not load there",
            value=f"{base_image}: {python[0]}.{python[1]}",
            hint=f"Use a Python {sys.version_info[0]}.{sys.version_info[1]} base, e.g. "
            f"--base python:{sys.version_info[0]}.{sys.version_info[1]}-slim",
            docs="deployment.md",
        )
    uv = find_uv(project)
    with tempfile.TemporaryDirectory(prefix="wflo-flows-image-") as tmp:
        context = Path(tmp)
        requirements = context / "requirements.txt"
        extra_args = [a for e in extras for a in ("--extra", e)]
        _uv(
            uv,
            project,
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--quiet",
            *extra_args,
            "-o",
            str(requirements),
        )
        site = context / "site"
        python_arg = ("--python", sys.executable)
        _uv(
            uv,
            project,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(site),
            *python_arg,
            "-r",
            str(requirements),
        )
        _uv(
            uv,
            project,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(site),
            *python_arg,
            "--no-deps",
            str(project),
        )
        shutil.copytree(
            flows, context / "flows", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (context / "Dockerfile").write_text(_DOCKERFILE.format(base=base_image))
        packages = sum(1 for line in requirements.read_text().splitlines() if "==" in line)
        _log.info("sandbox.flows_image.build", tag=tag, base=base_image, packages=packages)
        try:
            client.images.build(path=str(context), tag=tag, rm=True, pull=False)
        except BuildError as exc:
            raise ServiceUnavailableError(
                "Building the flows image failed",
                value=tag,
                hint=f"{exc.msg}; check the base image ({base_image})",
                docs="deployment.md",
            ) from exc
    out = client.containers.run(
        tag, ["python3", "-c", _CHECK], remove=True, network_mode="none"
    ).decode()
    import json

    uid, version, prefect_version = json.loads(out.strip().splitlines()[-1])
    if uid != 1000:
        raise ServiceUnavailableError(
            "The flows image does not run as uid 1000", value=uid, hint="Check the base image"
        )
    return FlowsImage(tag, base_image, f"{version[0]}.{version[1]}", prefect_version, packages)
