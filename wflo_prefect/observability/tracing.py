"""OpenTelemetry tracing for governed runs.

Which provider wflo's spans go to, first match wins:

1. one injected with :func:`set_tracer_provider` (tests, applications);
2. the global SDK provider, when the application installed one (wflo's spans
   join its traces and exporters);
3. a provider wflo builds from its settings and the standard ``OTEL_*``
   variables: exporter ``otlp_http`` / ``otlp_grpc`` / ``console``, endpoint,
   headers, sample rate (see ``docs/observability.md``), and optionally the
   ledger span sink (``tracing_ledger``). Its spans are scrubbed of secrets
   before they leave the process and flushed when the process exits;
4. otherwise spans with real trace and span ids and nothing else (see
   :class:`IdsOnlyTracer`), which correlate logs, ledger rows and Prefect runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, TraceFlags

from wflo_prefect._version import __version__
from wflo_prefect.errors import ConfigurationError
from wflo_prefect.observability.scrub import Scrubber, default_scrubber

__all__ = [
    "IdsOnlyTracer",
    "ScrubbingSpanExporter",
    "flush_tracing",
    "get_tracer",
    "reset_tracing",
    "set_tracer_provider",
    "spans_leave_process",
    "tracer_provider_from_settings",
]

_provider: trace.TracerProvider | None = None
_own: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_leave = True  # whether the chosen provider's spans go anywhere
_lock = threading.Lock()


class ScrubbingSpanExporter(SpanExporter):
    """Passes spans to ``inner`` with secrets scrubbed from attributes, events and status.

    Wrap your own exporter with it when you inject a provider and want the same.
    """

    def __init__(self, inner: SpanExporter, scrubber: Scrubber | None = None) -> None:
        self._inner = inner
        self._scrubber = scrubber

    def _clean(self, span: ReadableSpan) -> ReadableSpan:
        scrub = self._scrubber or default_scrubber()
        status = span.status
        if status.description:
            status = Status(status.status_code, scrub.text(status.description))
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=scrub.value(dict(span.attributes or {})),
            events=[
                Event(e.name, scrub.value(dict(e.attributes or {})), e.timestamp)
                for e in span.events
            ],
            links=span.links,
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub, then export with the wrapped exporter."""
        return self._inner.export([self._clean(s) for s in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self._inner.force_flush(timeout_millis)


def _exporter_name(configured: str | None) -> str:
    if configured is not None:
        return configured
    name = os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")[0].strip().lower()
    if name == "otlp":
        protocol = os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        return "otlp_grpc" if protocol.strip().lower() == "grpc" else "otlp_http"
    if name in ("console", "none", ""):
        return name or "none"
    raise ConfigurationError(
        "OTEL_TRACES_EXPORTER names an exporter wflo does not ship",
        value=name,
        hint="use otlp, console or none (or install your own provider before wflo runs)",
        docs="observability.md#traces",
    )


def _headers(value: str) -> dict[str, str]:
    headers = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        key, sep, item = part.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                "Tracing headers must be `key=value` pairs separated by commas",
                value=key.strip() + ("=..." if sep else ""),
                hint="fix PREFECT_INTEGRATIONS_WFLO_TRACING_HEADERS",
                docs="observability.md#traces",
            )
        headers[key.strip()] = item.strip()
    return headers


def _sample_rate(configured: float | None) -> float:
    if configured is not None:
        return configured
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    if not raw:
        return 1.0
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise ConfigurationError(
            "OTEL_TRACES_SAMPLER_ARG is not a sample rate between 0 and 1",
            value=raw,
            hint="set it to e.g. 0.25, or set PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE",
            docs="observability.md#traces",
        )
    return rate


def tracer_provider_from_settings() -> TracerProvider:
    """A provider built from wflo's tracing settings and the ``OTEL_*`` variables."""
    return _from_settings()[0]


def _from_settings() -> tuple[TracerProvider, bool]:
    """The provider, and whether it exports anything."""
    from wflo_prefect.settings import get_settings

    settings = get_settings()
    name = _exporter_name(settings.tracing_exporter)
    rate = _sample_rate(settings.tracing_sample_rate)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "wflo")})
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(rate)), resource=resource)
    headers = (
        _headers(settings.tracing_headers.get_secret_value())
        if settings.tracing_headers is not None
        else None
    )
    exporter: SpanExporter | None = None
    if name == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter(endpoint=settings.tracing_endpoint, headers=headers)
    elif name == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        exporter = GrpcExporter(endpoint=settings.tracing_endpoint, headers=headers)
    elif name == "console":
        exporter = ConsoleSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(exporter)))
    if settings.tracing_ledger:
        from wflo_prefect.observability.ledger_spans import LedgerSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(LedgerSpanExporter())))
    return provider, exporter is not None or settings.tracing_ledger


