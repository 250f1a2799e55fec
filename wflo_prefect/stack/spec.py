"""What a stack is made of: ports, databases, the stack directory, and the shared environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "PROCESS_POOL",
    "SANDBOX_POOL",
    "StackSpec",
    "default_stack_dir",
]

#: The maintenance database of the PostgreSQL `scripts/provision.sh postgres` sets up; the
#: stack connects there only to create its own databases.
DEFAULT_POSTGRES_URL = "postgresql://wflo:wflo@127.0.0.1:5432/postgres"
PROCESS_POOL = "wflo-process"
SANDBOX_POOL = "wflo-sandbox"
LOOPBACK = "127.0.0.1"


def default_stack_dir() -> Path:
    """``$WFLO_STACK_DIR``, else ``~/.wflo/stack``."""
    return Path(os.environ.get("WFLO_STACK_DIR") or Path.home() / ".wflo" / "stack")


@dataclass(frozen=True)
class StackSpec:
    """One stack's settings; every port is on 127.0.0.1."""

    directory: Path = field(default_factory=default_stack_dir)
    postgres_url: str = DEFAULT_POSTGRES_URL
    database: str = "wflo_stack"
    server_port: int = 4200
    approvals_port: int = 8787
    metrics_port: int = 9464
    sandbox_worker: bool = True
    workdir: Path = field(default_factory=Path.cwd)

    @property
    def ledger_database(self) -> str:
        """The governance ledger's own database, next to Prefect's."""
        return f"{self.database}_ledger"

    @property
    def api_url(self) -> str:
        """The Prefect API every component and client talks to."""
        return f"http://{LOOPBACK}:{self.server_port}/api"

    @property
    def ui_url(self) -> str:
        """The Prefect UI."""
        return f"http://{LOOPBACK}:{self.server_port}"

    @property
    def approvals_url(self) -> str:
        """The approval service."""
        return f"http://{LOOPBACK}:{self.approvals_port}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus metrics endpoint."""
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"

    @property
    def state_file(self) -> Path:
        """pids, ports and addresses of the running stack."""
        return self.directory / "state.json"

    @property
    def env_file(self) -> Path:
        """``export`` lines a shell sources to use the stack (mode 0600: it holds passwords)."""
        return self.directory / "env"

    def database_url(self, database: str, driver: str) -> str:
        """``postgres_url`` pointed at ``database`` with the SQLAlchemy ``driver``."""
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres_url).set(drivername=f"postgresql+{driver}", database=database)
        return url.render_as_string(hide_password=False)

    def environment(self) -> dict[str, str]:
        """The variables every component (and a client of the stack) runs with."""
        return {
            "PREFECT_HOME": str(self.directory / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self.database_url(self.database, "asyncpg"),
            "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": self.database_url(
                self.ledger_database, "psycopg"
            ),
            "PREFECT_INTEGRATIONS_WFLO_APPROVALS_SERVICE_URL": self.approvals_url,
            # Decisions reach waiting runs through Prefect's API and events only, as they
            # do when the approval service runs on another host than the run.
            "PREFECT_INTEGRATIONS_WFLO_APPROVALS_LOOPBACK_WAKE": "false",
            "PREFECT_INTEGRATIONS_WFLO_METRICS_PORT": str(self.metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(self.directory / "metrics"),
        }
