"""Pre-flight checks of ``wflo stack up``: free ports, PostgreSQL, Docker; each refuses clearly."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import socket
import struct
from typing import Any

from wflo_prefect.errors import ConfigurationError, ServiceUnavailableError

__all__ = ["bridge_gateway", "ensure_databases", "require_free_port", "require_postgres"]

_DOCS = "deployment.md"
_SIOCGIFADDR = 0x8915


def require_free_port(host: str, port: int, *, what: str, option: str) -> None:
    """Raise :class:`ConfigurationError` when ``host:port`` cannot be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "taken by another process" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigurationError(
                f"Port {port} on {host} for the {what} is {why}",
                value=f"{host}:{port}",
                hint=f"Stop what listens there (`ss -ltnp 'sport = :{port}'`) or pass "
                f"{option} with a free port",
                docs=_DOCS,
            ) from exc


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _connect(url: str, database: str | None = None) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=database or parsed.database or "postgres",
        connect_timeout=5,
        autocommit=True,
    )


def require_postgres(url: str) -> str:
    """Connect to PostgreSQL at ``url``; return its version, or refuse with how to get one."""
    import psycopg

    try:
        with _connect(url) as connection:
            row = connection.execute("show server_version").fetchone()
    except psycopg.Error as exc:
        raise ServiceUnavailableError(
            f"PostgreSQL is not reachable at {_masked(url)}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
            hint="Install and start it with `sudo scripts/provision.sh postgres` (PostgreSQL 15, "
            "role wflo), or pass --postgres-url with a role that may create databases",
            docs=_DOCS,
        ) from exc
    return str(row[0]) if row else "?"


def ensure_databases(url: str, *names: str) -> list[str]:
    """Create each database in ``names`` that does not exist yet; return those created."""
    import psycopg
    from psycopg import sql

    created = []
    try:
        with _connect(url) as connection:
            for name in names:
                exists = connection.execute(
                    "select 1 from pg_database where datname = %s", (name,)
                ).fetchone()
                if not exists:
                    connection.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                    created.append(name)
    except psycopg.Error as exc:
        raise ServiceUnavailableError(
            f"Creating the stack's databases failed: {str(exc).strip()}",
            value=list(names),
            hint="The role in --postgres-url needs CREATEDB (`ALTER ROLE ... CREATEDB`)",
            docs=_DOCS,
        ) from exc
    return created


def _interface_ipv4(name: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
    return socket.inet_ntoa(packed[20:24])


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: where ``host-gateway`` points.

    The IPAM ``Gateway`` when the engine reports one, else the address of the bridge's
    interface (a freshly started engine may report only the subnet).
    """
    from docker.errors import DockerException

    from wflo_prefect.sandbox.engine import docker_client

    try:
        attrs = docker_client().networks.get("bridge").attrs
    except (DockerException, ServiceUnavailableError) as exc:
        raise ServiceUnavailableError(
            "The docker-sandbox worker needs a Docker engine, and none answers",
            value=str(exc)[:200],
            hint="Start one with `sudo scripts/provision.sh docker`, or pass --no-sandbox-worker",
            docs=_DOCS,
        ) from exc
    configs = [c for c in attrs["IPAM"]["Config"] or [] if ":" not in c.get("Subnet", "")]
    for config in configs:
        if config.get("Gateway"):
            return str(config["Gateway"])
    interface = attrs.get("Options", {}).get("com.docker.network.bridge.name", "docker0")
    address = _interface_ipv4(interface)
    subnets = [ipaddress.ip_network(c["Subnet"]) for c in configs if c.get("Subnet")]
    if subnets and not any(ipaddress.ip_address(address) in net for net in subnets):
        raise ServiceUnavailableError(
            f"Docker's bridge interface {interface} has an address outside the bridge's subnet",
            value={"address": address, "subnets": [str(s) for s in subnets]},
            hint="Restart the Docker engine",
            docs=_DOCS,
        )
    return address
