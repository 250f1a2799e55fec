"""Starting and stopping a `wflo stack` for end-to-end tests, as a user does from a shell."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
POSTGRES_URL = os.environ.get(
    "WFLO_TEST_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)


def free_port() -> int:
    """A port nothing listens on right now (on loopback and Docker's bridge)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))  # noqa: S104 - only probing for a free port
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """A running stack: its directory, ports and the environment that points at it."""

    directory: Path
    database: str
    server_port: int
    approvals_port: int
    metrics_port: int
    up_output: str

    @property
    def env(self) -> dict[str, str]:
        """This process's environment (minus PREFECT_*) plus the stack's env file."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTEST_"))}
        for line in (self.directory / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        return env


def wflo(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the `wflo` command line."""
    return subprocess.run(
        [str(BIN / "wflo"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env=env,
    )


def drop_databases(*names: str) -> None:
    """Remove the stack's databases (after `wflo stack down`)."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(
                    sa.text(
                        "select pg_terminate_backend(pid) from pg_stat_activity where datname = :n"
                    ),
                    {"n": name},
                )
                conn.execute(sa.text(f'drop database if exists "{name}"'))
    finally:
        admin.dispose()


@contextmanager
def running_stack(directory: Path, *extra: str) -> Iterator[Stack]:
    """`wflo stack up` on free ports and a new database; `wflo stack down` and drop after."""
    stack = Stack(
        directory=directory,
        database=f"wflo_e2e_{uuid.uuid4().hex[:8]}",
        server_port=free_port(),
        approvals_port=free_port(),
        metrics_port=free_port(),
        up_output="",
    )
    args = [
        "stack",
        "up",
        "--dir",
        str(directory),
        "--postgres-url",
        POSTGRES_URL,
        "--database",
        stack.database,
        "--server-port",
        str(stack.server_port),
        "--approvals-port",
        str(stack.approvals_port),
        "--metrics-port",
        str(stack.metrics_port),
        *extra,
    ]
    try:
        up = wflo(*args)
        stack.up_output = up.stdout + up.stderr
        assert up.returncode == 0, stack.up_output[-4000:]
        yield stack
    finally:
        down = wflo("stack", "down", "--dir", str(directory))
        drop_databases(stack.database, f"{stack.database}_ledger")
        assert down.returncode == 0, down.stdout + down.stderr


def build_flows_image() -> str:
    """The docker-sandbox pool's default image, built as a user builds it."""
    from wflo_prefect.sandbox.flows_image import DEFAULT_FLOWS_IMAGE

    built = wflo("sandbox", "build-image", "--flows", "--project", str(ROOT), timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert f"built {DEFAULT_FLOWS_IMAGE}" in built.stdout
    return DEFAULT_FLOWS_IMAGE


SAVE_APPROVERS = """
import json, sys
from wflo_prefect.approvals import Approvers, Principal, hash_api_key
spec = json.loads(sys.argv[1])
Approvers(
    users=[Principal(name=n, api_key_hashes=[hash_api_key(k)]) for n, k in spec["keys"].items()],
    groups=spec["groups"],
).save(spec["name"], overwrite=True)
"""


def save_approvers(
    stack: Stack, name: str, keys: dict[str, str], groups: dict[str, list[str]]
) -> None:
    """Save a `wflo Approvers` block on the stack's server (users with these API keys)."""
    import json

    done = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            SAVE_APPROVERS,
            json.dumps({"name": name, "keys": keys, "groups": groups}),
        ],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
