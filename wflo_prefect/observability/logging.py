"""Structured JSON logs that carry run and trace ids, and reach Prefect's run logs.

wflo logs through structlog without touching the application's own structlog
configuration: its loggers are wrapped stdlib loggers under ``wflo_prefect``,
rendered as one JSON object per line with ``flow_run_id``, ``task_run_id``,
``trace_id`` and ``span_id`` added. A handler forwards them to the Prefect API
while a run is active (so they show in the run's logs in the UI), and, with
``PREFECT_INTEGRATIONS_WFLO_LOG_TO_STDERR=true``, a second one prints them, as
JSON or, with ``PREFECT_INTEGRATIONS_WFLO_LOG_FORMAT=console``, as aligned text.
In Prefect's run logs an event with an entry in ``RUN_LOG_MESSAGES`` (see
:func:`register_run_log_message`) reads as a sentence; the JSON keeps every field.

Every line goes through :mod:`~wflo_prefect.observability.scrub` first: secrets
and the configured personal data never reach a handler.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog
from prefect.context import FlowRunContext, TaskRunContext

from wflo_prefect._prefect_compat import APILogHandler
from wflo_prefect.observability.correlation import current_correlation
from wflo_prefect.observability.scrub import (
    Scrubber,
    scrub_processor,
    secrets_from_environment,
    set_default_scrubber,
)
from wflo_prefect.settings import get_settings

__all__ = ["ROOT_LOGGER", "ConsoleFormatter", "configure_logging", "get_logger"]

ROOT_LOGGER = "wflo_prefect"
_configured = False
_lock = threading.Lock()


def _add_correlation(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in current_correlation().as_dict().items():
        event.setdefault(key, value)
    return event


_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,  # a disabled level costs nothing further
    structlog.contextvars.merge_contextvars,
    _add_correlation,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    structlog.processors.format_exc_info,
    scrub_processor,
    structlog.processors.EventRenamer("message"),
    structlog.processors.JSONRenderer(sort_keys=False, default=str),
]


class _InRunFilter(logging.Filter):
    """Pass only records made inside a Prefect flow or task run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return TaskRunContext.get() is not None or FlowRunContext.get() is not None


RunLogMessage = Callable[[Mapping[str, Any]], str]

# The sentence shown in Prefect's run logs per event: a str.format template over
# the event's fields (a missing field reads "?"), or a function of them.
RUN_LOG_MESSAGES: dict[str, str | RunLogMessage] = {
    "budget.refused": "Budget {budget} refused a call of ${attempted_usd}: ${spent_usd} spent "
    "and ${reserved_usd} reserved of ${limit_usd}; the call was not sent",
    "budget.threshold": "Budget {budget} passed {threshold} of its limit: ${spent_usd} "
    "spent of ${limit_usd}",
    "budget.exceeded": "Budget {budget} exceeded: ${spent_usd} spent of ${limit_usd} "
    "(on_exceeded={on_exceeded})",
    "budget.scope_unknown": "Budget {budget} does not apply here: its {scope} scope is "
    "unknown ({hint})",
    "budget.holds_expired": "{count} budget holds older than {older_than_s} s were released",
    "llm.call": "LLM call to {provider} {model}: {input_tokens} input and {output_tokens} "
    "output tokens, ${cost_usd}",
    "costs.usage_unknown": "LLM call to {provider} {model} reported no usage: charged the "
    "reserved worst case, ${charged_usd}",
    "policy.matched": "Policy {policy} matched at {point} of {name}",
    "sandbox.created": "Sandbox {sandbox_id} ready in {seconds:.2f} s ({runtime} runtime)",
    "sandbox.run": "Sandbox {sandbox_id} ran `{command}` in {image}: {outcome}, exit code "
    "{exit_code} after {duration_s:.2f} s",
    "compensation.attempt_failed": "Compensation {name} failed: {error}",
    "flow_run.compensated": "The failed run's compensations ran: {done} done, {failed} failed",
}


def register_run_log_message(event: str, message: str | RunLogMessage) -> None:
    """Set the sentence Prefect's run logs show for ``event`` (a template or a function)."""
    RUN_LOG_MESSAGES[event] = message


class _Unknown(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        return _Placeholder()


class _Placeholder:
    def __format__(self, spec: str) -> str:
        return "?"


def run_log_text(fields: Mapping[str, Any]) -> str | None:
    """The sentence for one event's fields, or None when it has none."""
    message = RUN_LOG_MESSAGES.get(str(fields.get("message")))
    if message is None:
        return None
    if callable(message):
        return message(fields)
    return message.format_map(_Unknown(fields))


class _RunLogFormatter(logging.Formatter):
    """wflo's JSON lines as sentences (for Prefect's run logs); other lines unchanged."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not text.startswith("{"):
            return text
        try:
            fields = json.loads(text)
            sentence = run_log_text(fields) if isinstance(fields, dict) else None
        except Exception:  # a bad template must never lose the line
            return text
        return sentence or text


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, limited to records made inside a run."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_InRunFilter())
        self.setFormatter(_RunLogFormatter())


class ConsoleFormatter(logging.Formatter):
    """Renders wflo's JSON lines as structlog's aligned console text (no colours)."""

    def __init__(self) -> None:
        super().__init__()
        self._render = structlog.dev.ConsoleRenderer(colors=False, event_key="message")

    def format(self, record: logging.LogRecord) -> str:
        """The record's JSON message as console text; other messages unchanged."""
        message = record.getMessage()
        try:
            event = json.loads(message)
        except ValueError:
            return message
        if not isinstance(event, dict):
            return message
        return str(self._render(None, record.levelname.lower(), event))


def _scrubber_from_settings(settings: Any) -> Scrubber:
    secrets = secrets_from_environment()
    if settings.ledger_url is not None:
        secrets.append(settings.ledger_url.get_secret_value())
    return Scrubber(
        pii=settings.log_redact_pii, patterns=settings.log_redact_patterns, secrets=secrets
    )


def configure_logging(*, force: bool = False) -> None:
    """Attach wflo's handlers to the ``wflo_prefect`` logger (once per process)."""
    global _configured
    if _configured and not force:
        return
    with _lock:
        if _configured and not force:
            return
        settings = get_settings()
        set_default_scrubber(_scrubber_from_settings(settings))
        root = logging.getLogger(ROOT_LOGGER)
        root.setLevel(settings.log_level)
        root.propagate = False
        for handler in list(root.handlers):
            if getattr(handler, "_wflo_owned", False):
                root.removeHandler(handler)
        # PREFECT_LOGGING_EXTRA_LOGGERS may already have attached Prefect's handler.
        if not any(isinstance(h, APILogHandler) for h in root.handlers):
            run_handler = RunLogHandler()
            run_handler._wflo_owned = True  # type: ignore[attr-defined]
            root.addHandler(run_handler)
        if settings.log_to_stderr:
            stream = logging.StreamHandler(sys.stderr)
            stream.setFormatter(
                ConsoleFormatter()
                if settings.log_format == "console"
                else logging.Formatter("%(message)s")
            )
            stream._wflo_owned = True  # type: ignore[attr-defined]
            root.addHandler(stream)
        _configured = True


def get_logger(name: str = "") -> structlog.stdlib.BoundLogger:
    """A structlog logger for ``wflo_prefect.<name>``."""
    configure_logging()
    stdlib = logging.getLogger(f"{ROOT_LOGGER}.{name}" if name else ROOT_LOGGER)
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        stdlib,
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return logger
