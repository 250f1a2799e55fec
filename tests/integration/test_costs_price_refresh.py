"""Opt-in refresh of genai-prices' data: `wflo costs prices refresh`, the stored copy,
the background refresh, and the bundled data when the setting is off.

genai-prices' data is served by a local HTTP server (genai-prices' own source cannot be
reached from here); the payload is validated by genai-prices' real types.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.genai_prices_server import GenaiPricesServer, provider_payload
from prefect.settings import PREFECT_HOME, temporary_settings
from typer.testing import CliRunner

from wflo_prefect import estimate_cost
from wflo_prefect.cli import app
from wflo_prefect.costs import clear_custom_prices, find_price, price_refresh
from wflo_prefect.testing import capture_logs

runner = CliRunner(env={"COLUMNS": "200"})
ON = "PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH"
URL = "PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH_URL"
BUNDLED_INPUT = Decimal("0.15")  # gpt-4o-mini per million input tokens, genai-prices' bundled data


def input_price() -> Decimal:
    """What a million input tokens of openai/gpt-4o-mini cost now."""
    return estimate_cost("openai", "gpt-4o-mini", input_tokens=1_000_000, output_tokens=0)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A Prefect home of the test's own; nothing loaded, no refresh left running afterwards."""
    clear_custom_prices()
    price_refresh.forget_loaded_prices()
    with temporary_settings({PREFECT_HOME: tmp_path}):
        yield tmp_path
    assert price_refresh.wait_for_background_refresh(30)
    price_refresh.forget_loaded_prices()


@pytest.fixture
def server() -> Iterator[GenaiPricesServer]:
    """genai-prices data at a local URL: gpt-4o-mini at $7 in / $11 out per million tokens."""
    fake = GenaiPricesServer(provider_payload("7", "11"))
    yield fake
    fake.close()


def refresh(url: str) -> tuple[int, str]:
    """Run `wflo costs prices refresh --url URL`; its exit code and output."""
    result = runner.invoke(app, ["costs", "prices", "refresh", "--url", url])
    return result.exit_code, result.output


