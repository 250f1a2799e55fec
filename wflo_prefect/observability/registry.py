"""The one Prometheus registry wflo's metrics live in.

Its own module so that the metric definitions (:mod:`.metrics`) and the exporter that
serves them (:mod:`.exporter`) both depend on it, and not on each other both ways.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

__all__ = ["REGISTRY"]

#: Every wflo metric of this process; exported by :mod:`wflo_prefect.observability.exporter`.
REGISTRY = CollectorRegistry(auto_describe=True)
