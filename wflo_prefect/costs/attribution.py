"""Who a call is charged to: flow, runs, deployment, work pool, user, tags, trace.

Read from Prefect's run context when the call is made. The user is, in order: the
one set with :func:`attribute_to`, a ``user:<name>`` tag on the run or task, or a
``user`` / ``user_id`` parameter of the flow run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from prefect.context import FlowRunContext, TagsContext, TaskRunContext

from wflo_prefect.observability.correlation import current_correlation

__all__ = ["Attribution", "attribute_to", "current_attribution"]

_USER: ContextVar[str | None] = ContextVar("wflo_costs_user", default=None)
_USER_PARAMETERS = ("user", "user_id")


@dataclass(frozen=True, slots=True)
class Attribution:
    """The context a call's cost is attributed to."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    flow_name: str | None = None
    deployment_id: str | None = None
    work_pool: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    trace_id: str | None = None


@contextmanager
def attribute_to(user: str) -> Iterator[None]:
    """Attribute every call made inside the block to ``user``."""
    token = _USER.set(user)
    try:
        yield
    finally:
        _USER.reset(token)


def current_attribution() -> Attribution:
    """The attribution of a call made now."""
    ids = current_correlation()
    tags: list[str] = []
    work_pool = None
    parameters: dict[str, object] = {}
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        tags.extend(flow_ctx.flow_run.tags or ())
        work_pool = flow_ctx.flow_run.work_pool_name
        parameters = dict(flow_ctx.parameters or {})
    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        tags.extend(task_ctx.task_run.tags or ())
    tags.extend(TagsContext.get().current_tags)
    unique = tuple(dict.fromkeys(tags))
    user = _USER.get()
    if user is None:
        user = next((t.split(":", 1)[1] for t in unique if t.startswith("user:")), None)
    if user is None:
        for name in _USER_PARAMETERS:
            value = parameters.get(name)
            if isinstance(value, str) and value:
                user = value
                break
    return Attribution(
        flow_run_id=ids.flow_run_id,
        task_run_id=ids.task_run_id,
        flow_name=ids.flow_name,
        deployment_id=ids.deployment_id,
        work_pool=work_pool,
        user=user,
        tags=unique,
        trace_id=ids.trace_id,
    )
