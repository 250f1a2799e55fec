"""Start and find `wflo stack` for the benchmarks that measure on it."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

__all__ = ["BIN", "POSTGRES_URL", "ROOT", "free_port", "stack_up"]

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
POSTGRES_URL = os.environ.get(
    "WFLO_TEST_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)


def free_port() -> int:
    """A port free on every address (the stack's relay listens on the Docker bridge too)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))  # noqa: S104 - probing for a port free on every address
        return int(probe.getsockname()[1])


def stack_up(
    stack_dir: Path, database: str, ports: dict[str, int]
) -> subprocess.CompletedProcess[str]:
    """`wflo stack up` without the sandbox worker, on ``ports`` (server, approvals, metrics)."""
    return subprocess.run(
        [
            str(BIN / "wflo"),
            *("stack", "up", "--dir", str(stack_dir)),
            *("--postgres-url", POSTGRES_URL, "--database", database),
            "--no-sandbox-worker",
            *("--server-port", str(ports["server"])),
            *("--approvals-port", str(ports["approvals"])),
            *("--metrics-port", str(ports["metrics"])),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
