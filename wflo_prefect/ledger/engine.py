"""Connections to the ledger database and its migrations.

The embedded default is a SQLite file under the Prefect home, opened in WAL mode
with a busy timeout so several processes on one machine can share it. Teams point
``PREFECT_INTEGRATIONS_WFLO_LEDGER_URL`` at PostgreSQL. Migrations are applied by
``wflo db upgrade`` and, unless turned off, automatically on first use in each
process (a fast check of the stored revision; the upgrade itself runs under a lock
so concurrent first users do not race).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from wflo_prefect.errors import ConfigurationError, LedgerError

__all__ = ["create_ledger_engine", "current_revision", "head_revision", "upgrade"]

_MIGRATIONS = "wflo_prefect.ledger:migrations"
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


#: A pooled PostgreSQL connection idle longer than this is pinged before it is used.
IDLE_PING_SECONDS = 10.0


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """Ping a connection that sat idle in the pool (the server may have dropped it).

    SQLAlchemy's ``pool_pre_ping`` pings on *every* checkout: a round trip on the path
    of every LLM call. A connection in steady use is not pinged; one idle for
    :data:`IDLE_PING_SECONDS` is, and a dead one is replaced (the pool retries the
    checkout on ``DisconnectionError``).
    """
    now = time.monotonic()
    last = record.info.get("wflo_checked_out")
    record.info["wflo_checked_out"] = now
    if last is None or now - last < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError(f"idle ledger connection is gone: {exc}") from exc


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes SQLite's write lock up front, so a read-then-write
    # transaction cannot fail half-way with "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_ledger_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create an engine for ``url``; SQLite files get WAL mode and their folder."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            "The ledger URL is not a SQLAlchemy URL",
            value=_redact(url),
            hint="Set PREFECT_INTEGRATIONS_WFLO_LEDGER_URL to e.g. "
            "postgresql+psycopg://user:pass@host:5432/db, or leave it empty for SQLite",
            docs="settings.md",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy, not pysqlite, issue BEGIN (see SQLAlchemy's pysqlite notes).
        event.listen(engine, "connect", lambda c, _r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size * 2)
        event.listen(engine, "checkout", _ping_if_idle)
        return engine
    raise ConfigurationError(
        f"The ledger supports SQLite and PostgreSQL, not {backend!r}",
        value=_redact(url),
        hint="Use a sqlite:/// or postgresql+psycopg:// URL",
        docs="settings.md",
    )


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this version."""
    location = str(resources.files("wflo_prefect.ledger") / "migrations")
    config = Config()
    config.set_main_option("script_location", location)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` when it has none."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise LedgerError(
            "Cannot connect to the ledger database",
            value=engine.url.render_as_string(hide_password=True),
            hint=f"Check the server is running and the URL is right ({exc.orig})",
            docs="settings.md",
        ) from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``, holding a lock against concurrent upgrades."""
    with _lock:
        try:
            if engine.dialect.name == "postgresql":
                with engine.connect() as conn:
                    # A session advisory lock serialises first use across machines. It is
                    # released only after the migration committed, so the next holder
                    # sees the new revision and does nothing.
                    conn.execute(text("SELECT pg_advisory_lock(7242001)"))
                    conn.commit()
                    try:
                        _run_upgrade(engine, conn, revision)
                        conn.commit()
                    except BaseException:
                        conn.rollback()
                        raise
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(7242001)"))
                        conn.commit()
            else:
                with _sqlite_file_lock(engine):
                    _run_upgrade(engine, None, revision)
        except SQLAlchemyError as exc:
            raise LedgerError(
                "Migrating the ledger database failed",
                value=engine.url.render_as_string(hide_password=True),
                hint=f"Run `wflo db upgrade` to see the full error ({exc})",
                docs="settings.md",
            ) from exc


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (an ``flock`` beside it).

    Several flow-run processes may open a new ledger at once (a worker starting runs,
    sagas started together); SQLite's DDL under Alembic is not one transaction, so
    two unserialised upgrades both create the same table. The second holder finds
    the schema at head and does nothing.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    path = Path(database)
    lock_path = path.with_name(path.name + ".migrate-lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_upgrade(engine: Engine, conn: Any, revision: str) -> None:
    config = _config(engine)
    config.set_main_option(
        "script_location", str(resources.files("wflo_prefect.ledger") / "migrations")
    )
    if conn is not None:
        config.attributes["connection"] = conn
    command.upgrade(config, revision)
