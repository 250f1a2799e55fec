"""The example flows and their deployments in prefect.yaml are real and governed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

from flows.data_cleanup import data_cleanup, seed_database
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_entrypoint_loads_a_governed_flow() -> None:
    """Each deployment in prefect.yaml points at a flow that loads and is governed."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        assert flow.__dict__.get("_wflo_governed") is True, deployment["name"]
        assert deployment["work_pool"]["name"]


def test_data_cleanup_deletes_only_stale_rows_and_archives_them(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The clean-up example deletes the stale third of the rows, archives them, audits it."""
    db = seed_database(tmp_path / "c.db", rows=9)
    state = data_cleanup(str(db), str(tmp_path / "archive"), return_state=True)
    result = state.result()
    assert result["deleted"] == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from customers").fetchone() == (6,)
    assert Path(str(result["archive"])).read_text().count("@example.com") == 3
    operations = [
        e.payload.get("operation") for e in audit_trail(state) if e.event == "task_run.started"
    ]
    assert operations == ["read", "write", "delete"]
