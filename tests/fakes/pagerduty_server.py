"""A local server speaking PagerDuty's Events API v2 (``POST /v2/enqueue``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakePagerDuty:
    """Validates events like the real API (202 on success, 400 on a bad event)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.resolved = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                status, reply = outer.handle(self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v2/enqueue"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The API's answer to one event."""
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        action = body.get("event_action")
        errors = []
        if not body.get("routing_key"):
            errors.append("'routing_key' is missing")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        if action == "trigger":
            payload = body.get("payload") or {}
            for key in ("summary", "source", "severity"):
                if not payload.get(key):
                    errors.append(f"'payload.{key}' is missing")
        elif not body.get("dedup_key"):
            errors.append("'dedup_key' is missing")
        if errors:
            return 400, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
        self.events.append(body)
        if action == "resolve":
            self.resolved.set()
        dedup = body.get("dedup_key") or "generated"
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup}

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
