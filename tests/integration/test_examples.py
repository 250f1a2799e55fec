"""The example flows and their deployments in prefect.yaml are real and governed."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

from flows.data_cleanup import count_rows, data_cleanup, seed_database
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
    assert count_rows(str(db), "customers") == 6
    assert Path(str(result["archive"])).read_text().count("@example.com") == 3
    operations = [
        e.payload.get("operation") for e in audit_trail(state) if e.event == "task_run.started"
    ]
    assert operations == ["read", "delete"]


def test_data_cleanup_refuses_production_tables(tmp_path: Path, ledger: Ledger) -> None:
    """The no-prod-deletes policy halts the delete before a row is touched."""
    db = seed_database(tmp_path / "c.db", table="prod_customers", rows=9)
    state = data_cleanup(str(db), str(tmp_path / "a"), table="prod_customers", return_state=True)
    assert state.name == "PolicyViolation"
    assert count_rows(str(db), "prod_customers") == 9


def test_data_cleanup_restores_rows_when_a_later_step_fails(tmp_path: Path, ledger: Ledger) -> None:
    """When telling the owner fails, the delete is compensated: the rows come back."""
    db = seed_database(tmp_path / "c.db", rows=9)
    state = data_cleanup(
        str(db), str(tmp_path / "a"), owner_webhook="http://127.0.0.1:9/hook", return_state=True
    )
    assert state.is_failed()
    assert count_rows(str(db), "customers") == 9
    events = [e.event for e in audit_trail(state)]
    assert "compensation.done" in events
