"""Settings come through Prefect's settings machinery (PREFECT_INTEGRATIONS_WFLO_*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wflo_prefect.errors import ConfigurationError
from wflo_prefect.settings import WfloSettings


def test_environment_variable_sets_a_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """PREFECT_INTEGRATIONS_WFLO_<FIELD> sets the field."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_SANDBOX_IMAGE", "custom:1")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_LEVEL", "DEBUG")
    settings = WfloSettings()
    assert settings.sandbox_image == "custom:1"
    assert settings.log_level == "DEBUG"


def test_embedded_default_ledger_is_sqlite_under_prefect_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no ledger URL the ledger is a SQLite file under the Prefect home."""
    from prefect.settings import PREFECT_HOME, temporary_settings

    monkeypatch.delenv("PREFECT_INTEGRATIONS_WFLO_LEDGER_URL", raising=False)
    with temporary_settings({PREFECT_HOME: tmp_path}):
        url = WfloSettings().ledger_url_value()
    assert url == f"sqlite:///{tmp_path / 'wflo' / 'ledger.db'}"


def test_ledger_url_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger URL (it may hold a password) is not shown in the settings' repr."""
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_LEDGER_URL", "postgresql+psycopg://u:hunter2@db/x"
    )
    settings = WfloSettings()
    assert "hunter2" not in repr(settings)
    assert settings.ledger_url_value().endswith("u:hunter2@db/x")


def test_prefect_toml_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A ``[integrations.wflo]`` table in prefect.toml configures wflo."""
    (tmp_path / "prefect.toml").write_text('[integrations.wflo]\nsandbox_image = "from-toml:2"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_INTEGRATIONS_WFLO_SANDBOX_IMAGE", raising=False)
    assert WfloSettings().sandbox_image == "from-toml:2"


def test_invalid_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value is a ConfigurationError naming the field and its environment variable."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_METRICS_PORT", "70000")
    with pytest.raises(ConfigurationError, match="metrics_port") as caught:
        WfloSettings()
    assert "PREFECT_INTEGRATIONS_WFLO_METRICS_PORT" in str(caught.value)
