"""Egress allow-lists never reach link-local or cloud metadata addresses, however spelled."""

from __future__ import annotations

import pytest

from wflo_prefect.sandbox import SandboxConfig, SandboxConfigError
from wflo_prefect.sandbox.egress_proxy import _vetted_addresses, forbidden_address

METADATA_HOSTS = [
    "169.254.169.254",
    "169.254.169.254:80",
    "169.254.0.1:443",
    "2852039166:80",  # 169.254.169.254 as one decimal number
    "0xa9fea9fe",  # ... as hex
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",  # ... with a 16-bit last part
    "metadata.google.internal:80",
    "METADATA.google.internal",
    "instance-data",
    "metadata",
]


@pytest.mark.parametrize("entry", METADATA_HOSTS)
def test_link_local_and_metadata_hosts_are_refused_in_allow_lists(entry: str) -> None:
    """An allowed_hosts entry naming a link-local or metadata address is refused when built."""
    with pytest.raises(SandboxConfigError, match="link-local or cloud metadata") as caught:
        SandboxConfig(network_enabled=True, allowed_hosts=("pypi.org:443", entry))
    assert entry in str(caught.value)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.1.1",
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
    ],
)
def test_proxy_treats_link_local_and_metadata_addresses_as_forbidden(address: str) -> None:
    """The egress proxy's address check covers IPv4/IPv6 link-local, AWS's v6 and mapped forms."""
    assert forbidden_address(address)


def test_proxy_refuses_names_that_resolve_to_link_local_addresses() -> None:
    """The proxy resolves before it connects and refuses any name resolving to link-local."""
    assert _vetted_addresses("2852039166", 80) is None
    assert _vetted_addresses("169.254.169.254", 80) is None
    assert _vetted_addresses("metadata.google.internal", 80) is None
    assert _vetted_addresses("127.0.0.1", 80) == ["127.0.0.1"]
    assert not forbidden_address("10.0.0.1")
