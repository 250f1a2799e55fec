"""Metrics survive short-lived flow-run processes; a taken metrics port never fails a run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from prometheus_client.parser import text_string_to_metric_families

from tests.support.net import free_port
from wflo_prefect import governed_flow
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import metrics

FLOW_RUN = textwrap.dedent(
    """
    import sys
    from wflo_prefect import governed_flow, governed_task

    @governed_task
    def step() -> int:
        return 1

    @governed_flow(name="burst")
    def burst(fail: bool) -> int:
        step()
        if fail:
            raise RuntimeError("this run fails")
        return 1

    state = burst(sys.argv[1] == "fail", return_state=True)
    print(state.type.value)
    """
)


def _samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


@pytest.fixture
def unchecked_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process has not looked at METRICS_PORT yet, and serves nothing."""
    monkeypatch.setattr(metrics, "_settings_checked", False)
    monkeypatch.setattr(metrics, "_served_port", None)


def test_a_taken_metrics_port_does_not_fail_the_run(
    unchecked_metrics: None, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """When another process holds METRICS_PORT, a governed flow run still completes."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_METRICS_PORT", str(port))

        @governed_flow
        def second_run_on_host() -> int:
            return 7

        assert second_run_on_host() == 7
    assert metrics.ensure_metrics_server() is None


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "PREFECT_INTEGRATIONS_WFLO_METRICS_PORT": str(port),
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    return env


def _run_flows(env: dict[str, str], outcomes: list[str]) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FLOW_RUN, outcome],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for outcome in outcomes
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        assert out.strip().splitlines()[-1] in {"COMPLETED", "FAILED"}, out


def test_flow_runs_in_subprocesses_are_all_exported(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, the host exporter serves every ended flow run's counts."""
    port = free_port()
    env = _env(tmp_path, port)
    exporter = subprocess.Popen(
        [sys.executable, "-m", "wflo_prefect.observability.exporter", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert exporter.stdout is not None
        assert "/metrics" in exporter.stdout.readline()
        runs = ("wflo_workflow_executions_total", "burst")

        def count(status: str) -> float:
            key = (runs[0], frozenset({("workflow_name", runs[1]), ("status", status)}))
            return _samples(port).get(key, 0.0)

        _run_flows(env, ["ok", "ok"])
        assert count("completed") == 2
        _run_flows(env, ["ok", "fail"])
        assert (count("completed"), count("failed")) == (3, 1)
        after = _samples(port)
        tasks = (
            "wflo_task_executions_total",
            frozenset({("task_name", "step"), ("status", "completed")}),
        )
        assert after[tasks] == 4
        durations = (
            "wflo_workflow_duration_seconds_count",
            frozenset({("workflow_name", "burst")}),
        )
        assert after[durations] == 4
        assert after[("wflo_ledger_up", frozenset())] == 1
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
