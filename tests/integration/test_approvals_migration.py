"""Migration 0003 moves a request's settings JSON into typed columns and tables, and back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.engine import create_ledger_engine, upgrade

DECIDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OLD_SETTINGS = {
    "principals": {"alice": {"email": "a@example.com", "slack_id": "UA", "api_key_hashes": []}},
    "allow_self_approval": True,
    "on_timeout": "approve",
    "tiers": [{"approvers": ["carol"], "timeout": 30.0}],
    "code_salt": "salt",
    "correlation": {"flow_run_id": "run-1"},
    "waiter": {
        "wake": "127.0.0.1:4242",
        "pid": 77,
        "host": "box",
        "heartbeat_at": "2026-11-20T11:59:00+00:00",
        "token": "t0k3",
    },
    "mode": "suspend",
    "channels": [["webhook/hook"], [None]],
    "timeout_outcome": "approve",
    "suspend_attempt": 2,
    "closed": True,
    "resumed": True,
    "applied": True,
    "applied_by": "sweep",
    "delivery:0:0": {"ts": "1.2"},
    "delivery:1:0": {"id": "m-9"},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def _alembic(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("wflo_prefect.ledger") / "migrations")
    )
    config.attributes["engine"] = engine
    return config


def test_settings_json_moves_into_columns_and_back(url: str) -> None:
    """A request stored under 0002 keeps every key after 0003, and again after a downgrade."""
    engine = create_ledger_engine(url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO wflo_approval_requests (id, action, details, digest, approvers,"
                    " quorum, status, tier, created_at, decided_at, settings) VALUES (:id,"
                    " 'deploy', '{}', :digest, '[\"alice\"]', 1, 'timed_out', 1, :at, :at,"
                    " :settings)"
                ).bindparams(sa.bindparam("settings", type_=sa.JSON)),
                {"id": "req-1", "digest": "d" * 64, "at": DECIDED, "settings": OLD_SETTINGS},
            )
            # A vote refers to the request (SQLite recreates the table under it).
            conn.execute(
                sa.text(
                    "INSERT INTO wflo_approval_decisions (id, request_id, approver, approved,"
                    " channel, digest, decided_at) VALUES ('v-1', 'req-1', 'alice', true, 'cli',"
                    " :digest, :at)"
                ),
                {"digest": "d" * 64, "at": DECIDED},
            )
        upgrade(engine)
        ledger = Ledger(engine)
        request = ledger.approvals.get("req-1")
        assert request is not None
        assert request.policy.principals["alice"].email == "a@example.com"
        assert request.policy.allow_self_approval is True
        assert request.policy.on_timeout == "approve"
        assert request.policy.tiers[0].approvers == ["carol"]
        assert request.policy.code_salt == "salt"
        assert request.policy.mode == "suspend"
        assert request.policy.channels == [["webhook/hook"], [None]]
        assert request.timeout_outcome == "approve"
        assert request.suspend_attempt == 2
        assert request.closed_at == request.resumed_at == request.applied_at == DECIDED
        assert request.applied_by == "sweep"
        waiter = ledger.approvals.waiter("req-1")
        assert waiter is not None
        assert (waiter.wake, waiter.pid, waiter.host, waiter.token) == (
            "127.0.0.1:4242",
            77,
            "box",
            "t0k3",
        )
        assert waiter.heartbeat_at == datetime(2026, 11, 20, 11, 59, tzinfo=UTC)
        assert ledger.approvals.deliveries("req-1") == {
            (0, 0): {"ts": "1.2"},
            (1, 0): {"id": "m-9"},
        }
        assert ledger.approvals.unapplied() == []
        assert [v.approver for v in ledger.approvals.votes("req-1")] == ["alice"]

        command.downgrade(_alembic(engine), "0002")
        with engine.connect() as conn:
            raw = conn.execute(
                sa.select(sa.column("settings", sa.JSON)).select_from(
                    sa.table("wflo_approval_requests")
                )
            ).scalar_one()
        assert raw == OLD_SETTINGS
    finally:
        engine.dispose()
