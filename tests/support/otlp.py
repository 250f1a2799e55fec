"""A real OTLP/HTTP trace receiver on loopback, built from the `opentelemetry-proto` messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["OtlpReceiver", "otlp_receiver"]


class OtlpReceiver(ThreadingHTTPServer):
    """Keeps every span POSTed to ``/v1/traces`` and the request headers."""

    spans: list[Span]
    headers: list[dict[str, str]]
    lock: threading.Lock

    @property
    def endpoint(self) -> str:
        """The URL to export to."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def named(self, name: str) -> list[Span]:
        """The spans received with this name."""
        with self.lock:
            return [s for s in self.spans if s.name == name]

    def wait_for(self, name: str, timeout: float = 60.0) -> Span:
        """The first span named ``name``, waiting for it (exports are batched)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.named(name)
            if found:
                return found[0]
            time.sleep(0.05)
        with self.lock:
            seen = sorted({s.name for s in self.spans})
        raise AssertionError(f"no span {name!r} arrived in {timeout} s; got {seen}")


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
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


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Serve a receiver on a free loopback port for the block."""
    server = OtlpReceiver(("127.0.0.1", 0), _Handler)
    server.spans, server.headers, server.lock = [], [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
