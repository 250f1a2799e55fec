"""wflo's log lines are safe to ship: secrets and configured personal data are replaced."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from wflo_prefect import governed_flow
from wflo_prefect.errors import ConfigurationError
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability.logging import ROOT_LOGGER, configure_logging, get_logger
from wflo_prefect.observability.scrub import REDACTED, Scrubber, register_secret
from wflo_prefect.testing import capture_logs

OPENAI_KEY = "sk-proj-Abc123def456GHI789jkl012MNO345pqr"
ANTHROPIC_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_xyz"
LINK_TOKEN = (
    "eyJyIjoiNmQ1YSIsImEiOiJhbGljZSIsImQiOjEsImgiOiJhYmMiLCJlIjoxNzAwMDAwMDAwfQ"
    ".Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seTAxMjM0NTY3OA"
)

SECRETS = {
    "openai key": (f"calling with {OPENAI_KEY}", OPENAI_KEY),
    "anthropic key": (f"key={ANTHROPIC_KEY} failed", ANTHROPIC_KEY),
    "google key": (
        "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    ),
    "slack bot token": ("token xoxb-1234567890-0987654321-AbCdEfGhIj", "xoxb-1234567890"),
    "bearer token": ("Authorization: Bearer abc.def-123_456~789", "abc.def-123_456~789"),
    "basic credentials": ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    "url password": ("postgresql+psycopg://wflo:hunter2hunter@db:5432/wflo", "hunter2hunter"),
    "signed query": (
        "https://hooks.example/x?id=1&sig=9f8e7d6c5b4a39281706",
        "9f8e7d6c5b4a39281706",
    ),
    "approval link signature": (
        f"open https://approvals.example/links/{LINK_TOKEN}",
        "Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seTAxMjM0NTY3OA",
    ),
    "jwt signature": (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "aws key id": ("AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"),
}

PII = {
    "email": ("approver alice.smith+ops@example.co.uk said no", "alice.smith+ops@example.co.uk"),
    "phone": ("call +44 20 7946 0958 or (415) 555-2671", "7946 0958"),
    "card": ("paid with 4111 1111 1111 1111 today", "4111 1111 1111 1111"),
}


@pytest.fixture
def fresh_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Reconfigure wflo's logging from the environment after the test."""
    logger = logging.getLogger(ROOT_LOGGER)
    saved = list(logger.handlers)
    yield monkeypatch
    monkeypatch.undo()
    logger.handlers[:] = saved
    configure_logging(force=True)


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_every_secret_type_is_scrubbed_from_log_lines(kind: str) -> None:
    """Each kind of secret in a message or field never reaches a handler."""
    text, secret = SECRETS[kind]
    with capture_logs() as lines:
        get_logger("test").info(text, detail={"nested": [text]})
    dumped = json.dumps(lines)
    assert secret not in dumped
    assert REDACTED in lines[0]["message"]


@pytest.mark.parametrize("kind", sorted(PII))
def test_configured_personal_data_is_scrubbed(kind: str) -> None:
    """E-mail addresses, phone numbers and card numbers are replaced by default."""
    text, datum = PII[kind]
    with capture_logs() as lines:
        get_logger("test").info("event", note=text)
    assert datum not in lines[0]["note"]
    assert lines[0]["note"] != text


def test_secret_values_and_secret_keys_are_replaced() -> None:
    """A SecretStr, a field named like a secret, and a registered value are never printed."""
    register_secret("shaped-like-nothing-0001")
    with capture_logs() as lines:
        get_logger("test").info(
            "sent",
            credentials=SecretStr("plain-secret-value-1"),
            signing_secret="f00dfeedcafebeef",
            note="the value shaped-like-nothing-0001 leaked",
            input_tokens=120,
        )
    line = lines[0]
    assert line["credentials"] == REDACTED
    assert line["signing_secret"] == REDACTED
    assert "shaped-like-nothing-0001" not in line["note"]
    assert line["input_tokens"] == 120


def test_secrets_from_the_environment_are_replaced(fresh_logging: pytest.MonkeyPatch) -> None:
    """A key held in *_API_KEY or the approval link secret is replaced, whatever its shape."""
    fresh_logging.setenv("COHERE_API_KEY", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2")
    fresh_logging.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_LINK_SECRET", "link-secret-xyz-42")
    configure_logging(force=True)
    with capture_logs() as lines:
        get_logger("test").info("oops Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2 and link-secret-xyz-42")
    assert "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2" not in lines[0]["message"]
    assert "link-secret-xyz-42" not in lines[0]["message"]


def test_exception_text_is_scrubbed() -> None:
    """A traceback whose message carries a key is scrubbed too."""
    with capture_logs() as lines:
        try:
            raise RuntimeError(f"401 for {OPENAI_KEY}")
        except RuntimeError:
            get_logger("test").exception("call.failed")
    assert OPENAI_KEY not in lines[0]["exception"]


def test_pii_can_be_kept_and_patterns_added(fresh_logging: pytest.MonkeyPatch) -> None:
    """LOG_REDACT_PII=[] keeps e-mails; LOG_REDACT_PATTERNS adds the team's own patterns."""
    fresh_logging.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_REDACT_PII", "[]")
    fresh_logging.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_REDACT_PATTERNS", r'["ACME-\\d{6}"]')
    configure_logging(force=True)
    with capture_logs() as lines:
        get_logger("test").info("event", note="bob@example.com ACME-123456")
    assert lines[0]["note"] == f"bob@example.com {REDACTED}"


def test_a_bad_redaction_pattern_is_a_configuration_error() -> None:
    """An invalid regular expression is refused, naming the pattern."""
    with pytest.raises(ConfigurationError, match=r"ACME-\("):
        Scrubber(patterns=["ACME-("])


def test_numbers_that_are_not_personal_data_are_kept() -> None:
    """Ids, timestamps, costs and non-Luhn digit runs are not mistaken for PII."""
    scrubber = Scrubber()
    for text in (
        "2026-01-15T10:30:45.123Z",
        "6d5a0c1e-42b1-4f3e-9a7b-1c2d3e4f5a6b",
        "cost 0.0041234567890123",
        "1732857142123 ms",
        "order 4111 1111 1111 1112",
    ):
        assert scrubber.text(text) == text


def test_console_log_format_prints_text_not_json(
    fresh_logging: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ledger: Ledger
) -> None:
    """LOG_FORMAT=console prints aligned text lines on stderr; json prints JSON objects."""
    fresh_logging.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_TO_STDERR", "true")
    fresh_logging.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_FORMAT", "console")
    configure_logging(force=True)

    @governed_flow(name="console-format")
    def talk() -> int:
        return 1

    talk()
    err = [x for x in capsys.readouterr().err.splitlines() if "flow_run.started" in x]
    assert err
    assert not err[0].lstrip().startswith("{")
    assert "[info     ] flow_run.started" in err[0]
    assert "name=console-format" in err[0]

    fresh_logging.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_FORMAT", "json")
    configure_logging(force=True)
    talk()
    err = [x for x in capsys.readouterr().err.splitlines() if "flow_run.started" in x]
    assert json.loads(err[0])["message"] == "flow_run.started"
