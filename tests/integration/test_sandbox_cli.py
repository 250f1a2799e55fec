"""`wflo sandbox run` and the code-agent example, against the real engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flows.code_agent import code_agent
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail

pytestmark = pytest.mark.docker

WFLO = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "wflo")


def test_sandbox_run_prints_output_and_passes_the_exit_code() -> None:
    """`wflo sandbox run` prints the command's output and exits with its code."""
    done = subprocess.run(
        [WFLO, "sandbox", "run", "--", "sh", "-c", "id -u; exit 4"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 4
    assert done.stdout == "1000\n"
    assert "exit 4" in done.stderr


def test_sandbox_run_times_out_with_124(tmp_path: Path) -> None:
    """A Python file that outlives --timeout is killed; the command exits 124."""
    script = tmp_path / "slow.py"
    script.write_text("import time\nprint('begun', flush=True)\ntime.sleep(60)\n")
    done = subprocess.run(
        [WFLO, "sandbox", "run", "--timeout", "1", "--python", str(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 124
    assert done.stdout == "begun\n"
    assert "timeout" in done.stderr


def test_code_agent_example_runs_generated_code_contained(ledger: Ledger) -> None:
    """The example answers from generated code; its hostile snippet is blocked."""
    state = code_agent(return_state=True)
    result = state.result()
    assert result["answer"]["max"] == 30.1
    assert result["hostile"]["network"].startswith("blocked")
    assert result["hostile"]["etc"].startswith("blocked")
    assert [e.event for e in audit_trail(state)].count("sandbox.run") == 2


def test_build_image_from_registry_fails_clearly_when_none_answers(docker_client: object) -> None:
    """`build-image --registry` without a reachable registry says to use --offline."""
    done = subprocess.run(
        [WFLO, "sandbox", "build-image", "--registry", "--tag", "wflo-never-built:x"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert "could not be pulled" in done.stderr
    assert "--offline" in done.stderr


def test_offline_build_script_is_found() -> None:
    """The offline build reuses scripts/build_sandbox_image.sh (packaged in the wheel)."""
    from wflo_prefect.sandbox.image import default_base_image, offline_build_script

    assert offline_build_script().name == "build_sandbox_image.sh"
    assert default_base_image().startswith("python:3.")
