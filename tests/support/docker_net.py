"""Addresses on Docker networks, derived from what the engine and the kernel report.

A freshly started Docker engine (Debian's 20.10) describes the default bridge's IPAM
config as ``[{"Subnet": "172.17.0.0/16"}]`` with no ``Gateway`` key; the gateway is then
the address of the bridge's interface (``docker0``). Tests must not depend on which of the
two an engine happens to report, so they ask here.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from typing import Any

_SIOCGIFADDR = 0x8915
_DEFAULT_BRIDGE_INTERFACE = "docker0"


def interface_ipv4(name: str) -> str:
    """The IPv4 address of the network interface ``name`` on this host."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
    return socket.inet_ntoa(packed[20:24])


def bridge_gateway(client: Any, network: str = "bridge") -> str:
    """The host's IPv4 address on Docker network ``network`` (what a container would dial).

    Uses the IPAM ``Gateway`` when the engine reports one, otherwise the address of the
    network's bridge interface, checked to lie in the network's subnet.
    """
    attrs = client.networks.get(network).attrs
    configs = [c for c in attrs["IPAM"]["Config"] or [] if ":" not in c.get("Subnet", "")]
    for config in configs:
        if config.get("Gateway"):
            return str(config["Gateway"])
    interface = attrs.get("Options", {}).get(
        "com.docker.network.bridge.name", _DEFAULT_BRIDGE_INTERFACE
    )
    address = interface_ipv4(interface)
    subnets = [ipaddress.ip_network(c["Subnet"]) for c in configs if c.get("Subnet")]
    if subnets and not any(ipaddress.ip_address(address) in net for net in subnets):
        raise AssertionError(f"{interface} has {address}, outside {network}'s subnets {subnets}")
    return address
