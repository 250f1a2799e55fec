"""What a sandbox needs of a warm pool (so the sandbox never imports the pool)."""

from __future__ import annotations

from typing import Protocol

from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.launch import Launched

__all__ = ["WarmSource"]


class WarmSource(Protocol):
    """A source of warm containers: :class:`~wflo_prefect.sandbox.warm_pool.WarmPool`."""

    @property
    def config(self) -> SandboxConfig:
        """The configuration every container of the source has."""
        ...

    def take(self) -> Launched | None:
        """A warm container, or ``None`` when none is ready."""
        ...

    def sandbox_closed(self) -> None:
        """Called once by a sandbox that took a warm container, as the last step of its close."""
        ...
