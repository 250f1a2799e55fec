"""wflo's spans leave the process over OTLP, configured by settings or the OTEL_* variables."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wflo_prefect import governed_flow, governed_task
from wflo_prefect.errors import ConfigurationError
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import tracing
from wflo_prefect.testing import capture_spans, finished_span_names

OPENAI_KEY = "sk-proj-Abc123def456GHI789jkl012MNO345pqr"


class _Receiver(HTTPServer):
    spans: list[Span]
    headers: list[dict[str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.headers.append(dict(self.headers))
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.server.spans.extend(scope_spans.spans)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Receiver]:
    """An OTLP/HTTP receiver on loopback; wflo chooses its provider afresh around the test."""
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.spans, server.headers = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tracing.reset_tracing()
    yield server
    monkeypatch.undo()
    tracing.reset_tracing()
    server.shutdown()
    server.server_close()


def _governed_pair(name: str) -> Callable[..., Any]:
    @governed_task(name=f"{name}-step")
    def step() -> int:
        return 1

    @governed_flow(name=name)
    def run(fail: bool = False) -> int:
        step()
        if fail:
            raise RuntimeError(f"provider refused {OPENAI_KEY}")
        return 1

    return run


def test_spans_are_exported_to_an_otlp_http_receiver_as_one_tree(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """With TRACING_EXPORTER=otlp_http, the flow and task spans arrive, the task under the flow."""
    port = receiver.server_address[1]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces"
    )
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_HEADERS", "x-team=agents")
    _governed_pair("otlp-tree")()
    assert tracing.flush_tracing()
    by_name = {s.name: s for s in receiver.spans}
    flow, task = by_name["wflo.flow otlp-tree"], by_name["wflo.task otlp-tree-step"]
    assert task.trace_id == flow.trace_id
    assert task.parent_span_id == flow.span_id
    assert receiver.headers[0]["x-team"] == "agents"


def test_standard_otel_variables_configure_the_export_and_secrets_are_scrubbed(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """OTEL_TRACES_EXPORTER=otlp with OTEL_EXPORTER_OTLP_ENDPOINT exports; no key leaves."""
    port = receiver.server_address[1]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    _governed_pair("otlp-env")(True, return_state=True)
    assert tracing.flush_tracing()
    flow = next(s for s in receiver.spans if s.name == "wflo.flow otlp-env")
    assert flow.status.code == flow.status.STATUS_CODE_ERROR
    exported = receiver.spans[0].SerializeToString() + flow.SerializeToString()
    assert OPENAI_KEY.encode() not in exported
    assert b"[REDACTED]" in flow.SerializeToString()


def test_sample_rate_zero_exports_nothing(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """TRACING_SAMPLE_RATE=0 records no new trace."""
    port = receiver.server_address[1]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces"
    )
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE", "0")
    _governed_pair("unsampled")()
    assert tracing.flush_tracing()
    assert receiver.spans == []


def test_an_injected_provider_wins_over_the_configured_exporter(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """With a provider injected, spans go to it and not to the configured OTLP endpoint."""
    port = receiver.server_address[1]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces"
    )
    with capture_spans() as spans:
        _governed_pair("injected")()
    assert "wflo.flow injected" in finished_span_names(spans)
    assert tracing.flush_tracing()
    assert receiver.spans == []


def test_grpc_exporter_is_built_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRACING_EXPORTER=otlp_grpc builds the gRPC OTLP exporter for the endpoint."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_grpc")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", "http://127.0.0.1:4317")
    provider = tracing.tracer_provider_from_settings()
    try:
        processors = provider._active_span_processor._span_processors
        inner = processors[0].span_exporter._inner  # type: ignore[attr-defined]
        assert isinstance(inner, OTLPSpanExporter)
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_TRACES_EXPORTER", "jaeger"), ("OTEL_TRACES_SAMPLER_ARG", "2")],
)
def test_unusable_otel_values_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """An exporter wflo does not ship, or a rate outside 0..1, is refused naming the value."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=repr(value)):
        tracing.tracer_provider_from_settings()
