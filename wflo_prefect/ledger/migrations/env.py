"""Alembic environment: runs the ledger's migrations on the engine wflo hands it."""

from __future__ import annotations

from alembic import context

from wflo_prefect.ledger.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = config.attributes["engine"]
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
