"""Starting the stack's processes detached, recording them, and stopping them again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Component", "alive", "read_state", "spawn", "stop", "write_state"]


@dataclass(frozen=True)
class Component:
    """One running process of the stack."""

    name: str
    pid: int
    argv: list[str]
    address: str
    log: str


def spawn(
    name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, cwd: Path, address: str
) -> Component:
    """Start ``argv`` in its own session (so :func:`stop` can end its whole group)."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Right after the fork /proc may still show this process's argv (or none): wait for the
    # exec, so that alive() recognises the component from the first check on.
    deadline = time.monotonic() + 10
    while process.poll() is None and _cmdline(process.pid) != argv:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return Component(name, process.pid, argv, address, str(log))


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(component: Component) -> bool:
    """The component's process still runs (and is the one started: its argv matches)."""
    cmdline = _cmdline(component.pid)
    if not cmdline:
        return False
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{component.pid}/stat").read_text()
        if status.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    # The interpreter may be re-exec'd with a different argv[0]; compare the rest.
    return cmdline[1:] == component.argv[1:] or cmdline == component.argv


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(component: Component, timeout: float = 30.0) -> bool:
    """SIGTERM the component's process group, SIGKILL it after ``timeout``; True if gone."""
    if not alive(component):
        _reap(component.pid)
        return True
    pgid = component.pid  # each component leads its own session and group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(component.pid)
        if not _group_alive(pgid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _reap(component.pid)
        if not _group_alive(pgid):
            return True
        time.sleep(0.2)
    return False


def write_state(path: Path, components: list[Component], **extra: object) -> None:
    """Record the running components (and ports) atomically."""
    data = {"components": [asdict(c) for c in components], **extra}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def read_state(path: Path) -> tuple[list[Component], dict[str, object]]:
    """The components and extra fields :func:`write_state` recorded ([] if none)."""
    if not path.is_file():
        return [], {}
    data = json.loads(path.read_text())
    components = [Component(**c) for c in data.pop("components", [])]
    return components, data
