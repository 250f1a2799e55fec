"""The ledger on SQLite and on a real PostgreSQL server: migrations, audit log, errors."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from wflo_prefect.errors import ConfigurationError, LedgerError
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.engine import (
    create_ledger_engine,
    current_revision,
    head_revision,
    upgrade,
)
from wflo_prefect.ledger.models import Base, CostEntryRow
from wflo_prefect.observability.correlation import Correlation

TABLES = {
    "wflo_audit_events",
    "wflo_cost_entries",
    "wflo_budgets",
    "wflo_budget_windows",
    "wflo_budget_reservations",
    "wflo_approval_requests",
    "wflo_approval_decisions",
    "wflo_policy_decisions",
    "wflo_compensations",
    "wflo_snapshots",
}


def test_first_use_migrates_to_head(any_ledger: Ledger) -> None:
    """The first transaction brings an empty database to the newest revision."""
    assert current_revision(any_ledger.engine) is None
    any_ledger.audit.recent()
    assert current_revision(any_ledger.engine) == head_revision()
    names = set(sa.inspect(any_ledger.engine).get_table_names())
    assert names >= TABLES


def test_migrations_match_the_models(any_ledger: Ledger) -> None:
    """The migrated schema has exactly the columns the models declare."""
    any_ledger.ensure_schema()
    inspector = sa.inspect(any_ledger.engine)
    for table in Base.metadata.sorted_tables:
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == set(table.columns.keys()), table.name


def test_audit_events_round_trip_with_correlation(any_ledger: Ledger) -> None:
    """An audit event keeps its ids, payload and an aware UTC timestamp."""
    ids = Correlation(
        flow_run_id="0b6ad4e6-9d5a-4f7c-8d55-2f0f0f0f0f01",
        task_run_id="0b6ad4e6-9d5a-4f7c-8d55-2f0f0f0f0f02",
        trace_id="a" * 32,
        span_id="b" * 16,
        flow_name="f",
        task_name="t",
    )
    stored = any_ledger.audit.record(
        "task_run.started", correlation=ids, payload={"operation": "delete", "n": 3}
    )
    [read] = any_ledger.audit.for_flow_run(ids.flow_run_id or "")
    assert read == stored
    assert read.trace_id == "a" * 32
    assert read.payload == {"operation": "delete", "n": 3}
    assert read.occurred_at.tzinfo is not None
    assert any_ledger.audit.for_trace("a" * 32) == [read]


def test_audit_trail_is_ordered_and_filtered_by_run(any_ledger: Ledger) -> None:
    """A run's trail holds its own events only, oldest first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    run_a = Correlation(flow_run_id="a")
    run_b = Correlation(flow_run_id="b")
    any_ledger.audit.record("second", correlation=run_a, occurred_at=start + timedelta(seconds=1))
    any_ledger.audit.record("first", correlation=run_a, occurred_at=start)
    any_ledger.audit.record("other", correlation=run_b, occurred_at=start)
    assert [e.event for e in any_ledger.audit.for_flow_run("a")] == ["first", "second"]
    assert [e.event for e in any_ledger.audit.recent(event_prefix="oth")] == ["other"]


def test_money_is_decimal_exactly(any_ledger: Ledger) -> None:
    """Money columns store and return Decimal without float rounding."""
    amount = Decimal("0.0000012345")
    with any_ledger.transaction() as session:
        session.add(CostEntryRow(provider="openai", model="gpt-4o", cost_usd=amount))
    with any_ledger.transaction() as session:
        row = session.scalars(sa.select(CostEntryRow)).one()
        assert isinstance(row.cost_usd, Decimal)
        assert row.cost_usd == amount


def test_failed_transaction_leaves_nothing(any_ledger: Ledger) -> None:
    """An error inside a transaction rolls back everything written in it."""

    def write_then_fail() -> None:
        with any_ledger.transaction() as session:
            session.add(CostEntryRow(provider="openai", model="m", cost_usd=Decimal(1)))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with any_ledger.transaction() as session:
        assert session.scalars(sa.select(CostEntryRow)).all() == []


def test_naive_timestamps_are_refused(any_ledger: Ledger) -> None:
    """A naive datetime is refused rather than guessed, and nothing is written."""
    with pytest.raises(LedgerError, match="naive datetime"):
        any_ledger.audit.record("x", occurred_at=datetime(2026, 1, 1))
    assert any_ledger.audit.recent() == []


def test_upgrade_is_idempotent(any_ledger: Ledger) -> None:
    """Upgrading an up-to-date ledger changes nothing."""
    upgrade(any_ledger.engine)
    upgrade(any_ledger.engine)
    assert current_revision(any_ledger.engine) == head_revision()


def test_auto_migrate_off_names_the_fix(tmp_path: Path) -> None:
    """With auto-migration off, an old schema is an error that says `wflo db upgrade`."""
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'l.db'}", auto_migrate=False)
    with pytest.raises(LedgerError, match="wflo db upgrade"):
        ledger.audit.recent()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    """The embedded SQLite ledger runs in WAL mode with a busy timeout."""
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'w' / 'l.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url at all"])
def test_unsupported_url_is_a_configuration_error(url: str) -> None:
    """Only SQLite and PostgreSQL are accepted, and the error names the URL."""
    with pytest.raises(ConfigurationError, match=r"LEDGER_URL|sqlite"):
        create_ledger_engine(url)


def test_unreachable_postgres_is_a_ledger_error() -> None:
    """A server that does not answer is a LedgerError with the URL, password hidden."""
    ledger = Ledger.from_url("postgresql+psycopg://u:secret@127.0.0.1:1/x")
    with pytest.raises(LedgerError) as info:
        ledger.audit.recent()
    assert "secret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def _first_use(url: str, n: int) -> int:
    ledger = Ledger.from_url(url)
    for i in range(n):
        ledger.audit.record("concurrent", payload={"i": i})
    ledger.dispose()
    return n


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_first_use_from_processes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Several processes using a new ledger at once migrate it once and lose no event."""
    url = (
        f"sqlite:///{tmp_path / 'shared.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        counts = pool.starmap(_first_use, [(url, 25)] * 4)
    ledger = Ledger.from_url(url)
    assert len(ledger.audit.recent(limit=1000)) == sum(counts) == 100
    assert current_revision(ledger.engine) == head_revision()
    ledger.dispose()


def test_migrations_build_exactly_the_schema_of_the_models(any_ledger: Ledger) -> None:
    """Autogenerate finds nothing to change after the migrations ran (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from wflo_prefect.ledger.models import Base

    any_ledger.ensure_schema()
    with any_ledger.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


@pytest.mark.postgres
def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle pooled connection is pinged before use; a dead one is replaced, unnoticed."""
    from wflo_prefect.ledger import engine as ledger_engine

    ledger = Ledger.from_url(postgres_url)
    try:
        ledger.audit.record("before")
        with ledger.engine.connect() as conn:  # the one pooled connection
            pid = conn.exec_driver_sql("select pg_backend_pid()").scalar()
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # the server drops it (a restart, an idle timeout)
            conn.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        monkeypatch.setattr(ledger_engine, "IDLE_PING_SECONDS", 0.0)  # it has been idle long
        ledger.audit.record("after")
        assert [e.event for e in ledger.audit.recent(event_prefix="")][:2] == ["after", "before"]
    finally:
        ledger.dispose()
