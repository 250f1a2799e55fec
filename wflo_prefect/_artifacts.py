"""Keyed Prefect artifacts from synchronous code, whether the flow is sync or async.

``prefect.artifacts.create_*_artifact`` hand back an un-awaited coroutine when Prefect
thinks it is in an async context (an async flow's hooks, or a guard's worker
thread of one), and the artifact is silently never made. This writes through the
synchronous client instead, naming the flow run explicitly.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

__all__ = ["publish_artifact"]


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null, as Prefect's own table artifacts write them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def publish_artifact(
    kind: Literal["markdown", "table"],
    data: str | list[dict[str, Any]] | dict[str, list[Any]],
    *,
    key: str,
    description: str,
    flow_run_id: str | None,
    task_run_id: str | None = None,
) -> None:
    """Create a new version of the artifact ``key`` on the given run (raises on API errors)."""
    from prefect.client.schemas.actions import ArtifactCreate

    from wflo_prefect._prefect_client import prefect_client

    body = data if isinstance(data, str) else json.dumps(_json_safe(data), default=str)
    with prefect_client() as client:
        client.create_artifact(
            ArtifactCreate(
                key=key,
                type=kind,
                data=body,
                description=description,
                flow_run_id=flow_run_id,
                task_run_id=task_run_id,
            )
        )
