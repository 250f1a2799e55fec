"""The egress proxy that runs in its own container next to a networked sandbox.

Standard library only: its source is what the proxy container runs (``python3 -c``).
It accepts HTTP ``CONNECT host:port`` tunnels and plain ``http://`` requests, and
forwards only to the (host, port) pairs in ``WFLO_ALLOWED`` (JSON list of
``[host, port-or-null]``); anything else gets ``403``. The sandbox itself sits on an
internal Docker network without a route out, so this proxy is its only way out.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import socket
import socketserver
import sys
from urllib.parse import urlsplit

PORT = 3128
_HOP = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization"}


#: Cloud metadata names; link-local and these are never reachable, whatever the allow-list.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.platformequinix.com",
        "metadata.packet.net",
    }
)
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})


def forbidden_address(address: str) -> bool:
    """Whether an IP address is link-local or a cloud metadata service's."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in _METADATA_ADDRESSES


def _vetted_addresses(host: str, port: int) -> list[str] | None:
    """The addresses ``host`` resolves to, or None when one of them is forbidden."""
    if host.lower().rstrip(".") in METADATA_NAMES:
        return None
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    addresses = [str(info[4][0]) for info in found]
    return None if any(forbidden_address(a) for a in addresses) else addresses


def allowed(host: str, port: int, rules: list[tuple[str, int | None]]) -> bool:
    """Whether ``host:port`` is on the allow-list."""
    host = host.lower().rstrip(".")
    return any(host == h and (p is None or p == port) for h, p in rules)


def _relay(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 300)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


class _Handler(socketserver.StreamRequestHandler):
    # Unbuffered reads: nothing the client sent after the headers may sit in a buffer
    # this handler would forget to relay.
    rbufsize = 0
    rules: list[tuple[str, int | None]] = []

    def _refuse(self, target: str) -> None:
        sys.stderr.write(f"wflo-egress: refused {target}\n")
        self.wfile.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )

    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1")
        parts = line.split()
        if len(parts) != 3:
            return
        method, target, version = parts
        headers = []
        while True:
            header = self.rfile.readline(8192)
            if header in (b"\r\n", b"\n", b""):
                break
            headers.append(header)
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port = int(port_text) if port_text.isdigit() else 443
        else:
            url = urlsplit(target)
            host, port = url.hostname or "", url.port or 80
        if not host or not allowed(host, port, self.rules):
            self._refuse(f"{host}:{port}")
            return
        # Resolved once and connected to by address: a name that resolves (or rebinds) to
        # a link-local / metadata address is refused, whatever the allow-list says.
        addresses = _vetted_addresses(host, port)
        if addresses is None:
            self._refuse(f"{host}:{port} (link-local or metadata address)")
            return
        upstream = None
        for address in addresses:
            try:
                upstream = socket.create_connection((address, port), timeout=10)
                break
            except OSError:
                continue
        if upstream is None:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            if method.upper() == "CONNECT":
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                path = urlsplit(target)._replace(scheme="", netloc="").geturl() or "/"
                upstream.sendall(f"{method} {path} {version}\r\n".encode("latin-1"))
                # One request per connection: later requests on a kept-alive connection
                # would reach the upstream unchecked and in proxy form.
                kept = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in _HOP]
                upstream.sendall(b"".join(kept) + b"Connection: close\r\n\r\n")
            self.wfile.flush()
            _relay(self.connection, upstream)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    """Serve on :data:`PORT` until the container is removed."""
    _Handler.rules = [(h.lower(), p) for h, p in json.loads(os.environ["WFLO_ALLOWED"])]
    with _Server(("0.0.0.0", PORT), _Handler) as server:  # noqa: S104 - inside its own container
        print("wflo-egress: ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
