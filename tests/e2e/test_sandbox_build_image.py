"""`wflo sandbox build-image --offline` builds a working sandbox image from Debian's packages."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path


def test_offline_build_makes_a_runnable_non_root_python_image(docker_client: object) -> None:
    """The offline build (what machines without a registry use) yields python3 as uid 1000."""
    tag = f"wflo-sandbox-build-test:{uuid.uuid4().hex[:8]}"
    wflo = Path(sys.executable).parent / "wflo"
    try:
        built = subprocess.run(
            [str(wflo), "sandbox", "build-image", "--offline", "--tag", tag],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
        ran = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                tag,
                "python3",
                "-c",
                "import json, os, sys; print(json.dumps([os.getuid(), sys.version_info[0]]))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "[1000, 3]"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
