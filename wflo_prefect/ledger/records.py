"""Plain, typed records the ledger returns (never live ORM rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AuditEvent"]


class AuditEvent(BaseModel):
    """One entry of the audit log."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    occurred_at: datetime
    event: str = Field(description="What happened, e.g. `flow_run.started`.")
    flow_run_id: str | None = None
    task_run_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    flow_name: str | None = None
    task_name: str | None = None
    deployment_id: str | None = None
    actor: str | None = None
    outcome: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
