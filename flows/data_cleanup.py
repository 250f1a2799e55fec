"""Data clean-up agent: find stale customer records, archive them, delete them.

A governed flow of governed tasks: every run and task is audited in the ledger
with its Prefect ids and trace id; the destructive step is marked
``operation="delete"`` so policies and approvals can single it out.

Run it on its own with ``python flows/data_cleanup.py``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wflo_prefect import governed_flow, governed_task


def seed_database(path: Path, *, rows: int = 12) -> Path:
    """Create a small customer table where every third record is stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS customers")
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, last_seen TEXT)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
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


@governed_task(operation="read")
def find_stale(db_path: str, max_age_days: int) -> list[int]:
    """Ids of customers not seen for ``max_age_days``."""
    cutoff = (datetime.now(UTC) - timedelta(days=max_age_days)).isoformat()
    with sqlite3.connect(db_path) as db:
        return [r[0] for r in db.execute("SELECT id FROM customers WHERE last_seen < ?", (cutoff,))]


@governed_task(operation="write")
def archive(db_path: str, ids: list[int], archive_dir: str) -> str:
    """Copy the records to a JSON archive before they are deleted."""
    with sqlite3.connect(db_path) as db:
        marks = ",".join("?" * len(ids))
        rows = db.execute(f"SELECT * FROM customers WHERE id IN ({marks})", ids).fetchall()  # noqa: S608 - placeholders only
    target = Path(archive_dir) / f"archive-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps([{"id": r[0], "email": r[1], "last_seen": r[2]} for r in rows]))
    return str(target)


@governed_task(operation="delete", retries=1)
def delete(db_path: str, ids: list[int]) -> int:
    """Delete the records; returns how many went."""
    with sqlite3.connect(db_path) as db:
        marks = ",".join("?" * len(ids))
        return db.execute(f"DELETE FROM customers WHERE id IN ({marks})", ids).rowcount  # noqa: S608 - placeholders only


@governed_flow(name="data-cleanup", log_prints=True)
def data_cleanup(db_path: str, archive_dir: str, max_age_days: int = 365) -> dict[str, object]:
    """Archive, then delete, customer records older than ``max_age_days``."""
    stale = find_stale(db_path, max_age_days)
    if not stale:
        return {"deleted": 0, "archive": None}
    archived = archive(db_path, stale, archive_dir)
    deleted = delete(db_path, stale)
    print(f"deleted {deleted} stale records; archive at {archived}")
    return {"deleted": deleted, "archive": archived}


if __name__ == "__main__":
    work = Path(".prefect-demo") / "cleanup"
    db = seed_database(work / "customers.db")
    print(data_cleanup(str(db), str(work / "archive")))
