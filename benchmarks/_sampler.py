"""Where a scale run's resources go: CPU per process tree, PostgreSQL connections, load.

A background thread samples every ``interval`` seconds, tagged with the current
phase; :meth:`Sampler.summary` prints, per phase, each process tree's mean and
peak CPU (in % of one core), the most PostgreSQL connections seen on the
stack's databases, and the load average range. This is the evidence for which
resource ran out.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Sampler", "count_in_log", "rss", "tree_rss"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        for child in children.read_text().split():
            pids.extend(_tree(int(child)))
    except OSError:
        pass
    return pids


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants."""
    total = 0
    for one in _tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def count_in_log(path: Path, needle: str) -> int:
    """Lines of ``path`` that contain ``needle`` (0 if there is no such file)."""
    try:
        with path.open(errors="replace") as log:
            return sum(needle in line for line in log)
    except OSError:
        return 0


@dataclass
class Sampler:
    """Samples ``pids`` (name -> pid callable, so late processes can join) every ``interval``."""

    pids: Callable[[], dict[str, int]]
    connections: Callable[[], int]
    interval: float = 5.0
    phase: str = "start"
    samples: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        """Begin sampling in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """End sampling."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        last: dict[str, tuple[float, float]] = {}
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            cpu: dict[str, float] = {}
            for name, pid in self.pids().items():
                if not Path(f"/proc/{pid}").exists():
                    last.pop(name, None)  # exited: no longer sampled
                    continue
                seconds = _cpu_seconds(pid)
                if name in last:
                    then, before = last[name]
                    # A child that exited takes its CPU time out of the tree: clamp at 0.
                    cpu[name] = max(0.0, 100 * (seconds - before) / max(now - then, 1e-6))
                last[name] = (now, seconds)
            try:
                conns = self.connections()
            except Exception:
                conns = -1
            self.samples.append(
                {"phase": self.phase, "cpu": cpu, "pg": conns, "load": os.getloadavg()[0]}
            )

    def summary(self) -> None:
        """Print per phase: CPU % of one core per process tree, PG connections, load."""
        phases: list[str] = []
        for sample in self.samples:
            if sample["phase"] not in phases:
                phases.append(str(sample["phase"]))
        for phase in phases:
            rows = [s for s in self.samples if s["phase"] == phase]
            names = sorted({n for s in rows for n in s["cpu"]})  # type: ignore[attr-defined]
            cpu = []
            for name in names:
                values = [s["cpu"][name] for s in rows if name in s["cpu"]]  # type: ignore[index,operator]
                cpu.append(f"{name} {sum(values) / len(values):.0f}% (peak {max(values):.0f}%)")
            loads = [float(s["load"]) for s in rows]  # type: ignore[arg-type]
            pg = max(int(s["pg"]) for s in rows)  # type: ignore[call-overload]
            print(
                f"  [{phase}] {len(rows)} samples; CPU (% of one core): {', '.join(cpu)}; "
                f"PostgreSQL connections peak {pg}; load {min(loads):.1f}-{max(loads):.1f}"
            )


def rss(pid: int) -> int:
    """Resident memory of ``pid`` alone, bytes (0 once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> tuple[int, list[int]]:
    """Resident memory of ``pid`` and its descendants, and the descendants' pids."""
    pids = _tree(pid)
    return sum(rss(one) for one in pids), pids[1:]
