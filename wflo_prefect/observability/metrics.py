"""Prometheus metrics, named as in the product's seeds (``wflo_*``).

They live in one registry, :data:`REGISTRY`, which the process exports when
``PREFECT_INTEGRATIONS_WFLO_METRICS_PORT`` is set (or an application mounts it).
Capabilities define their metrics here so every name is in one place.

Flow-run processes are short-lived. With ``PROMETHEUS_MULTIPROC_DIR`` set (before
the process starts), prometheus-client writes every value to files in that
directory, and whichever process serves the port (a flow run, or the long-lived
``python -m wflo_prefect.observability.exporter``) exports the sum over every
process that ran on the host, dead ones included. See ``docs/observability.md``.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

from wflo_prefect.observability.registry import REGISTRY

__all__ = [
    "REGISTRY",
    "TASK_EXECUTIONS",
    "WORKFLOW_DURATION",
    "WORKFLOW_EXECUTIONS",
    "ensure_metrics_server",
    "serve_metrics",
]


WORKFLOW_EXECUTIONS = Counter(
    "wflo_workflow_executions",
    "Governed flow runs that ended, by outcome.",
    ["workflow_name", "status"],
    registry=REGISTRY,
)
WORKFLOW_DURATION = Histogram(
    "wflo_workflow_duration_seconds",
    "Wall time of governed flow runs.",
    ["workflow_name"],
    registry=REGISTRY,
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
TASK_EXECUTIONS = Counter(
    "wflo_task_executions",
    "Governed task runs that ended, by outcome.",
    ["task_name", "status"],
    registry=REGISTRY,
)

_served_port: int | None = None
_lock = threading.Lock()


def serve_metrics(port: int, addr: str = "127.0.0.1") -> int:
    """Serve wflo's metrics over HTTP on ``port`` (once per process); return the port.

    Raises ``OSError`` when the port is taken; :func:`ensure_metrics_server` does not.
    """
    global _served_port
    with _lock:
        if _served_port is None:
            from wflo_prefect.observability.exporter import start_exporter

            _served_port = start_exporter(port, addr=addr)
        return _served_port


_settings_checked = False


def ensure_metrics_server() -> int | None:
    """Serve metrics if ``PREFECT_INTEGRATIONS_WFLO_METRICS_PORT`` is set (checked once).

    Called at the start of every governed run, so a worker process exports its
    metrics as soon as it runs governed code; ``0`` picks a free port.
    """
    global _settings_checked
    if _settings_checked:
        return _served_port
    from wflo_prefect.settings import get_settings

    _settings_checked = True
    port = get_settings().metrics_port
    if port is None:
        return None
    try:
        return serve_metrics(port)
    except OSError as exc:
        # Another flow run on this host (or the host's exporter) has the port. The run
        # goes on; with PROMETHEUS_MULTIPROC_DIR its values are exported by that process.
        from wflo_prefect.observability.logging import get_logger

        get_logger("metrics").warning(
            "metrics.port_unavailable",
            port=port,
            error=str(exc),
            hint="set PROMETHEUS_MULTIPROC_DIR so the process holding the port exports "
            "this run's metrics too; see docs/observability.md",
        )
        return None


# Approval gates (wflo_prefect.approvals).
APPROVAL_REQUESTS = Counter(
    "wflo_approval_requests",
    "Approval requests by status: requested, approved, rejected, timeout, expired.",
    ["status"],
    registry=REGISTRY,
)
APPROVAL_LATENCY = Histogram(
    "wflo_approval_latency_seconds",
    "Time from an approval request to its decision.",
    registry=REGISTRY,
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14400, 86400),
)

# Cost governance (wflo_prefect.costs).
LLM_API_CALLS = Counter(
    "wflo_llm_api_calls",
    "LLM API calls recorded in the ledger, by provider and model.",
    ["provider", "model"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "wflo_llm_tokens",
    "LLM tokens by provider, model and type (input, output, cached_input).",
    ["provider", "model", "type"],
    registry=REGISTRY,
)
WORKFLOW_COST = Gauge(
    "wflo_workflow_cost_usd",
    "USD spent on LLM calls by each flow since the process started.",
    ["workflow_name"],
    registry=REGISTRY,
    # Each process adds its own spend; the exported value is the sum over processes.
    multiprocess_mode="sum",
)
BUDGET_EXCEEDED = Counter(
    "wflo_budget_exceeded",
    "Calls refused, or budgets overrun, by flow.",
    ["workflow_name"],
    registry=REGISTRY,
)

# Sandbox (wflo_prefect.sandbox).
SANDBOX_CREATION_DURATION = Histogram(
    "wflo_sandbox_creation_duration_seconds",
    "Time to have a sandbox container ready to run code (cold create or warm take).",
    ["runtime", "warm"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SANDBOX_CPU_USAGE = Gauge(
    "wflo_sandbox_cpu_usage_percent",
    "CPU used by a live sandbox during its last run, in percent of one CPU.",
    ["sandbox_id"],
    registry=REGISTRY,
    # A sandbox belongs to one process; its series goes when that process is gone.
    multiprocess_mode="livemostrecent",
)
SANDBOX_MEMORY_USAGE = Gauge(
    "wflo_sandbox_memory_usage_bytes",
    "Peak memory of a live sandbox so far.",
    ["sandbox_id"],
    registry=REGISTRY,
    # A sandbox belongs to one process; its series goes when that process is gone.
    multiprocess_mode="livemostrecent",
)
SANDBOX_RUNS = Counter(
    "wflo_sandbox_runs",
    "Commands run in sandboxes, by outcome: ok, error, timeout, oom.",
    ["runtime", "outcome"],
    registry=REGISTRY,
)
