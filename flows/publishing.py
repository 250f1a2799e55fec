"""Publishing a brief (a directory standing in for a CMS), and its compensation.

A module of its own so the compensation is importable by any process that runs
``wflo compensate`` (a handler defined in a script run as ``__main__`` is not).
"""

from __future__ import annotations

import os
from pathlib import Path

from wflo_prefect import governed_task


def site() -> Path:
    """Where briefs are published (``WFLO_DEMO_SITE``, default under .prefect-demo/)."""
    return Path(os.environ.get("WFLO_DEMO_SITE", ".prefect-demo/work/site"))


def unpublish_brief(slug: str) -> None:
    """Compensation of ``publish_brief``: take the brief down again."""
    (site() / f"{slug}.md").unlink(missing_ok=True)


@governed_task(operation="publish", compensate=unpublish_brief)
async def publish_brief(slug: str, title: str, body: str) -> str:
    """Publish the brief (write it to the site); returns its address."""
    page = site() / f"{slug}.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"# {title}\n\n{body}\n")
    return str(page)
