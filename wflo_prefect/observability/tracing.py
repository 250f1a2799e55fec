"""OpenTelemetry tracing for governed runs.

wflo uses the global tracer provider when the application installed an SDK one
(so its spans join the application's traces and exporters). Otherwise it keeps a
private SDK provider, without exporters, so trace and span ids are still real and
correlate logs, ledger rows and Prefect runs. Tests and applications may inject a
provider with :func:`set_tracer_provider`.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from wflo_prefect._version import __version__

__all__ = ["get_tracer", "set_tracer_provider"]

_provider: trace.TracerProvider | None = None
_tracer: trace.Tracer | None = None
_lock = threading.Lock()


def set_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Use ``provider`` for wflo's spans (``None``: go back to the default choice)."""
    global _provider, _tracer
    with _lock:
        _provider = provider
        _tracer = None


def get_tracer() -> trace.Tracer:
    """The tracer wflo's spans are made with."""
    global _tracer
    tracer = _tracer
    if tracer is not None:
        return tracer
    with _lock:
        if _tracer is None:
            provider = _provider
            if provider is None:
                global_provider = trace.get_tracer_provider()
                provider = (
                    global_provider
                    if isinstance(global_provider, TracerProvider)
                    else TracerProvider()
                )
            _tracer = provider.get_tracer("wflo_prefect", __version__)
        return _tracer