def set_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Use ``provider`` for wflo's spans (``None``: go back to the default choice)."""
    global _provider, _tracer
    with _lock:
        _provider = provider
        _tracer = None


def flush_tracing(timeout_millis: int = 30000) -> bool:
    """Export the spans wflo's own provider still holds (it also does at exit)."""
    own = _own
    return True if own is None else own.force_flush(timeout_millis)


#: The W3C "random trace id" flag, which OpenTelemetry sets from 1.42 on.
_RANDOM_TRACE_ID: int = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)


class IdsOnlyTracer(trace.Tracer):
    """Spans with real trace and span ids that record nothing: for spans that go nowhere.

    With no exporter, no ledger sink and no application provider, nobody reads a span's
    attributes or events, but its ids still tie logs, ledger rows and Prefect runs
    together (and are passed on to the runs it starts). A recording span costs tens of
    microseconds on the path of every governed task; this one costs its two ids. A new
    trace is sampled, or not, by ``sample_rate`` as a recording provider would, so
    processes that do export follow the same decision.
    """

    def __init__(self, sample_rate: float = 1.0) -> None:
        self._ids = RandomIdGenerator()
        self._sampler = TraceIdRatioBased(sample_rate)

    def start_span(  # type: ignore[override]
        self, name: str, context: otel_context.Context | None = None, **_: Any
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            trace_id, state = self._ids.generate_trace_id(), None
            decision = self._sampler.should_sample(None, trace_id, name).decision
            sampled = decision is Decision.RECORD_AND_SAMPLE
            # As the SDK marks them: sampled or not, and (SDK 1.42+) the trace id is random.
            flags = TraceFlags(
                (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT) | _RANDOM_TRACE_ID
            )
        span_context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=flags,
            trace_state=state,
        )
        return NonRecordingSpan(span_context)

    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: otel_context.Context | None = None, **_: Any
    ) -> _Current:
        return _Current(self.start_span(name, context))


class _Current:
    """Makes a span current inside a ``with`` block (a plain class: no generator)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def spans_leave_process() -> bool:
    """Whether wflo's spans go anywhere (an injected or global provider, or an exporter).

    Work done only for what a span shows (e.g. the budget left after an LLM call, a
    ledger query) is skipped when they do not: wflo's spans then keep their ids alone
    (:class:`IdsOnlyTracer`).
    """
    get_tracer()
    return _leave


def reset_tracing() -> None:
    """Shut wflo's own provider down and choose again on the next span (settings changed)."""
    global _own, _tracer
    with _lock:
        if _own is not None:
            _own.shutdown()
        _own = None
        _tracer = None


def get_tracer() -> trace.Tracer:
    """The tracer wflo's spans are made with."""
    global _tracer, _own, _leave
    tracer = _tracer
    if tracer is not None:
        return tracer
    with _lock:
        if _tracer is None:
            provider = _provider
            if provider is None:
                global_provider = trace.get_tracer_provider()
                if isinstance(global_provider, TracerProvider):
                    provider = global_provider
                    _leave = True
                else:
                    if _own is None:
                        _own, _leave = _from_settings()
                    provider = _own
            else:
                _leave = True
            if _leave:
                _tracer = provider.get_tracer("wflo_prefect", __version__)
            else:  # nothing would read the spans: keep their ids alone
                from wflo_prefect.settings import get_settings

                _tracer = IdsOnlyTracer(_sample_rate(get_settings().tracing_sample_rate))
        return _tracer
