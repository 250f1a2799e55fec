"""One ledger database: its engine, schema check and short transactions.

The shared base every capability repository writes through (``transaction()``,
``begin()``, ``single_statement()``). It imports no repository; the
:class:`~wflo_prefect.ledger.repository.Ledger` bundles them on top of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from wflo_prefect.errors import LedgerError
from wflo_prefect.ledger.engine import (
    create_ledger_engine,
    current_revision,
    head_revision,
    upgrade,
)

__all__ = ["Database"]


class Database:
    """Access to one ledger database: its engine and short transactions.

    Capability repositories take a :class:`Database` and write through
    :meth:`transaction` / :meth:`begin`; they never import the :class:`Ledger` that
    bundles them (so no module of the ledger imports back up).
    """

    def __init__(self, engine: Engine, *, auto_migrate: bool = True) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._auto_migrate = auto_migrate
        self._ready = threading.Event()
        self._ready_lock = threading.Lock()
        self._dispose_hooks: list[Callable[[Database], None]] = []
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    def from_url(cls, url: str, *, auto_migrate: bool = True, pool_size: int = 5) -> Self:
        """Open the ledger at ``url`` (SQLite or PostgreSQL)."""
        return cls(create_ledger_engine(url, pool_size=pool_size), auto_migrate=auto_migrate)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def ensure_schema(self) -> None:
        """Bring the schema to the newest revision (once per process)."""
        if self._ready.is_set():
            return
        with self._ready_lock:
            if self._ready.is_set():
                return
            if current_revision(self.engine) != head_revision():
                if not self._auto_migrate:
                    raise LedgerError(
                        "The ledger database is not at the schema this version needs",
                        value=self.url,
                        hint="Run `wflo db upgrade`, or set "
                        "PREFECT_INTEGRATIONS_WFLO_LEDGER_AUTO_MIGRATE=true",
                        docs="settings.md",
                    )
                upgrade(self.engine)
            self._ready.set()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn database errors into :class:`LedgerError` naming the ledger."""
        try:
            yield
        except OperationalError as exc:
            raise LedgerError(
                "The ledger database could not complete a transaction",
                value=self.url,
                hint=f"Check the database is reachable and not full ({exc.orig})",
                docs="settings.md",
            ) from exc
        except SQLAlchemyError as exc:
            raise LedgerError(
                "A ledger transaction failed", value=self.url, hint=str(exc), docs="settings.md"
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        self.ensure_schema()
        session = self._sessions()
        try:
            with self._errors(), session.begin():
                yield session
        finally:
            session.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in one transaction, for hot paths that need no ORM session."""
        self.ensure_schema()
        with self._errors(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection whose statements each commit on their own (no BEGIN / COMMIT
        round trips): for a write that is one statement, on the path of every call.

        On SQLite (no round trips, and writes must take the lock up front) it is an
        ordinary transaction.
        """
        if self.engine.dialect.name == "sqlite":
            with self.begin() as connection:
                yield connection
            return
        self.ensure_schema()
        with self._errors(), self._autocommit.connect() as connection:
            yield connection

    def on_dispose(self, hook: Callable[[Database], None]) -> None:
        """Call ``hook`` before this ledger's connections are closed (e.g. to flush leases)."""
        if hook not in self._dispose_hooks:
            self._dispose_hooks.append(hook)

    def dispose(self) -> None:
        """Close pooled connections (e.g. after a fork, or in tests)."""
        hooks, self._dispose_hooks = self._dispose_hooks, []
        for hook in hooks:
            hook(self)
        self._close_repositories()
        self.engine.dispose()

    def _close_repositories(self) -> None:
        """Flush what repositories buffer (the :class:`Ledger` closes its audit log)."""
