"""A TCP relay from Docker's bridge to the loopback Prefect API.

The stack's server listens on 127.0.0.1 only. Flow runs of the ``docker-sandbox``
worker dial the API at ``host.docker.internal`` (Docker's bridge gateway), so the
stack relays that one address and port to the loopback server, and nothing else:

    python -m wflo_prefect.stack.relay --listen 172.17.0.1:4200 --to 127.0.0.1:4200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

__all__ = ["main", "relay"]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def relay(listen: tuple[str, int], target: tuple[str, int]) -> None:
    """Serve forever: each connection to ``listen`` is piped to a new one to ``target``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    server = await asyncio.start_server(handle, *listen)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m wflo_prefect.stack.relay --listen HOST:PORT --to HOST:PORT``."""
    parser = argparse.ArgumentParser(prog="python -m wflo_prefect.stack.relay")
    parser.add_argument("--listen", type=_address, required=True)
    parser.add_argument("--to", type=_address, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay(args.listen, args.to))


if __name__ == "__main__":
    main()
