"""Shared fixtures: a real Prefect API, a temporary ledger, PostgreSQL and Docker.

Services the tests need are real. When one is missing the fixture fails with what
to do (run ``scripts/provision.sh``); it never skips, so CI cannot pass without it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Settings must be in the environment before Prefect is imported.
_HOME = tempfile.mkdtemp(prefix="wflo-tests-prefect-")
os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = f"sqlite:///{Path(_HOME) / 'ledger.db'}"

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from wflo_prefect.ledger import Ledger, reset_ledger_cache  # noqa: E402
from wflo_prefect.testing import temporary_ledger  # noqa: E402

POSTGRES_URL = os.environ.get(
    "WFLO_TEST_POSTGRES_URL", "postgresql+psycopg://wflo:wflo@127.0.0.1:5432/wflo_test"
)
PROVISION_HINT = "Run `scripts/provision.sh` as root (or see README.md, 'Services the tests need')."


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """One real Prefect API (a temporary server) for the whole test session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    """A fresh SQLite ledger, made the default for the test."""
    with temporary_ledger() as fresh:
        yield fresh


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of a reachable PostgreSQL server; fails (never skips) when there is none."""
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.orig}. {PROVISION_HINT}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"wflo_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        reset_ledger_cache()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """The same test on a SQLite ledger and on a PostgreSQL ledger."""
    if request.param == "sqlite":
        with temporary_ledger() as fresh:
            yield fresh
    else:
        url = request.getfixturevalue("postgres_url")
        with temporary_ledger(url) as fresh:
            yield fresh


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    """A client of the real Docker engine; fails (never skips) when there is none."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except DockerException as exc:
        pytest.fail(f"No Docker engine: {exc}. {PROVISION_HINT}")
    yield client
    client.close()
