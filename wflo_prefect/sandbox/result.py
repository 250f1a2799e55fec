"""``SandboxResult``: what one run in the sandbox did and used."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SandboxResult"]


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """Outcome of one command run in a sandbox.

    ``cpu_time_seconds`` is the CPU the container used during the run and
    ``peak_memory_bytes`` the container's peak memory so far, both read from its
    cgroup through the engine's stats before the container is removed.
    """

    sandbox_id: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration_seconds: float
    timed_out: bool = False
    oom_killed: bool = False
    peak_memory_bytes: int | None = None
    cpu_time_seconds: float | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    runtime: str = "runc"

    @property
    def ok(self) -> bool:
        """The command ran to the end and exited 0."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed

    def summary(self) -> dict[str, object]:
        """The numbers of the run, without its output (for audit entries and events)."""
        return {
            "sandbox_id": self.sandbox_id,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_seconds, 6),
            "timed_out": self.timed_out,
            "oom_killed": self.oom_killed,
            "peak_memory_bytes": self.peak_memory_bytes,
            "cpu_time_s": None
            if self.cpu_time_seconds is None
            else round(self.cpu_time_seconds, 6),
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "runtime": self.runtime,
        }
