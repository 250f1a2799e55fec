"""Egress allow-list for a sandbox that has the network on.

Mechanism: the sandbox joins a new *internal* Docker network (the engine forwards
nothing from it to other networks and gives it no upstream DNS), whose only other
member is a small proxy container (:mod:`wflo_prefect.sandbox.egress_proxy`) that is
also on the default bridge. The sandbox gets ``HTTP_PROXY`` / ``HTTPS_PROXY``
pointing at it; the proxy forwards only to the allowed ``host[:port]`` pairs.

An internal network still lets containers reach the *host itself* through the
bridge's gateway address (Docker 20.10 gives them a default route to it), so every
service listening on the host's addresses would be reachable. A host firewall rule
(``iptables -I INPUT -i <bridge> -j DROP``, removed with the network) closes that;
without root and iptables on the engine's host the sandbox refuses to open
(fail closed).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.errors import SandboxError
from wflo_prefect.sandbox.hardening import LABEL, LABEL_ID, hardened_host_config, sandbox_labels

__all__ = ["Egress", "open_egress"]

_PROXY_MEMORY = 64 * 1024 * 1024
_READY_WITHIN = 15.0


@dataclass
class Egress:
    """The internal network and proxy of one sandbox."""

    network: str
    proxy_env: dict[str, str]
    close: Callable[[], None]


def _proxy_source() -> str:
    return resources.files("wflo_prefect.sandbox").joinpath("egress_proxy.py").read_text()


def _wait_ready(proxy: Any) -> None:
    deadline = time.monotonic() + _READY_WITHIN
    while time.monotonic() < deadline:
        if b"wflo-egress: ready" in proxy.logs(stdout=True, stderr=False):
            return
        proxy.reload()
        if proxy.status not in ("created", "running"):
            break
        time.sleep(0.05)
    raise SandboxError(
        "The sandbox's egress proxy did not start",
        value=proxy.logs()[-500:].decode(errors="replace"),
        hint="Check that the sandbox image has python3 (`wflo sandbox build-image`)",
    )


def _firewall(action: str, bridge: str) -> None:
    """Add (``-I``) or delete (``-D``) the rule dropping packets from ``bridge`` to the host."""
    for tool in ("iptables", "ip6tables"):
        path = shutil.which(tool)
        if path is None:
            if tool == "iptables":
                raise SandboxError(
                    "The egress allow-list needs iptables on the Docker host",
                    value=tool,
                    hint="Install iptables and run as root next to the engine, or keep the "
                    "sandbox's network off",
                )
            continue
        done = subprocess.run(
            [path, "-w", "5", action, "INPUT", "-i", bridge, "-j", "DROP"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 and action == "-I" and tool == "iptables":
            raise SandboxError(
                "Could not firewall the sandbox's network off the host",
                value=bridge,
                hint=f"Run as root on the engine's host ({done.stderr.strip()})",
            )


def bridge_name(sandbox_id: str) -> str:
    """Linux interface name of a sandbox's internal bridge (at most 15 characters)."""
    return f"wflo{sandbox_id[-11:]}"


def open_egress(client: Any, config: SandboxConfig, *, sandbox_id: str) -> Egress:
    """Create the internal network and the allow-list proxy for sandbox ``sandbox_id``."""
    from docker.errors import NotFound

    labels = sandbox_labels(config, sandbox_id=sandbox_id, role="egress")
    bridge = bridge_name(sandbox_id)
    network = client.networks.create(
        f"wflo-egress-{sandbox_id}",
        driver="bridge",
        internal=True,
        labels=labels,
        options={"com.docker.network.bridge.name": bridge},
    )
    proxy: Any = None
    firewalled = False

    def close() -> None:
        for remove in (
            lambda: proxy.remove(force=True, v=True) if proxy is not None else None,
            network.remove,
        ):
            with contextlib.suppress(NotFound):
                remove()
        if firewalled:
            _firewall("-D", bridge)

    try:
        _firewall("-I", bridge)
        firewalled = True
        options = hardened_host_config(config)
        options.update(
            mem_limit=_PROXY_MEMORY,
            memswap_limit=_PROXY_MEMORY,
            pids_limit=64,
            runtime="runc",
            environment={"WFLO_ALLOWED": json.dumps(config.allowed_endpoints)},
            extra_hosts={"host.docker.internal": "host-gateway"},
            network="bridge",
        )
        proxy = client.containers.create(
            config.image,
            ["python3", "-c", _proxy_source()],
            name=f"wflo-egress-{sandbox_id}",
            labels={**labels, LABEL: "1", LABEL_ID: sandbox_id},
            detach=True,
            **options,
        )
        network.connect(proxy)
        proxy.start()
        _wait_ready(proxy)
        proxy.reload()
        address = proxy.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    except BaseException:
        close()
        raise
    url = f"http://{address}:3128"
    env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url}
    return Egress(network=network.name, proxy_env=env, close=close)
