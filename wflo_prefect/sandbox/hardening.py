"""The one place that turns a :class:`SandboxConfig` into Docker container options.

Both the in-task sandbox and the ``docker-sandbox`` worker create containers through
:func:`hardened_host_config`, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from wflo_prefect.sandbox.config import SandboxConfig, parse_size

__all__ = [
    "LABEL",
    "LABEL_CREATED",
    "LABEL_ID",
    "LABEL_OWNER",
    "LABEL_ROLE",
    "declared_volume_tmpfs",
    "hardened_host_config",
    "owner_label",
    "sandbox_labels",
]

LABEL = "org.wflo.sandbox"
LABEL_ID = "org.wflo.sandbox.id"
LABEL_OWNER = "org.wflo.sandbox.owner"
LABEL_ROLE = "org.wflo.sandbox.role"
LABEL_CREATED = "org.wflo.sandbox.created"


def _process_start_ticks(pid: int) -> str:
    # The start time tells a live owner from a reused pid.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[19]
    except OSError:
        return "0"


def owner_label(pid: int | None = None) -> str:
    """``host:pid:start`` of a process, written on the containers it owns."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start_ticks(pid)}"


def owner_alive(owner: str) -> bool | None:
    """Whether the owning process still runs; None when it is on another host."""
    host, _, rest = owner.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _process_start_ticks(int(pid)) == ticks and ticks != "0"


def sandbox_labels(
    config: SandboxConfig, *, sandbox_id: str, role: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Labels every wflo container carries (``wflo sandbox gc`` finds them by these)."""
    return {
        **config.labels,
        **(extra or {}),
        LABEL: "1",
        LABEL_ID: sandbox_id,
        LABEL_ROLE: role,
        LABEL_OWNER: owner_label(),
        LABEL_CREATED: str(int(time.time())),
    }


def declared_volume_tmpfs(declared: dict[str, Any] | None, config: SandboxConfig) -> dict[str, str]:
    """tmpfs mounts over the paths an image declares as ``VOLUME``.

    Without them the engine gives each such path an anonymous volume: writable,
    uncapped, and left on disk after the container. A tmpfs of ``tmp_size`` there
    stops the engine from creating one.
    """
    uid, _, gid = config.user.partition(":")
    size = parse_size(config.tmp_size, field="tmp_size")
    options = f"rw,nosuid,nodev,noexec,size={size},mode=0755,uid={uid},gid={gid or uid}"
    skip = {"/tmp", config.workdir}  # noqa: S108 - paths in the container
    return {path.rstrip("/") or "/": options for path in declared or {} if path not in skip}


def hardened_host_config(config: SandboxConfig) -> dict[str, Any]:
    """docker-py ``containers.create`` keywords that enforce ``config``'s limits.

    Everything security-relevant is set here explicitly: no capabilities, no new
    privileges, the seccomp profile, read-only root, tmpfs scratch space, memory
    without swap, CPU quota, pids limit, private IPC, the runtime.
    """
    memory = config.memory_bytes
    security_opt = ["no-new-privileges:true", f"seccomp={config.seccomp_json()}"]
    if config.apparmor_profile:
        security_opt.append(f"apparmor={config.apparmor_profile}")
    uid, _, gid = config.user.partition(":")
    tmp_size = parse_size(config.tmp_size, field="tmp_size")
    tmpfs = {
        "/tmp": f"rw,nosuid,nodev,size={tmp_size},mode=1777",  # noqa: S108 - in the container
        config.workdir: (
            f"rw,nosuid,nodev,size={parse_size(config.workdir_size, field='workdir_size')},"
            f"mode=0755,uid={uid},gid={gid or uid}"
        ),
    }
    return {
        "user": config.user,
        "working_dir": config.workdir,
        "environment": {"HOME": config.workdir, "PYTHONDONTWRITEBYTECODE": "1", **config.env},
        "read_only": config.readonly_root,
        "tmpfs": tmpfs,
        "cap_drop": ["ALL"],
        "security_opt": security_opt,
        "privileged": False,
        "ipc_mode": "private",
        "pids_limit": config.pids_limit,
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": int(config.cpu_limit * 1_000_000_000),
        "runtime": config.runtime,
        "init": True,
        "hostname": "sandbox",
    }
