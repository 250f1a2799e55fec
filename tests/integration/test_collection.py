"""Prefect discovers wflo-prefect through the ``prefect.collections`` entry point."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from prefect.plugins import load_prefect_collections

from wflo_prefect import _collection


def test_entry_point_is_declared() -> None:
    """The distribution declares ``wflo_prefect._collection`` under prefect.collections."""
    names = {ep.name: ep.value for ep in entry_points(group="prefect.collections")}
    assert names.get("wflo_prefect") == "wflo_prefect._collection"


def test_prefect_loads_the_package_as_a_collection() -> None:
    """Prefect's own collection loader imports the collection module without error."""
    loaded = load_prefect_collections(reload=True)
    assert loaded["wflo_prefect"] is _collection


def test_loading_the_collection_registers_blocks_and_the_worker_type() -> None:
    """In a fresh process, Prefect's loader alone makes wflo's blocks and worker type known."""
    script = (
        "from prefect.plugins import load_prefect_collections\n"
        "from prefect.blocks.core import Block\n"
        "from prefect.workers.base import BaseWorker\n"
        "load_prefect_collections()\n"
        "from prefect.utilities.dispatch import lookup_type\n"
        "for slug in ('wflo-budget', 'wflo-custom-price', 'wflo-approvers',"
        " 'wflo-slack-approval-channel'):\n"
        "    lookup_type(Block, slug)\n"
        "print(lookup_type(BaseWorker, 'docker-sandbox').__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "DockerSandboxWorker"
