"""A process running governed code serves Prometheus metrics when a port is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import urllib.request
    from prefect.testing.utilities import prefect_test_harness
    from wflo_prefect import governed_flow
    from wflo_prefect.observability import metrics

    @governed_flow(name="metered")
    def metered() -> int:
        return 1

    with prefect_test_harness(server_startup_timeout=120):
        metered()
        metered()
    port = metrics.ensure_metrics_server()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    print(body)
    """
)


def test_metrics_are_served_on_the_configured_port(tmp_path: Path) -> None:
    """With METRICS_PORT=0 the first governed run starts an exporter with wflo_* metrics."""
    env = {
        **os.environ,
        "PREFECT_INTEGRATIONS_WFLO_METRICS_PORT": "0",
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL": f"sqlite:///{tmp_path / 'l.db'}",
        "PREFECT_HOME": str(tmp_path / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert 'wflo_workflow_executions_total{status="completed",workflow_name="metered"} 2.0' in lines
    assert any(
        line.startswith('wflo_workflow_duration_seconds_count{workflow_name="metered"} 2.0')
        for line in lines
    )
