"""The docs say what the code does: every setting and CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import typer

from wflo_prefect.cli import app
from wflo_prefect.settings import WfloSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_on_the_settings_page() -> None:
    """Each WfloSettings field appears on docs/settings.md with its variable name."""
    page = (DOCS / "settings.md").read_text()
    for name in WfloSettings.model_fields:
        assert f"PREFECT_INTEGRATIONS_WFLO_{name.upper()}" in page, name


def test_every_cost_setting_is_in_the_cost_settings_table() -> None:
    """Each CostSettings field is in the settings table of docs/costs.md."""
    from wflo_prefect.costs.settings import CostSettings

    page = (DOCS / "costs.md").read_text()
    table = page[page.index("## Settings") :]
    for name in CostSettings.model_fields:
        assert f"`PREFECT_INTEGRATIONS_WFLO_COSTS_{name.upper()}`" in table, name


def _commands(typer_app: typer.Typer, prefix: str = "wflo") -> list[str]:
    names = [f"{prefix} {c.name or c.callback.__name__}" for c in typer_app.registered_commands]  # type: ignore[union-attr]
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        names += _commands(group.typer_instance, f"{prefix} {group.name}")
    return names


def test_every_cli_command_is_on_the_cli_page() -> None:
    """Each `wflo` command and sub-command is documented on docs/cli.md."""
    page = (DOCS / "cli.md").read_text()
    missing = [c for c in _commands(app) if f"`{c}" not in page]
    assert not missing, missing
