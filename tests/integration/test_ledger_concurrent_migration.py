"""Processes opening one new SQLite ledger migrate it one at a time (a lock beside the file).

Seen in CI: four sagas started at once on a new ledger; two upgrades both created
``wflo_spans`` and one process died with "table wflo_spans already exists".
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

OPEN_LEDGER = """
import sys
from wflo_prefect.ledger.database import Database
from wflo_prefect.ledger.engine import create_ledger_engine, current_revision, head_revision
engine = create_ledger_engine(sys.argv[1])
Database(engine).ensure_schema()
assert current_revision(engine) == head_revision()
print("ok")
"""


def test_a_process_waits_for_another_ones_migration_of_the_same_file(tmp_path: Path) -> None:
    """While the migration lock is held, a second process does not migrate; then it does."""
    database = tmp_path / "ledger.db"
    url = f"sqlite:///{database}"
    lock = database.with_name(database.name + ".migrate-lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as a migrating process holds it
        proc = subprocess.Popen(
            [sys.executable, "-c", OPEN_LEDGER, url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with contextlib.suppress(subprocess.TimeoutExpired):  # waiting for the lock
            proc.wait(timeout=20)
        assert proc.returncode is None, "the second process migrated under another's lock"
        fcntl.flock(handle, fcntl.LOCK_UN)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-1500:]
    assert out.strip() == "ok"
