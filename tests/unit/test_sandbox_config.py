"""SandboxConfig validation, the shipped seccomp profile and the plain-data result codec."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from wflo_prefect import WfloUsageError
from wflo_prefect.sandbox import SandboxConfig, SandboxConfigError, plain_data
from wflo_prefect.sandbox.config import default_seccomp_profile
from wflo_prefect.sandbox.hardening import hardened_host_config


def test_defaults_are_locked_down() -> None:
    """No network, read-only root, non-root user, 512 MiB, half a CPU, gVisor off."""
    config = SandboxConfig()
    assert (config.network_enabled, config.readonly_root, config.user) == (False, True, "1000:1000")
    assert config.memory_bytes == 512 * 1024**2
    assert (config.cpu_limit, config.runtime, config.allowed_hosts) == (0.5, "runc", ())


def test_config_is_frozen() -> None:
    """A built config cannot be changed afterwards."""
    config = SandboxConfig()
    with pytest.raises(Exception, match="frozen"):
        config.network_enabled = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"user": "0"}, "never runs code as root"),
        ({"user": "1000:0"}, "never runs code as root"),
        ({"memory_limit": "lots"}, "not a size"),
        ({"cpu_limit": 0}, "cpu_limit"),
        ({"workdir": "/etc"}, "system directory"),
        ({"allowed_hosts": ("example.org",)}, "only applies with the network on"),
        ({"network_enabled": True}, "needs an egress allow-list"),
        ({"network_enabled": True, "allowed_hosts": ("http://x/",)}, "not a host name"),
        ({"runtime": "runsc", "network_enabled": True, "allowed_hosts": ("a.org",)}, "gVisor"),
        ({"apparmor_profile": "unconfined"}, "without an AppArmor profile"),
        ({"seccomp_profile": "unconfined"}, "without seccomp"),
        ({"labels": {"org.wflo.sandbox": "0"}}, "set by wflo itself"),
        ({"runtime": "kata"}, "runtime"),
        ({"privileged": True}, "cannot express `privileged`"),
        ({"readonly_root": False}, "always read-only"),
    ],
)
def test_invalid_settings_are_refused_when_built(options: dict[str, object], message: str) -> None:
    """Each bad or loosening setting fails at construction with a usage error naming it."""
    with pytest.raises(SandboxConfigError, match=message) as caught:
        SandboxConfig(**options)  # type: ignore[arg-type]
    assert isinstance(caught.value, WfloUsageError)
    assert "docs/sandbox.md" in str(caught.value)


def test_allow_all_seccomp_profile_is_refused(tmp_path: Path) -> None:
    """A custom seccomp profile must be an allow-list (deny by default)."""
    profile = tmp_path / "open.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    with pytest.raises(SandboxConfigError, match="lets unlisted syscalls through"):
        SandboxConfig(seccomp_profile=profile)


def test_shipped_seccomp_profile_denies_risky_syscalls() -> None:
    """The packaged profile denies by default and allows none of the escape-prone syscalls."""
    profile = json.loads(default_seccomp_profile())
    allowed = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    risky = {
        "ptrace",
        "mount",
        "unshare",
        "setns",
        "bpf",
        "keyctl",
        "io_uring_setup",
        "userfaultfd",
        "perf_event_open",
        "init_module",
        "kexec_load",
        "open_by_handle_at",
    }
    assert not risky & allowed
    assert {"read", "write", "execve", "futex", "mmap"} <= allowed


def test_host_config_enforces_the_limits() -> None:
    """The docker-py options drop every capability and carry every limit."""
    options = hardened_host_config(SandboxConfig(memory_limit="1g", cpu_limit=2, pids_limit=99))
    assert options["cap_drop"] == ["ALL"]
    assert options["privileged"] is False
    assert options["security_opt"][0] == "no-new-privileges:true"
    assert options["security_opt"][1].startswith("seccomp={")
    assert (options["mem_limit"], options["memswap_limit"]) == (1024**3, 1024**3)
    assert (options["nano_cpus"], options["pids_limit"]) == (2_000_000_000, 99)
    assert options["read_only"] is True
    assert set(options["tmpfs"]) == {"/tmp", "/workspace"}


def test_plain_data_round_trips() -> None:
    """Plain values survive the result codec with their types."""
    value = {
        "n": 1,
        "f": 1.5,
        "s": "x",
        "b": b"\x00",
        "t": (1, (2, 3)),
        "set": {1, 2},
        "fs": frozenset({"a"}),
        "d": Decimal("0.10"),
        "dt": datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC),
        "date": datetime.date(2026, 1, 2),
        "u": uuid.UUID(int=5),
        "none": None,
        (1, 2): "tuple key",
        "$weird": [True, float("inf")],
    }
    assert plain_data.decode(plain_data.encode(value)) == value


def test_plain_data_refuses_objects() -> None:
    """Anything but plain data is refused, naming where it sits."""
    with pytest.raises(plain_data.UnsupportedValue, match=r"result\['x'\]\[0\] is a object"):
        plain_data.encode({"x": [object()]})


def test_worker_points_loopback_api_urls_at_the_host() -> None:
    """A loopback Prefect API URL becomes host.docker.internal, and only it is allow-listed."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from wflo_prefect.sandbox.worker.worker import api_endpoint, api_url

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert api_url() == "http://host.docker.internal:4200/api"
        assert api_endpoint(api_url()) == "host.docker.internal:4200"
    assert api_endpoint("https://prefect.example.org/api") == "prefect.example.org:443"


def test_gvisor_flow_runs_need_network_none() -> None:
    """A docker-sandbox job on gVisor must not ask for the API network it cannot have."""
    from wflo_prefect.sandbox.worker import DockerSandboxJobConfiguration

    with pytest.raises(ValueError, match="gVisor"):
        DockerSandboxJobConfiguration(runtime="runsc")
    assert DockerSandboxJobConfiguration(runtime="runsc", network="none").runtime == "runsc"
