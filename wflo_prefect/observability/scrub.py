"""Scrubbing secrets and personal data out of log lines and span attributes.

What is replaced, in every string value (nested in dicts, lists and tuples too):

- ``SecretStr`` / ``SecretBytes`` values, whatever their key;
- the value of keys that name a secret (``api_key``, ``token``, ``password``,
  ``secret``, ``authorization``, ``cookie`` ...);
- provider API keys (``sk-...``, ``sk-ant-...``, Google ``AIza...``, Slack
  ``xox?-...``, AWS ``AKIA...``), ``Bearer`` / ``Basic`` credentials, passwords in
  URLs (``scheme://user:PASSWORD@host``), signatures and tokens in query strings
  (``?sig=``, ``&token=`` ...), the signature of JWTs and of wflo's approval links;
- every value registered with :func:`register_secret`, and, when logging is
  configured, the values of environment variables whose names end in ``_KEY``,
  ``_TOKEN``, ``_SECRET`` or ``_PASSWORD`` (so a key read from ``OPENAI_API_KEY``
  or the approval link secret is never printed, whatever its shape);
- the personal data kinds configured in ``PREFECT_INTEGRATIONS_WFLO_LOG_REDACT_PII``
  (``email``, ``phone``, ``card``: card numbers pass the Luhn check first) and
  the extra patterns of ``PREFECT_INTEGRATIONS_WFLO_LOG_REDACT_PATTERNS``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from pydantic import SecretBytes, SecretStr

from wflo_prefect.errors import ConfigurationError

__all__ = [
    "PII_KINDS",
    "REDACTED",
    "Scrubber",
    "default_scrubber",
    "register_secret",
    "scrub_processor",
    "set_default_scrubber",
]

REDACTED = "[REDACTED]"
PII_KINDS = ("email", "phone", "card")
_MIN_SECRET = 8

_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_\-.])(?:api_?key|apikey|secret|password|passwd|authorization|cookie|"
    r"token|access_token|refresh_token|private_key|client_secret|signing_secret|"
    r"routing_key|credentials?)$"
)
_SECRET_ENV = re.compile(r"(?i)_(?:KEY|TOKEN|SECRET|PASSWORD)$")

# (pattern, replacement) pairs applied in order.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Passwords in URLs, before anything else reads the user part as an e-mail.
    (re.compile(r"(\b[a-zA-Z][\w+.\-]*://[^\s:/@]+:)[^\s@/]+@"), rf"\1{REDACTED}@"),
    # Signatures and tokens in query strings (signed URLs, webhooks).
    (
        re.compile(
            r"(?i)([?&](?:sig|signature|x-amz-signature|token|access_token|api_key|apikey|"
            r"key|code)=)[^&\s#\"']+"
        ),
        rf"\1{REDACTED}",
    ),
    # JWTs and wflo's approval-link tokens (base64url JSON body, then a signature).
    (
        re.compile(r"\b(eyJ[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]+)?)\.[A-Za-z0-9_\-]{16,}"),
        rf"\1.{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), rf"\1 {REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), REDACTED),  # OpenAI, Anthropic (sk-ant-)
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), REDACTED),  # Google
    (re.compile(r"\bxox[abposre]-[0-9A-Za-z\-]{10,}"), REDACTED),  # Slack
    (re.compile(r"\bxapp-[0-9A-Za-z\-]{10,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),  # AWS access key ids
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{2,4}(?:[\s.\-]?\d{2,4}){1,4}(?!\w)"
    r"|(?<!\w)\(?\d{3}\)?[\s.\-]\d{3}[\s.\-]\d{4}(?!\w)"
)
_CARD = re.compile(r"(?<![\d.])[2-6](?:[ \-]?\d){12,18}(?![\d.])")


# Fields wflo fills itself with ids, levels and timestamps: a value of that shape
# cannot hold a secret, so it skips the patterns (they are on every log line).
_GENERATED_FIELDS = frozenset(
    {
        "flow_run_id",
        "task_run_id",
        "trace_id",
        "span_id",
        "deployment_id",
        "request_id",
        "sandbox_id",
        "level",
        "logger",
        "timestamp",
    }
)
_GENERATED_SHAPE = re.compile(r"[0-9a-fA-F\-]{1,40}|[a-z_.]{1,64}|[0-9T:.+\-Z]{1,40}")
_CACHE_SIZE = 2048
_CACHE_MAX_LEN = 256


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if _luhn(digits) else match.group(0)


class Scrubber:
    """Replaces secrets and the configured personal data in strings and structures."""

    def __init__(
        self,
        *,
        pii: Iterable[str] = PII_KINDS,
        patterns: Iterable[str] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        kinds = tuple(pii)
        unknown = sorted(set(kinds) - set(PII_KINDS))
        if unknown:
            raise ConfigurationError(
                "Unknown personal-data kind to redact",
                value=unknown,
                hint=f"use some of {', '.join(PII_KINDS)}",
                docs="observability.md#logs",
            )
        self._pii = kinds
        self._patterns: list[re.Pattern[str]] = []
        for pattern in patterns:
            try:
                self._patterns.append(re.compile(pattern))
            except re.error as exc:
                raise ConfigurationError(
                    f"A redaction pattern is not a valid regular expression ({exc})",
                    value=pattern,
                    hint="fix PREFECT_INTEGRATIONS_WFLO_LOG_REDACT_PATTERNS (Python `re` syntax)",
                    docs="observability.md#logs",
                ) from exc
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        # Short values repeat (event names, task names, states): scrub each once.
        self._cache: dict[str, str] = {}
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str | SecretStr) -> None:
        """Also replace this exact value (values shorter than 8 characters are ignored)."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if len(text) < _MIN_SECRET:
            return
        with self._lock:
            if text in self._secrets:
                return
            self._secrets.add(text)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))
            self._cache = {}

    def text(self, value: str) -> str:
        """``value`` with every secret and configured personal datum replaced."""
        cache = self._cache
        done = cache.get(value)
        if done is not None:
            return done
        scrubbed = self._scrub(value)
        if len(value) <= _CACHE_MAX_LEN:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[value] = scrubbed
        return scrubbed

    def _scrub(self, value: str) -> str:
        known = self._secret_re
        if known is not None:
            value = known.sub(REDACTED, value)
        for pattern, replacement in _SECRET_PATTERNS:
            value = pattern.sub(replacement, value)
        if "email" in self._pii:
            value = _EMAIL.sub("[EMAIL]", value)
        if "card" in self._pii:
            value = _CARD.sub(_card, value)
        if "phone" in self._pii:
            value = _PHONE.sub("[PHONE]", value)
        for pattern in self._patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def value(self, value: Any, key: str | None = None) -> Any:
        """A scrubbed copy of ``value`` (strings, secrets, mappings, lists, tuples)."""
        if isinstance(value, SecretStr | SecretBytes):
            return REDACTED
        if isinstance(value, str):
            if key is not None and value and _SECRET_KEY.search(key):
                return REDACTED
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v, key) for v in value)
        return value

    def event(self, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Scrub a structlog event dict in place (and return it)."""
        for key, item in list(event.items()):
            if (
                key in _GENERATED_FIELDS
                and isinstance(item, str)
                and _GENERATED_SHAPE.fullmatch(item)
            ):
                continue
            event[key] = self.value(item, key)
        return event


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables named like secrets (``*_KEY``, ``*_TOKEN`` ...)."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= _MIN_SECRET]


_default = Scrubber()
_registered: list[str] = []


def default_scrubber() -> Scrubber:
    """The scrubber wflo's logs and exported spans go through."""
    return _default


def set_default_scrubber(scrubber: Scrubber) -> None:
    """Replace the default scrubber, keeping values given to :func:`register_secret`."""
    global _default
    for value in _registered:
        scrubber.add_secret(value)
    _default = scrubber


def register_secret(value: str | SecretStr) -> None:
    """Never print this value in wflo's logs or exported spans (e.g. a block's token)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    _registered.append(text)
    _default.add_secret(text)


def scrub_processor(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub the event with :func:`default_scrubber`."""
    return _default.event(event)
