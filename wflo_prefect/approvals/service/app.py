"""The FastAPI application of ``wflo approvals serve``.

Routes: ``/api/approvals`` (REST, API-key auth), ``/slack/interactions``,
``/links/{token}``, ``/healthz``; the OpenAPI document is at ``/openapi.json``.
A background loop sweeps requests whose waiting process is gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI

from wflo_prefect._version import __version__
from wflo_prefect.approvals.service import links, rest, slack
from wflo_prefect.approvals.settle import sweep
from wflo_prefect.observability.logging import get_logger

__all__ = ["create_app"]

_log = get_logger("approvals.service")


def create_app(*, sweep_every: float = 10.0) -> FastAPI:
    """The approval service; ``sweep_every`` seconds between sweeps (0 turns them off)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            if sweep_every > 0:
                group.start_soon(_sweep_forever, sweep_every)
            yield
            group.cancel_scope.cancel()

    app = FastAPI(
        title="wflo approvals",
        version=__version__,
        description="Decide wflo approval requests: REST API, Slack interactivity, "
        "signed decision links.",
        lifespan=lifespan,
    )
    app.include_router(rest.router)
    app.include_router(slack.router)
    app.include_router(links.router)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    return app


async def _sweep_forever(every: float) -> None:
    while True:
        await anyio.sleep(every)
        try:
            handled = await anyio.to_thread.run_sync(sweep)
        except Exception as exc:  # keep serving; the next sweep retries
            _log.warning("approval.sweep.failed", error=repr(exc))
            continue
        if handled:
            _log.info("approval.sweep", settled=handled)
