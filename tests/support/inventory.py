"""A tiny 'database' for the snapshot tests: a JSON file of tables, read and written whole."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DB_ENV = "WFLO_TEST_INVENTORY_DB"


def _path() -> Path:
    return Path(os.environ[DB_ENV])


def load() -> dict[str, list[Any]]:
    path = _path()
    return json.loads(path.read_text()) if path.exists() else {}


def save(db: dict[str, list[Any]]) -> None:
    _path().write_text(json.dumps(db))


def capture(table: str) -> dict[str, Any]:
    """StateSnapshot capture: the table's rows."""
    return {"rows": load().get(table, [])}


def restore(data: dict[str, Any], table: str) -> None:
    """StateSnapshot restore: put the captured rows back."""
    db = load()
    db[table] = data["rows"]
    save(db)
