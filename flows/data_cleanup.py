"""Data clean-up agent: find stale records, archive them, delete them, tell the owner.

Governed end to end:

- every run and task is audited with its Prefect ids and trace id;
- the delete is marked ``operation="delete"`` and a policy forbids it on
  production tables (``prod_*``) before any row is touched;
- the delete registers its undo (restore the rows from the archive), so if a
  later step fails the rows come back, even if this process is killed.

Run it on its own with ``python -m flows.data_cleanup`` from the repository root.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wflo_prefect import AuditLog, Halt, Policy, governed_flow, governed_task

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

NO_PROD_DELETES = Policy(
    name="no-prod-deletes",
    condition="operation == 'delete' AND params.table.startsWith('prod_')",
    actions=[AuditLog(severity="high"), Halt(reason="production tables need a change ticket")],
)


def _table(name: str) -> str:
    if not _TABLE.match(name):
        raise ValueError(f"table name {name!r} is not a plain SQL identifier")
    return name


def seed_database(path: Path, *, table: str = "customers", rows: int = 12) -> Path:
    """Create a small table where every third record is stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    t = _table(table)
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE IF EXISTS {t}")
        db.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, email TEXT, last_seen TEXT)")
        db.executemany(
            f"INSERT INTO {t} VALUES (?, ?, ?)",  # noqa: S608 - identifier checked above
            [
                (
                    i,
                    f"user{i}@example.com",
                    (now - timedelta(days=400 if i % 3 == 0 else 5)).isoformat(),
                )
                for i in range(1, rows + 1)
            ],
        )
    return path


def count_rows(db_path: str, table: str) -> int:
    """How many rows the table has."""
    with sqlite3.connect(db_path) as db:
        return int(db.execute(f"SELECT count(*) FROM {_table(table)}").fetchone()[0])  # noqa: S608


def restore_rows(db_path: str, table: str, result: dict[str, object]) -> None:
    """Compensation of ``delete``: put the archived rows back."""
    rows = json.loads(Path(str(result["archive"])).read_text())
    with sqlite3.connect(db_path) as db:
        db.executemany(
            f"INSERT OR IGNORE INTO {_table(table)} VALUES (?, ?, ?)",  # noqa: S608
            [(r["id"], r["email"], r["last_seen"]) for r in rows],
        )


@governed_task(operation="read")
def find_stale(db_path: str, table: str, max_age_days: int) -> list[int]:
    """Ids of records not seen for ``max_age_days``."""
    cutoff = (datetime.now(UTC) - timedelta(days=max_age_days)).isoformat()
    with sqlite3.connect(db_path) as db:
        query = f"SELECT id FROM {_table(table)} WHERE last_seen < ?"  # noqa: S608
        return [r[0] for r in db.execute(query, (cutoff,))]


@governed_task(operation="delete", policies=[NO_PROD_DELETES], compensate=restore_rows)
def delete(db_path: str, table: str, ids: list[int], archive_dir: str) -> dict[str, object]:
    """Archive the records to JSON, then delete them; returns the count and the archive."""
    marks = ",".join("?" * len(ids))
    t = _table(table)
    with sqlite3.connect(db_path) as db:
        rows = db.execute(f"SELECT * FROM {t} WHERE id IN ({marks})", ids).fetchall()  # noqa: S608
        target = Path(archive_dir) / f"{t}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            json.dumps([{"id": r[0], "email": r[1], "last_seen": r[2]} for r in rows])
        )
        deleted = db.execute(f"DELETE FROM {t} WHERE id IN ({marks})", ids).rowcount  # noqa: S608
    return {"deleted": deleted, "archive": str(target)}


@governed_task(operation="notify", retries=1, retry_delay_seconds=0)
def notify_owner(webhook_url: str, summary: dict[str, object]) -> None:
    """POST the summary to the table owner's webhook."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's configuration
        webhook_url, data=json.dumps(summary).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


@governed_flow(name="data-cleanup", log_prints=True)
def data_cleanup(
    db_path: str,
    archive_dir: str,
    table: str = "customers",
    max_age_days: int = 365,
    owner_webhook: str | None = None,
) -> dict[str, object]:
    """Delete records older than ``max_age_days`` (archived first), then tell the owner."""
    stale = find_stale(db_path, table, max_age_days)
    if not stale:
        return {"deleted": 0, "archive": None}
    result = delete(db_path, table, stale, archive_dir)
    print(f"deleted {result['deleted']} stale records from {table}; archive at {result['archive']}")
    if owner_webhook:
        notify_owner(owner_webhook, result)
    return result


if __name__ == "__main__":
    work = Path(".prefect-demo") / "cleanup"
    db = seed_database(work / "customers.db")
    print(data_cleanup(str(db), str(work / "archive")))
