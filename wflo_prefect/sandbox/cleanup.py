"""Removing sandbox containers (and egress networks) that a crashed process left behind.

Every wflo container carries ``org.wflo.sandbox=1`` and the ``host:pid:start`` of the
process that owns it. A container whose owner no longer runs on this host is an
orphan: ``wflo sandbox gc`` removes orphans (or everything, with ``--all``), and the
first sandbox a process opens reaps them too. Containers also end themselves after
``max_lifetime_seconds``, so an orphan on another host cannot run forever.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wflo_prefect.observability.logging import get_logger
from wflo_prefect.sandbox.hardening import LABEL, LABEL_CREATED, LABEL_OWNER, owner_alive

__all__ = ["Collected", "collect_garbage", "reap_orphans_once"]

_log = get_logger("sandbox")
_EGRESS_RULE = re.compile(r"^-A INPUT -i (wflo[0-9a-f]{1,11}) -j DROP$")
_reaped = False
_reap_lock = threading.Lock()


@dataclass(frozen=True)
class Collected:
    """What one garbage collection removed."""

    containers: list[str]
    networks: list[str]


def _is_garbage(labels: dict[str, str], *, everything: bool, older_than: float | None) -> bool:
    if everything:
        return True
    created = labels.get(LABEL_CREATED, "")
    if older_than is not None and created.isdigit() and time.time() - int(created) > older_than:
        return True
    return owner_alive(labels.get(LABEL_OWNER, "")) is False


def collect_garbage(
    client: Any, *, everything: bool = False, older_than: float | None = None
) -> Collected:
    """Remove wflo containers whose owner is gone (all of them with ``everything``)."""
    from docker.errors import APIError, NotFound

    removed: list[str] = []
    # Containers removed while they are listed (a pool's removal in the background, a
    # worker's) are skipped, not an error: they are gone, as gc wants.
    listed = client.containers.list(all=True, filters={"label": f"{LABEL}=1"}, ignore_removed=True)
    for container in listed:
        if not _is_garbage(container.labels, everything=everything, older_than=older_than):
            continue
        try:
            container.remove(force=True, v=True)
            removed.append(container.name)
        except NotFound:
            continue
        except APIError as exc:
            if "already in progress" not in str(exc):
                raise
    networks: list[str] = []
    for network in client.networks.list(filters={"label": f"{LABEL}=1"}):
        labels = network.attrs.get("Labels") or {}
        if not _is_garbage(labels, everything=everything, older_than=older_than):
            continue
        try:
            network.reload()
            if network.attrs.get("Containers"):
                continue
            network.remove()
            networks.append(network.name)
        except (NotFound, APIError):
            continue
    rules = _drop_stale_firewall_rules()
    if removed or networks or rules:
        _log.info("sandbox.gc", containers=removed, networks=networks, firewall_rules=rules)
    return Collected(removed, networks)


def _drop_stale_firewall_rules() -> list[str]:
    """Delete egress firewall rules whose bridge no longer exists (left by a crash)."""
    iptables = shutil.which("iptables")
    if iptables is None or os.geteuid() != 0:
        return []
    listed = subprocess.run(
        [iptables, "-w", "5", "-S", "INPUT"], capture_output=True, text=True, check=False
    )
    stale = []
    for line in listed.stdout.splitlines():
        match = _EGRESS_RULE.match(line)
        if match and not Path("/sys/class/net", match.group(1)).exists():
            subprocess.run(
                [iptables, "-w", "5", "-D", "INPUT", "-i", match.group(1), "-j", "DROP"],
                capture_output=True,
                check=False,
            )
            stale.append(match.group(1))
    return stale


def reap_orphans_once(client: Any) -> None:
    """Collect orphans the first time this process opens a sandbox."""
    global _reaped
    with _reap_lock:
        first, _reaped = not _reaped, True
    if not first:
        return
    try:
        collect_garbage(client)
    except Exception as exc:  # reaping is housekeeping; never fail a run for it
        _log.warning("sandbox.gc_failed", error=str(exc))
