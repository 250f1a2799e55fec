"""Resource figures of a container, read from its cgroup.

When the engine runs on this host, the container's cgroup files are read directly
(microseconds; cgroup v1 and v2, cgroupfs and systemd drivers). Otherwise the
engine's stats API is asked, which is slower (it samples about once a second).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Usage", "oom_kills", "read_usage"]

_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class Usage:
    """One snapshot of a container's cgroup counters."""

    cpu_ns: int | None
    memory_bytes: int | None
    peak_memory_bytes: int | None
    oom_kills: int | None = None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _keyed(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _from_cgroup_v1(container_id: str) -> Usage | None:
    memory = _ROOT / "memory" / "docker" / container_id
    cpu = _ROOT / "cpuacct" / "docker" / container_id
    if not memory.is_dir():
        return None
    return Usage(
        cpu_ns=_read_int(cpu / "cpuacct.usage"),
        memory_bytes=_read_int(memory / "memory.usage_in_bytes"),
        peak_memory_bytes=_read_int(memory / "memory.max_usage_in_bytes"),
        oom_kills=_keyed(memory / "memory.oom_control", "oom_kill"),
    )


def _from_cgroup_v2(container_id: str) -> Usage | None:
    for group in (
        _ROOT / "docker" / container_id,
        _ROOT / "system.slice" / f"docker-{container_id}.scope",
    ):
        if (group / "cgroup.controllers").is_file():
            usage_usec = _keyed(group / "cpu.stat", "usage_usec")
            current = _read_int(group / "memory.current")
            return Usage(
                cpu_ns=None if usage_usec is None else usage_usec * 1000,
                memory_bytes=current,
                peak_memory_bytes=_read_int(group / "memory.peak") or current,
                oom_kills=_keyed(group / "memory.events", "oom_kill"),
            )
    return None


def _from_api(client: Any, container_id: str) -> Usage:
    try:
        stats = client.api.stats(container_id, stream=False, one_shot=True)
    except Exception:
        return Usage(None, None, None)
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    return Usage(
        cpu_ns=cpu.get("total_usage"),
        memory_bytes=usage,
        peak_memory_bytes=memory.get("max_usage") or usage,
    )


def read_usage(client: Any, container_id: str) -> Usage:
    """CPU used so far, memory now, peak memory and OOM kills of the container."""
    local = _from_cgroup_v1(container_id) or _from_cgroup_v2(container_id)
    return local if local is not None else _from_api(client, container_id)


def oom_kills(client: Any, container_id: str, since: float, before: Usage, after: Usage) -> int:
    """How many times the kernel's OOM killer hit the container since ``since``."""
    if before.oom_kills is not None and after.oom_kills is not None:
        return after.oom_kills - before.oom_kills
    # No cgroup counter here: ask the engine's event log, one second ahead because
    # it publishes the event just after the kill.
    events = client.api.events(
        since=int(since),
        until=int(time.time()) + 1,
        filters={"container": container_id, "event": "oom"},
    )
    try:
        return sum(1 for _ in events)
    finally:
        events.close()
