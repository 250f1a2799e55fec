"""``SandboxConfig``: what a sandbox may use, validated when it is built.

The model only has fields that keep or tighten the hardening. Privileged mode, host
network / PID / IPC namespaces, host mounts, added capabilities and devices have no
field at all, and naming one is refused with an error that says why, so they cannot
be expressed, not merely defaulted off.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wflo_prefect.sandbox.egress_proxy import METADATA_NAMES, forbidden_address
from wflo_prefect.sandbox.errors import SandboxConfigError
from wflo_prefect.sandbox.seccomp import check_tightens, default_seccomp_profile
from wflo_prefect.settings import get_settings

__all__ = [
    "FORBIDDEN_OPTIONS",
    "SandboxConfig",
    "default_seccomp_profile",
    "parse_size",
]

#: Docker options that would loosen the sandbox, and why each has no field.
FORBIDDEN_OPTIONS: dict[str, str] = {
    "privileged": "a privileged container can reach every host device and undo every limit",
    "cap_add": "added capabilities give root-like powers back (the sandbox drops ALL)",
    "capabilities": "added capabilities give root-like powers back (the sandbox drops ALL)",
    "devices": "host devices are not exposed to sandboxed code",
    "device_requests": "host devices are not exposed to sandboxed code",
    "network_mode": "the sandbox picks its network itself: none, or the egress allow-list",
    "host_network": "the host's network namespace exposes every host service",
    "pid_mode": "the host's PID namespace lets code see and signal host processes",
    "ipc_mode": "the host's IPC namespace shares memory with host processes",
    "userns_mode": "the host's user namespace mode weakens user isolation",
    "volumes": "host paths are never mounted into the sandbox; use put_files / get_files",
    "mounts": "host paths are never mounted into the sandbox; use put_files / get_files",
    "binds": "host paths are never mounted into the sandbox; use put_files / get_files",
    "security_opt": "the seccomp / AppArmor / no-new-privileges options are fixed",
    "sysctls": "kernel parameters are not changed for sandboxed code",
}

_SIZE = re.compile(r"^\s*(\d+)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$"
)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROTECTED_DIRS = ("/", "/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/var")


def parse_size(value: str | int, *, field: str) -> int:
    """Bytes in a Docker-style size (``"512m"``, ``"1g"``, ``"64k"`` or an int)."""
    if isinstance(value, bool):
        raise SandboxConfigError(f"`{field}` must be a size", value=value, hint="Write e.g. '512m'")
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise SandboxConfigError(
                f"`{field}` is not a size Docker understands",
                value=value,
                hint="Write a number with an optional unit b, k, m or g, e.g. '512m'",
            )
        number = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if number <= 0:
        raise SandboxConfigError(f"`{field}` must be positive", value=value, hint="e.g. '512m'")
    return number


def _metadata_host(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name in METADATA_NAMES:
        return True
    try:
        return forbidden_address(name)
    except ValueError:
        pass
    try:  # legacy IPv4 spellings the resolver accepts: 2852039166, 0xa9fea9fe, 169.254.43518
        return forbidden_address(str(ipaddress.IPv4Address(socket.inet_aton(name))))
    except OSError:
        return False


def _host_port(entry: str) -> tuple[str, int | None]:
    host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
    if "/" in entry or not _HOST.match(host):
        raise SandboxConfigError(
            "An `allowed_hosts` entry is not a host name",
            value=entry,
            hint="Write 'example.org' or 'example.org:443' (no scheme, no path)",
        )
    if _metadata_host(host):
        raise SandboxConfigError(
            "An `allowed_hosts` entry names a link-local or cloud metadata address, which "
            "sandboxed code may never reach",
            value=entry,
            hint="Remove it; credentials of the host's cloud account live there",
        )
    if port == "":
        return host.lower(), None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SandboxConfigError(
            "An `allowed_hosts` entry has an invalid port", value=entry, hint="Use 1-65535"
        )
    return host.lower(), int(port)


class SandboxConfig(BaseModel):
    """Limits and isolation of one sandbox. Immutable; validated when built.

    Defaults are the locked-down ones: no network, read-only root file system,
    non-root user, every capability dropped, no new privileges, the package's
    seccomp profile, 512 MiB memory without swap, half a CPU, 128 processes and a
    60 s timeout.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = Field(
        default_factory=lambda: get_settings().sandbox_image,
        min_length=1,
        description="Image the code runs in; default: the `sandbox_image` setting.",
        examples=["wflo-sandbox:latest"],
    )
    memory_limit: str = Field(
        default="512m",
        description="Memory the container may use (no swap on top).",
        examples=["256m", "1g"],
    )
    cpu_limit: float = Field(
        default=0.5, gt=0, le=64, description="CPUs the container may use, e.g. 0.5."
    )
    pids_limit: int = Field(
        default=128, ge=8, le=32768, description="Processes and threads the container may have."
    )
    timeout_seconds: float = Field(
        default=60, gt=0, le=86400, description="Wall time one run may take before it is killed."
    )
    network_enabled: bool = Field(
        default=False, description="Give the code a network at all (egress through allow-list)."
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="With the network on: the only hosts (optionally host:port) code may reach.",
        examples=[("pypi.org:443",)],
    )
    readonly_root: bool = Field(
        default=True,
        description="Always true: the root file system is read-only (False is refused).",
    )
    tmp_size: str = Field(default="64m", description="Size of the writable tmpfs at /tmp.")
    workdir: str = Field(default="/workspace", description="Writable tmpfs the code starts in.")
    workdir_size: str = Field(default="64m", description="Size of the working directory tmpfs.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment of the code.")
    user: str = Field(
        default="1000:1000", description="Non-root uid:gid the code runs as (root is refused)."
    )
    runtime: Literal["runc", "runsc"] = Field(
        default="runc", description="OCI runtime: runc, or runsc for gVisor."
    )
    seccomp_profile: Path | None = Field(
        default=None,
        description="A seccomp profile (JSON file); default: the restrictive one shipped "
        "with wflo-prefect. 'unconfined' cannot be expressed.",
    )
    apparmor_profile: str | None = Field(
        default=None,
        description="AppArmor profile where the host has AppArmor (Docker applies "
        "docker-default when empty); 'unconfined' is refused.",
    )
    output_limit_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Bytes of stdout and of stderr kept per run; the rest is dropped.",
    )
    max_lifetime_seconds: int = Field(
        default=3600,
        ge=10,
        le=7 * 86400,
        description="The container ends itself after this long, even if its owner crashed.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Extra container labels.")

    def __init__(self, **data: Any) -> None:
        for name in data:
            if name in FORBIDDEN_OPTIONS:
                raise SandboxConfigError(
                    f"SandboxConfig cannot express `{name}`: {FORBIDDEN_OPTIONS[name]}",
                    value={name: data[name]},
                    hint="Remove it; the sandbox's hardening is not configurable",
                )
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            original = (first.get("ctx") or {}).get("error")
            if isinstance(original, SandboxConfigError):
                raise original from None
            where = ".".join(str(p) for p in first["loc"]) or "SandboxConfig"
            raise SandboxConfigError(
                f"Invalid sandbox setting `{where}`: {first['msg']}",
                value=first.get("input"),
                hint="Fix the value; the fields are listed in docs/sandbox.md",
            ) from None

    @field_validator("memory_limit", "tmp_size", "workdir_size")
    @classmethod
    def _size(cls, value: str, info: Any) -> str:
        parse_size(value, field=info.field_name)
        return value

    @field_validator("readonly_root")
    @classmethod
    def _readonly_root(cls, value: bool) -> bool:
        if value is not True:
            raise SandboxConfigError(
                "The sandbox's root file system is always read-only",
                value=value,
                hint="Drop readonly_root=False; write to the working directory or /tmp "
                "(size them with workdir_size / tmp_size)",
            )
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str) -> str:
        path = value.rstrip("/") or "/"
        if not path.startswith("/") or ".." in path.split("/") or path in _PROTECTED_DIRS:
            raise SandboxConfigError(
                "`workdir` must be an absolute path of its own, not a system directory",
                value=value,
                hint="Use e.g. '/workspace'",
            )
        return path

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        uid, _, gid = value.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise SandboxConfigError(
                "`user` must be a numeric uid or uid:gid",
                value=value,
                hint="e.g. '1000:1000' (names are resolved in the image, so cannot be checked)",
            )
        if int(uid) == 0 or (gid and int(gid) == 0):
            raise SandboxConfigError(
                "The sandbox never runs code as root (uid or gid 0)",
                value=value,
                hint="Use a non-root uid:gid such as '1000:1000'",
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_KEY.match(key):
                raise SandboxConfigError(
                    "An environment variable name is invalid", value=key, hint="Use [A-Za-z_0-9]"
                )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.startswith("org.wflo."):
                raise SandboxConfigError(
                    "Labels under org.wflo. are set by wflo itself",
                    value=key,
                    hint="Choose another label prefix",
                )
        return value

    @field_validator("apparmor_profile")
    @classmethod
    def _apparmor(cls, value: str | None) -> str | None:
        if value is not None and (value.strip().lower() == "unconfined" or not value.strip()):
            raise SandboxConfigError(
                "The sandbox does not run without an AppArmor profile",
                value=value,
                hint="Leave `apparmor_profile` empty (docker-default) or name a loaded profile",
            )
        return value

    @field_validator("seccomp_profile")
    @classmethod
    def _seccomp(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if str(value).strip().lower() == "unconfined":
            raise SandboxConfigError(
                "The sandbox does not run without seccomp",
                value=str(value),
                hint="Leave `seccomp_profile` empty to use the profile shipped with wflo",
            )
        try:
            profile = json.loads(Path(value).read_text())
        except (OSError, ValueError) as exc:
            raise SandboxConfigError(
                "`seccomp_profile` is not a readable JSON file",
                value=str(value),
                hint=f"Point it at a Docker seccomp profile ({exc})",
            ) from None
        check_tightens(profile)
        return value

    @model_validator(mode="after")
    def _network(self) -> SandboxConfig:
        if self.allowed_hosts and not self.network_enabled:
            raise SandboxConfigError(
                "`allowed_hosts` only applies with the network on",
                value=self.allowed_hosts,
                hint="Set network_enabled=True too, or drop allowed_hosts",
            )
        if self.network_enabled and not self.allowed_hosts:
            raise SandboxConfigError(
                "With the network on, the sandbox needs an egress allow-list",
                value=self.allowed_hosts,
                hint="Name the hosts code may reach in allowed_hosts, e.g. ('pypi.org:443',)",
            )
        for entry in self.allowed_hosts:
            _host_port(entry)
        if self.runtime == "runsc" and self.network_enabled:
            raise SandboxConfigError(
                "gVisor (runtime='runsc') sandboxes run without a network on this engine",
                value={"runtime": self.runtime, "network_enabled": True},
                hint="Use runtime='runc' for a sandbox that needs its egress allow-list, or "
                "keep network_enabled=False with gVisor",
            )
        return self

    @cached_property
    def memory_bytes(self) -> int:
        """``memory_limit`` in bytes."""
        return parse_size(self.memory_limit, field="memory_limit")

    @cached_property
    def allowed_endpoints(self) -> tuple[tuple[str, int | None], ...]:
        """``allowed_hosts`` as (host, port or None for any port)."""
        return tuple(_host_port(entry) for entry in self.allowed_hosts)

    def seccomp_json(self) -> str:
        """The seccomp profile the container gets, as compact JSON text."""
        if self.seccomp_profile is None:
            profile = json.loads(default_seccomp_profile())
        else:
            # Checked again as read: the file may have changed since the config was built.
            try:
                profile = json.loads(Path(self.seccomp_profile).read_text())
            except (OSError, ValueError) as exc:
                raise SandboxConfigError(
                    "`seccomp_profile` is no longer a readable JSON file",
                    value=str(self.seccomp_profile),
                    hint=f"Restore the file or drop the setting ({exc})",
                ) from None
            check_tightens(profile)
        return json.dumps(profile, separators=(",", ":"))
