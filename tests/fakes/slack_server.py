"""A local server speaking the part of Slack's Web API the approval channel uses.

slack-sdk's ``WebClient(base_url=...)`` talks to it: ``chat.postMessage`` and
``chat.update`` take form or JSON bodies with a bearer token and answer with
Slack's envelopes (``{"ok": true, "channel": ..., "ts": ...}``, or
``{"ok": false, "error": "invalid_auth"}`` for a wrong token).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class FakeSlack:
    """Records every Web API call; ``messages`` holds posted messages by ts."""

    def __init__(self, token: str = "xoxb-test-token") -> None:  # noqa: S107 - a test token
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.posted = threading.Event()
        self.updated = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    args: dict[str, Any] = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                    if isinstance(args.get("blocks"), str):
                        args["blocks"] = json.loads(args["blocks"])
                method = self.path.rsplit("/", 1)[-1]
                outer.calls.append((method, args))
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {outer.token}":
                    self._reply({"ok": False, "error": "invalid_auth"})
                    return
                self._reply(outer.handle(method, args))

            def _reply(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/api/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def handle(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's answer to one Web API method."""
        channel = str(args.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if method == "chat.postMessage":
            ts = f"{time.time():.6f}"
            message = {"ts": ts, "channel": channel, "text": args.get("text"), **args}
            self.messages[ts] = message
            self.posted.set()
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            ts = str(args.get("ts"))
            if ts not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[ts].update(text=args.get("text"), blocks=args.get("blocks"))
            self.updated.set()
            return {"ok": True, "channel": channel, "ts": ts, "text": args.get("text")}
        return {"ok": False, "error": "unknown_method"}

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
