"""Prefect discovers wflo-prefect through the ``prefect.collections`` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

from prefect.plugins import load_prefect_collections

import wflo_prefect


def test_entry_point_is_declared() -> None:
    """The installed distribution declares ``wflo_prefect`` under prefect.collections."""
    names = {ep.name: ep.value for ep in entry_points(group="prefect.collections")}
    assert names.get("wflo_prefect") == "wflo_prefect"


def test_prefect_loads_the_package_as_a_collection() -> None:
    """Prefect's own collection loader imports the package without error."""
    loaded = load_prefect_collections(reload=True)
    assert loaded["wflo_prefect"] is wflo_prefect
