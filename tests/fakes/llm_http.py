"""A tiny threaded HTTP server base for the fake LLM provider APIs the tests talk to.

The providers cannot be reached from here, so each fake speaks its provider's real
wire format (JSON bodies, SSE streams, error objects, request-id headers) and the
tests drive it through the official client library. Every request received is kept
in ``requests``, so a test can prove what reached the wire, and what did not.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Reply:
    """What to send back: a JSON body, SSE events or JSON lines, streamed one by one."""

    status: int = 200
    json_body: Any = None
    events: Iterable[tuple[str | None, str]] | None = None
    headers: dict[str, str] | None = None
    #: A stream of JSON lines (``application/stream+json``), sent one line at a time.
    lines: Iterable[Any] | None = None


def count_tokens(value: Any) -> int:
    """The fake tokenizer: one token per 4 characters of text, rounded up."""

    def chars(v: Any) -> int:
        if isinstance(v, str):
            return len(v)
        if isinstance(v, dict):
            return sum(chars(x) for k, x in v.items() if k not in ("type", "role"))
        if isinstance(v, list):
            return sum(chars(x) for x in v)
        return 0

    return max(1, math.ceil(chars(value) / 4))


class FakeLLMServer:
    """Base of the fake provider servers: start in a thread, record, reply."""

    #: Tokens each answer has (capped by the request's max tokens).
    reply_tokens = 12

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next: list[int] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on loopback

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                body = json.loads(raw or b"{}")
                received = Received("POST", self.path, dict(self.headers.items()), body)
                with server._lock:
                    server.requests.append(received)
                    status = server.fail_next.pop(0) if server.fail_next else None
                reply = server.error(status) if status else server.respond(received)
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                headers = dict(reply.headers or {})
                if reply.lines is not None:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/stream+json")
                    self.send_header("connection", "close")
                    self.end_headers()
                    for line in reply.lines:
                        self.wfile.write(json.dumps(line).encode() + b"\n")
                        self.wfile.flush()
                    self.close_connection = True
                    return
                if reply.events is None:
                    payload = json.dumps(reply.json_body).encode()
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for event, data in reply.events:
                    chunk = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLLMServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self) -> list[str]:
        """Paths of the requests received, in order."""
        with self._lock:
            return [r.path for r in self.requests]

    def respond(self, request: Received) -> Reply:
        """The reply to a request (provider specific)."""
        raise NotImplementedError

    def error(self, status: int) -> Reply:
        """The provider's error reply with ``status``."""
        raise NotImplementedError


def sse(events: Iterable[tuple[str | None, Any]]) -> Iterator[tuple[str | None, str]]:
    """Encode (event name, JSON-able data) pairs; a str data is sent as is."""
    for name, data in events:
        yield name, data if isinstance(data, str) else json.dumps(data)
