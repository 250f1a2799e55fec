"""The Prometheus exporter: what a scrape of wflo's port returns, and who serves it.

One process per host serves the port. Without ``PROMETHEUS_MULTIPROC_DIR`` it
exports its own :data:`~wflo_prefect.observability.metrics.REGISTRY`; with it, the
values every process on the host wrote to that directory (flow runs that ended
included), after dropping the live gauges of processes that are gone. Either way
it adds the ledger's gauges (budgets, pending approvals, compensations), read at
scrape time, unless ``PREFECT_INTEGRATIONS_WFLO_METRICS_LEDGER=false``.

Run it on a worker host next to ``prefect worker start``::

    PROMETHEUS_MULTIPROC_DIR=/var/run/wflo-metrics \\
        python -m wflo_prefect.observability.exporter --port 9464
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from wflo_prefect.errors import ConfigurationError

__all__ = ["MULTIPROC_ENV", "exported_registry", "main", "multiproc_dir", "start_exporter"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def multiproc_dir() -> Path | None:
    """The multiprocess directory from the environment; a ConfigurationError if unusable."""
    value = os.environ.get(MULTIPROC_ENV)
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise ConfigurationError(
            f"{MULTIPROC_ENV} is not an existing directory",
            value=value,
            hint="create it (empty) before the worker and its flow runs start, or unset it",
            docs="observability.md#metrics",
        )
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class _HostCollector:
    """Every process's values in the directory; live gauges of dead processes dropped."""

    def __init__(self, path: Path) -> None:
        self._inner = MultiProcessCollector(None, str(path))  # type: ignore[no-untyped-call]
        self._dir = path

    def collect(self) -> Iterable[Metric]:
        dead = {
            int(m.group(1))
            for f in os.listdir(self._dir)
            if (m := _LIVE_FILE.match(f)) and not _alive(int(m.group(1)))
        }
        for pid in dead:
            mark_process_dead(pid, str(self._dir))  # type: ignore[no-untyped-call]
        metrics: Iterable[Metric] = self._inner.collect()  # type: ignore[no-untyped-call]
        return metrics


class _Forward:
    """A registry's metrics, re-exported through another registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


def exported_registry(*, ledger: bool | None = None) -> CollectorRegistry:
    """The registry a scrape of wflo's port reads (see the module docstring)."""
    from wflo_prefect.observability.registry import REGISTRY

    exported = CollectorRegistry(auto_describe=False)
    path = multiproc_dir()
    collector: Collector = _HostCollector(path) if path is not None else _Forward(REGISTRY)
    exported.register(collector)
    if ledger is None:
        from wflo_prefect.settings import get_settings

        ledger = get_settings().metrics_ledger
    if ledger:
        from wflo_prefect.observability.ledger_metrics import LedgerCollector

        exported.register(LedgerCollector())
    return exported


def start_exporter(port: int, addr: str = "127.0.0.1", *, ledger: bool | None = None) -> int:
    """Serve :func:`exported_registry` on ``addr:port`` in a daemon thread; return the port."""
    server, _thread = start_http_server(port, addr=addr, registry=exported_registry(ledger=ledger))
    return int(server.server_port)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m wflo_prefect.observability.exporter``: serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m wflo_prefect.observability.exporter",
        description="Serve wflo's Prometheus metrics for every flow run on this host.",
    )
    parser.add_argument("--port", type=int, default=9464)
    parser.add_argument("--addr", default="127.0.0.1")
    parser.add_argument("--no-ledger", action="store_true", help="leave out the ledger gauges")
    args = parser.parse_args(argv)
    port = start_exporter(args.port, args.addr, ledger=False if args.no_ledger else None)
    print(f"wflo metrics on http://{args.addr}:{port}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
