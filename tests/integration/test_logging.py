"""wflo's log handlers: one path into Prefect's run logs, the configured level honoured."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prefect.logging.handlers import APILogHandler

from wflo_prefect import governed_flow
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability.logging import ROOT_LOGGER, configure_logging
from wflo_prefect.testing import capture_logs


@pytest.fixture
def restore_logging() -> Iterator[logging.Logger]:
    """Reconfigure wflo's logger from the environment after the test."""
    logger = logging.getLogger(ROOT_LOGGER)
    saved = list(logger.handlers)
    yield logger
    logger.handlers[:] = saved
    configure_logging(force=True)


def test_extra_loggers_setting_does_not_duplicate_run_logs(
    restore_logging: logging.Logger,
) -> None:
    """If Prefect already attached its API handler (EXTRA_LOGGERS), wflo adds no second one."""
    logger = restore_logging
    logger.handlers[:] = [APILogHandler()]
    configure_logging(force=True)
    assert sum(isinstance(h, APILogHandler) for h in logger.handlers) == 1


def test_configured_level_filters_lines(
    restore_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """With LOG_LEVEL=WARNING, wflo's INFO lines are not emitted."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_LEVEL", "WARNING")
    configure_logging(force=True)

    @governed_flow
    def quiet() -> int:
        return 1

    with capture_logs() as lines:
        quiet()
    assert lines == []
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_LEVEL", "INFO")
    configure_logging(force=True)
    with capture_logs() as lines:
        quiet()
    assert [line["message"] for line in lines] == ["flow_run.started", "flow_run.completed"]


def test_stderr_output_is_json(
    restore_logging: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ledger: Ledger,
) -> None:
    """With LOG_TO_STDERR, each wflo line on stderr is one JSON object with the run id."""
    import json

    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_TO_STDERR", "true")
    configure_logging(force=True)

    @governed_flow
    def loud() -> int:
        return 1

    state = loud(return_state=True)
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert {line["flow_run_id"] for line in lines} == {str(state.state_details.flow_run_id)}
    assert [line["message"] for line in lines] == ["flow_run.started", "flow_run.completed"]
