"""A local webhook receiver that checks wflo's HMAC signature like a real one would."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wflo_prefect.approvals import verify_webhook_signature


class WebhookReceiver:
    """Accepts POSTs; keeps (verified, body) of each; 401 when the signature is wrong."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[bool, dict[str, Any]]] = []
        #: Wall-clock arrival time of each request (for the latency benchmark).
        self.arrived_at: list[float] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.arrived_at.append(time.time())
                ok = verify_webhook_signature(
                    outer.secret,
                    self.headers.get("X-Wflo-Timestamp", ""),
                    body,
                    self.headers.get("X-Wflo-Signature", ""),
                )
                outer.received.append((ok, json.loads(body)))
                outer.arrived.set()
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
