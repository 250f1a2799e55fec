"""The stack's Prefect settings for many concurrent runs: real setting names, overridable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect.settings import Settings
from prefect.settings.models.client import ClientSettings
from prefect.settings.models.server.database import ServerDatabaseSettings, SQLAlchemySettings

from wflo_prefect.stack.spec import SERVER_TUNING, StackSpec


def _default(model: type[Any], name: str) -> float:
    return float(model.model_fields[name].default)


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        if key.startswith("PREFECT_") and key != "PREFECT_HOME":
            monkeypatch.setenv(key, value)
    return Settings()


def test_the_stack_sizes_the_servers_database_pool_and_client_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect reads every tuning variable the stack sets (a misspelt name would be ignored)."""
    for key in SERVER_TUNING:
        monkeypatch.delenv(key, raising=False)
    env = StackSpec(directory=tmp_path).environment()
    settings = _settings_from(env, monkeypatch)
    database = settings.server.database
    assert database.sqlalchemy.pool_size == 20
    assert database.sqlalchemy.max_overflow == 20
    assert database.sqlalchemy.pool_timeout == 120
    assert database.timeout == 60
    assert database.connection_timeout == 30
    assert settings.client.max_retries == 10
    assert settings.api.request_timeout == 180
    # Above Prefect's defaults (5 + 10 connections, 30 s wait, 10 s statements, 5 retries).
    assert database.sqlalchemy.pool_size > _default(SQLAlchemySettings, "pool_size")
    assert database.timeout > _default(ServerDatabaseSettings, "timeout")
    assert settings.client.max_retries > _default(ClientSettings, "max_retries")


def test_a_team_overrides_a_tuning_default_from_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value already in the environment wins over the stack's default."""
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE", "7")
    env = StackSpec(directory=tmp_path).environment()
    assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] == "7"
    assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW"] == "20"
