"""A local stand-in for the place genai-prices publishes its data (a JSON list of providers).

It serves whatever ``body`` and ``status`` the test sets, can hold answers until the
test releases them (to prove a caller does not wait), and counts the requests.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def provider_payload(input_mtok: Decimal | str, output_mtok: Decimal | str) -> bytes:
    """genai-prices data with one provider, `openai`, and one model, `gpt-4o-mini`."""
    providers = [
        {
            "id": "openai",
            "name": "OpenAI",
            "api_pattern": r"https://api\.openai\.com",
            "model_match": {"starts_with": "gpt-"},
            "models": [
                {
                    "id": "gpt-4o-mini",
                    "match": {"or": [{"equals": "gpt-4o-mini"}, {"starts_with": "gpt-4o-mini-"}]},
                    "name": "GPT-4o mini",
                    "prices": {
                        "input_mtok": _number(input_mtok),
                        "output_mtok": _number(output_mtok),
                    },
                }
            ],
        }
    ]
    return json.dumps(providers).encode()


def _number(value: Decimal | str) -> Any:
    """``value`` as the JSON number genai-prices publishes (7, not "7" or 7.0)."""
    return json.loads(str(value))


class GenaiPricesServer:
    """Answers GET with ``body`` and ``status``; waits for ``release`` when ``hold`` is set."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status = 200
        self.hold = False
        self.release = threading.Event()
        self.requests = 0
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                outer.arrived.set()
                if outer.hold:
                    outer.release.wait(30)
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/data.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Let held requests go and stop serving."""
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
