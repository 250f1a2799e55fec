"""README command one: the demo runs as a newcomer runs it, and shows what it claims."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """scripts/demo.sh as a newcomer runs it: none of the test run's Prefect/wflo settings."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WFLO_", "PYTEST_"))
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), *args],
        capture_output=True,
        text=True,
        env={**clean, "COLUMNS": "160", **env},
        cwd=ROOT,
        timeout=600,
    )


def test_demo_script_runs_every_section() -> None:
    """scripts/demo.sh exits 0 on the embedded defaults and prints each governed section."""
    out = _run_demo()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    headings = (
        "1. A governed flow",
        "2. A policy",
        "3. Rollback",
        "4. Cost governance",
        "5. Approval gate",
        "6. Sandbox",
        "7. A time-based policy",
        "8. Recovery",
        "Inspect it yourself",
    )
    for heading in headings:
        assert heading in out.stdout, heading
    assert "flow_run.completed" in out.stdout
    assert "BudgetExceeded" in out.stdout
    assert "approval.decided" in out.stdout
    assert "blocked: Read-only file system" in out.stdout
    assert "wflo debug" in out.stdout


def test_demo_watchdog_and_recovery_sections(tmp_path: Path) -> None:
    """Sections 7 and 8: a stuck step halted by a time-based policy, and a SIGKILLed saga
    refunded newest first with no command typed."""
    out = _run_demo("--only", "7", "--only", "8", PREFECT_HOME=str(tmp_path / "home"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "run ended Cancelled: Policy 'execution_timeout' halted the run" in out.stdout
    assert "worker exit code -9" in out.stdout
    refunds = [line for line in out.stdout.splitlines() if "refunded" in line]
    assert ["card-bob" in refunds[0], "card-ada" in refunds[1]] == [True, True]
    assert "the run is now Crashed" in out.stdout


def test_demo_without_docker_says_what_is_missing_and_exits_zero(tmp_path: Path) -> None:
    """With no Docker engine (and no provisioning), the sandbox section says what to install."""
    out = _run_demo(
        "--only",
        "6",
        WFLO_DEMO_PROVISION="0",
        PREFECT_HOME=str(tmp_path / "home"),
        PREFECT_INTEGRATIONS_WFLO_DOCKER_HOST=f"unix://{tmp_path / 'no-engine.sock'}",
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "6. Sandbox" in out.stdout
    assert "skipped:" in out.stdout
    assert "no-engine.sock" in out.stdout
    assert "scripts/provision.sh docker sandbox-image" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
