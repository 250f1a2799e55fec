"""Small SQL helpers the repositories share: a row lock where there is one, an upsert."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["locked", "upsert"]


def locked(session: Session, query: Any) -> Any:
    """``query`` with ``FOR UPDATE`` where the backend has row locks (SQLite locks the file)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return query.with_for_update()
    return query


def upsert(
    session: Session, table: Table, values: dict[str, Any], keys: list[str], changes: list[str]
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET changes``: one statement, no read."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=keys, set_={c: statement.excluded[c] for c in changes}
        )
    )
