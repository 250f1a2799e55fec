"""Smaller gaps: image volumes, writable places, engine failures after the container died."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, SandboxError

pytestmark = pytest.mark.docker

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


@pytest.fixture(scope="module")
def volume_image(docker_client: Any) -> Iterator[str]:
    """The sandbox image plus a declared ``VOLUME /data`` (built locally, no registry)."""
    tag = f"wflo-test-volume:{uuid.uuid4().hex[:8]}"
    dockerfile = io.BytesIO(b"FROM wflo-sandbox:latest\nVOLUME /data\n")
    docker_client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_image_volumes_get_a_capped_tmpfs_not_an_anonymous_volume(
    docker_client: Any, volume_image: str
) -> None:
    """A path the image declares as VOLUME is a tmpfs of tmp_size; no volume is left on disk."""
    with DockerSandbox(SandboxConfig(image=volume_image, tmp_size="8m")) as box:
        mounts = docker_client.api.inspect_container(box.container_id)["Mounts"]
        listed = box.run("grep ' /data ' /proc/self/mounts; echo x > /data/f && echo written")
    assert not [m for m in mounts if m["Type"] == "volume"]
    assert listed.stdout.startswith("tmpfs /data tmpfs ")
    assert "size=8192k" in listed.stdout
    assert listed.stdout.endswith("written\n")


WRITABLE = r"""
import json, os
points = sorted({line.split()[4] for line in open("/proc/self/mountinfo")})
writable = []
for point in points:
    try:
        probe = os.path.join(point, ".wflo-probe")
        open(probe, "w").close(); os.unlink(probe); writable.append(point)
    except OSError:
        pass
shm = [l.split()[3] for l in open("/proc/self/mounts") if l.split()[1] == "/dev/shm"][0]
print(json.dumps({"writable": writable, "shm": shm}))
"""


def test_writable_places_are_exactly_the_documented_ones(docker_client: Any) -> None:
    """Only /workspace, /tmp, /dev/shm (64 MiB, noexec), /dev/mqueue are writable; docs say so."""
    with DockerSandbox(SandboxConfig()) as box:
        result = box.run_python(WRITABLE)
    facts = json.loads(result.stdout)
    assert facts["writable"] == ["/dev/mqueue", "/dev/shm", "/tmp", "/workspace"]
    assert {"noexec", "nosuid", "nodev", "size=65536k"} <= set(facts["shm"].split(","))
    docs = DOCS.read_text()
    for place in facts["writable"]:
        assert f"`{place}`" in docs, f"docs/sandbox.md does not name writable {place}"


def test_commands_after_the_container_died_raise_sandbox_errors(docker_client: Any) -> None:
    """A container killed under the sandbox (as a gVisor fork bomb does) gives SandboxError."""
    with DockerSandbox(SandboxConfig()) as box:
        docker_client.api.kill(box.container_id)
        with pytest.raises(SandboxError, match="could not run a command"):
            box.run("true")
        with pytest.raises(SandboxError, match="was killed"):
            box.get_files(["/tmp/x"])
