"""The ``wflo`` command line: version, db, debug, doctor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wflo_prefect import __version__, governed_flow, governed_task
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.engine import create_ledger_engine, current_revision, head_revision

runner = CliRunner()


def test_console_script_prints_versions() -> None:
    """The installed `wflo` script runs and prints wflo's and Prefect's versions."""
    wflo = Path(sys.executable).parent / "wflo"
    out = subprocess.run([str(wflo), "version"], capture_output=True, text=True, check=True)
    assert f"wflo-prefect {__version__}" in out.stdout
    assert "prefect" in out.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_db_upgrade(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`wflo db upgrade` brings an empty ledger to head and then says it is up to date."""
    url = (
        f"sqlite:///{tmp_path / 'cli.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    first = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert first.exit_code == 0, first.output
    assert "upgraded from empty" in first.output
    assert current_revision(create_ledger_engine(url)) == head_revision()
    second = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert "up to date" in second.output


def test_db_upgrade_bad_url_exits_nonzero() -> None:
    """A bad ledger URL is reported with the value and a non-zero exit code."""
    result = runner.invoke(app, ["db", "upgrade", "--url", "mysql://x@y/z"])
    assert result.exit_code == 1
    assert "mysql" in result.output


def test_debug_shows_state_and_audit_trail(ledger: Ledger) -> None:
    """`wflo debug RUN_ID` shows the Prefect state, task runs and the audit trail."""

    @governed_task
    def step() -> int:
        return 1

    @governed_flow(name="debuggable")
    def debuggable() -> int:
        return step()

    state = debuggable(return_state=True)
    run_id = str(state.state_details.flow_run_id)
    result = runner.invoke(app, ["debug", run_id], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Completed" in result.output
    assert "flow_run.started" in result.output
    assert "task_run.completed" in result.output
    assert "step-" in result.output  # the Prefect task run's name
    assert "trace id:" in result.output


def test_debug_rejects_a_non_uuid() -> None:
    """A RUN_ID that is not a UUID is refused with the value quoted."""
    result = runner.invoke(app, ["debug", "not-a-run"])
    assert result.exit_code == 1
    assert "not-a-run" in result.output


def test_debug_unknown_run_exits_nonzero(ledger: Ledger) -> None:
    """A run that neither Prefect nor the ledger knows is an error."""
    result = runner.invoke(app, ["debug", "00000000-0000-0000-0000-000000000000"])
    assert result.exit_code == 1
    assert "no flow run" in result.output


def test_doctor_without_docker_names_the_fix(tmp_path: Path) -> None:
    """On a machine without a Docker engine, doctor says what is missing and exits non-zero."""
    env = {
        **os.environ,
        "PREFECT_INTEGRATIONS_WFLO_DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}",
        "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}",
        "COLUMNS": "200",
    }
    wflo = Path(sys.executable).parent / "wflo"
    out = subprocess.run([str(wflo), "doctor"], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert "Docker engine" in out.stdout
    assert "FAIL" in out.stdout
    assert "apt-get install docker.io" in out.stdout


def test_doctor_passes_with_the_provisioned_services(docker_client: object) -> None:
    """With Docker, gVisor and the sandbox image present, doctor exits 0."""
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "runsc is registered" in result.output


def _governed_run() -> str:
    @governed_task
    def traced_step() -> int:
        return 1

    @governed_flow(name="traced")
    def traced() -> int:
        return traced_step()

    return str(traced(return_state=True).state_details.flow_run_id)


def test_trace_exports_a_correlated_timeline(ledger: Ledger, tmp_path: Path) -> None:
    """`wflo trace --export` writes Prefect's and wflo's view of the run, one trace id."""
    import json

    run_id = _governed_run()
    target = tmp_path / "trace.json"
    result = runner.invoke(app, ["trace", run_id, "--export", str(target)])
    assert result.exit_code == 0, result.output
    data = json.loads(target.read_text())
    assert data["flow_run_id"] == run_id
    assert len(data["trace_ids"]) == 1
    assert data["prefect"]["state"] == "Completed"
    assert [t["state"] for t in data["prefect"]["task_runs"]] == ["Completed"]
    assert [e["event"] for e in data["audit"]][-1] == "flow_run.completed"
    shown = runner.invoke(app, ["trace", run_id], env={"COLUMNS": "200"})
    assert "task traced_step" in shown.output


def test_logs_prints_the_runs_log_lines(ledger: Ledger) -> None:
    """`wflo logs --wflo-only` prints wflo's JSON lines stored in Prefect for the run."""
    import time

    run_id = _governed_run()
    for _ in range(50):  # Prefect ships logs in the background; wait until they are stored
        result = runner.invoke(app, ["logs", run_id, "--wflo-only"], env={"COLUMNS": "400"})
        if "flow_run.completed" in result.output:
            break
        time.sleep(0.1)
    assert result.exit_code == 0, result.output
    assert "flow_run.started" in result.output  # task starts are DEBUG, not in run logs
    assert "flow_run.completed" in result.output
    assert "Beginning flow run" not in result.output
