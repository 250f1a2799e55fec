"""What a stack is made of: ports, databases, the stack directory, and the shared environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "PROCESS_POOL",
    "SANDBOX_POOL",
    "SERVER_TUNING",
    "StackSpec",
    "default_stack_dir",
]

#: The maintenance database of the PostgreSQL `scripts/provision.sh postgres` sets up; the
#: stack connects there only to create its own databases.
DEFAULT_POSTGRES_URL = "postgresql://wflo:wflo@127.0.0.1:5432/postgres"
PROCESS_POOL = "wflo-process"
SANDBOX_POOL = "wflo-sandbox"
LOOPBACK = "127.0.0.1"

#: Prefect settings the stack starts its server and clients with, sized for about a
#: thousand concurrent flow runs (Prefect's defaults are 5 + 10 pooled connections, a
#: 30 s pool wait and a 10 s statement timeout, which a burst of runs exhausts). Each
#: can be overridden from the environment `wflo stack up` runs in. The server's pool
#: (``POOL_SIZE`` + ``MAX_OVERFLOW`` per server process) must fit in PostgreSQL's
#: ``max_connections`` next to the ledger's and other clients' connections.
SERVER_TUNING: dict[str, str] = {
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "20",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT": "120",
    "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
    "PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT": "30",
    # Clients (workers, flow runs, the approval service) retry 429/502/503 and
    # dropped connections more patiently while the server works through a burst.
    "PREFECT_CLIENT_MAX_RETRIES": "10",
    "PREFECT_API_REQUEST_TIMEOUT": "180",
}


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
        """The variables every component (and a client of the stack) runs with.

        Includes :data:`SERVER_TUNING`, each overridden by the same variable in
        ``os.environ``.
        """
        return {
            **{key: os.environ.get(key, value) for key, value in SERVER_TUNING.items()},
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