def test_refreshed_data_prices_calls_when_the_setting_is_on(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `wflo costs prices refresh`, calls are priced exactly from the refreshed data."""
    monkeypatch.setenv(ON, "true")
    code, output = refresh(server.url)
    assert code == 0, output
    stored = home / "wflo" / "genai-prices.json"
    assert stored.read_bytes() == server.body
    assert str(stored) in output
    assert input_price() == Decimal(7)
    output_cost = estimate_cost("openai", "gpt-4o-mini", input_tokens=0, output_tokens=1_000_000)
    assert output_cost == Decimal(11)
    assert find_price("openai", "gpt-4o-mini").refreshed_at is not None
    # A model the refreshed data lacks is still priced from the bundled data.
    haiku = find_price("anthropic", "claude-haiku-4-5")
    assert haiku.source == "genai-prices"
    assert haiku.refreshed_at is None
    shown = runner.invoke(app, ["costs", "prices", "show", "openai", "gpt-4o-mini"])
    assert shown.exit_code == 0, shown.output
    assert "$7/input MTok" in shown.output
    assert "refreshed genai-prices data, fetched" in shown.output
    assert server.requests == 1


def test_bundled_data_prices_calls_when_the_setting_is_off(
    home: Path, server: GenaiPricesServer
) -> None:
    """With the setting off (the default) nothing is fetched and a stored copy is not used."""
    assert input_price() == BUNDLED_INPUT
    time.sleep(0.5)
    assert server.requests == 0
    assert not (home / "wflo").exists()
    code, output = refresh(server.url)
    assert code == 0, output
    assert f"only when {ON}=true" in output
    assert input_price() == BUNDLED_INPUT
    shown = runner.invoke(app, ["costs", "prices", "show", "openai", "gpt-4o-mini"])
    assert "bundled data" in shown.output
    assert "$0.15/input MTok" in shown.output


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>not found</html>", "The data is not JSON"),
        (b'{"providers": []}', "expected a non-empty JSON list of providers, got dict"),
        (b"[]", "expected a non-empty JSON list of providers, got list"),
        (b'[{"id": "openai", "models": []}]', "is not valid genai-prices data: 2 error(s)"),
    ],
)
def test_invalid_data_is_refused_and_the_stored_copy_kept(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch, body: bytes, says: str
) -> None:
    """Data that is not genai-prices data is refused with the URL; the old copy stays in use."""
    monkeypatch.setenv(ON, "true")
    assert refresh(server.url)[0] == 0
    stored = home / "wflo" / "genai-prices.json"
    before = stored.read_bytes()
    server.body = body
    code, output = refresh(server.url)
    assert code == 1
    assert says in output
    assert repr(server.url) in output
    assert "the stored copy was not changed" in output
    assert stored.read_bytes() == before
    assert [p.name for p in stored.parent.iterdir()] == ["genai-prices.json"]  # no temp left
    assert input_price() == Decimal(7)


def test_http_errors_and_bad_urls_are_refused(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP error, an unreachable server or a bad URL give a clear error and change nothing."""
    assert refresh(server.url)[0] == 0
    stored = home / "wflo" / "genai-prices.json"
    before = stored.read_bytes()
    server.status = 500
    code, output = refresh(server.url)
    assert code == 1
    assert "HTTP 500 Internal Server Error" in output
    assert repr(server.url) in output
    unreachable = "http://127.0.0.1:9/data.json"
    code, output = refresh(unreachable)
    assert code == 1
    assert "Could not download genai-prices' data: ConnectError" in output
    code, output = refresh("file:///etc/passwd")
    assert code == 1
    assert "--url must be an http(s) URL" in output
    monkeypatch.setenv(URL, "not a url")
    result = runner.invoke(app, ["costs", "prices", "refresh"])
    assert result.exit_code == 1
    assert f"{URL} must be an http(s) URL" in result.output
    assert stored.read_bytes() == before


def test_missing_copy_is_refreshed_in_the_background_without_blocking_calls(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stored copy: calls go on with the bundled data while one background refresh runs."""
    monkeypatch.setenv(ON, "true")
    monkeypatch.setenv(URL, server.url)
    server.hold = True
    started = time.monotonic()
    for _ in range(50):
        assert input_price() == BUNDLED_INPUT
    assert time.monotonic() - started < 2
    assert server.arrived.wait(10)
    assert not price_refresh.wait_for_background_refresh(0.2)  # still waiting for the server
    server.release.set()
    assert price_refresh.wait_for_background_refresh(10)
    assert input_price() == Decimal(7)
    assert server.requests == 1
    assert (home / "wflo" / "genai-prices.json").read_bytes() == server.body


def test_stale_copy_is_used_while_it_is_refreshed_in_the_background(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy older than the maximum age keeps pricing calls until the refresh replaces it."""
    assert refresh(server.url)[0] == 0
    stored = home / "wflo" / "genai-prices.json"
    two_days_ago = time.time() - 48 * 3600
    os.utime(stored, (two_days_ago, two_days_ago))
    price_refresh.forget_loaded_prices()
    server.body = provider_payload("9", "13")
    monkeypatch.setenv(ON, "true")
    monkeypatch.setenv(URL, server.url)
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH_MAX_AGE_HOURS", "24")
    assert input_price() == Decimal(7)
    assert price_refresh.wait_for_background_refresh(10)
    assert input_price() == Decimal(9)
    assert server.requests == 2


def test_failed_background_refresh_logs_a_warning_and_keeps_the_bundled_data(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A background refresh that fails is a warning in the logs, never an error in the call."""
    monkeypatch.setenv(ON, "true")
    monkeypatch.setenv(URL, server.url)
    server.status = 500
    with capture_logs() as logs:
        assert input_price() == BUNDLED_INPUT
        assert price_refresh.wait_for_background_refresh(10)
    [warning] = [r for r in logs if r.get("message") == "costs.price_refresh_failed"]
    assert warning["level"] == "warning"
    assert "HTTP 500" in warning["error"]
    assert input_price() == BUNDLED_INPUT
    assert not (home / "wflo" / "genai-prices.json").exists()


def test_a_copy_refreshed_by_another_process_is_picked_up(
    home: Path, server: GenaiPricesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wflo costs prices refresh` in another process changes this process's prices soon after."""
    monkeypatch.setenv(ON, "true")
    assert refresh(server.url)[0] == 0
    assert input_price() == Decimal(7)
    server.body = provider_payload("9", "13")
    env = {**os.environ, "PREFECT_HOME": str(home)}
    wflo = [sys.executable, "-c", "from wflo_prefect.cli import main; main()"]
    done = subprocess.run(
        [*wflo, "costs", "prices", "refresh", "--url", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 15
    while input_price() != Decimal(9) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert input_price() == Decimal(9)
