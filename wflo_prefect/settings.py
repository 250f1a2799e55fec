"""Typed settings, read through Prefect's own settings machinery.

Every field is an environment variable ``PREFECT_INTEGRATIONS_WFLO_<FIELD>``, a
key under ``[integrations.wflo]`` in ``prefect.toml``, or under
``[tool.prefect.integrations.wflo]`` in ``pyproject.toml``. The defaults work on a
laptop: an embedded SQLite ledger under the Prefect home, JSON logs, no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from prefect.settings import get_current_settings
from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field, SecretStr

from wflo_prefect._validation import ValidatedModel
from wflo_prefect.errors import ConfigurationError, WfloError

__all__ = ["WfloSettings", "get_settings"]


class WfloSettings(ValidatedModel, PrefectBaseSettings):
    """Settings of wflo-prefect (``PREFECT_INTEGRATIONS_WFLO_*``)."""

    wflo_docs: ClassVar[str | None] = "settings.md"
    wflo_error: ClassVar[type[WfloError]] = ConfigurationError
    wflo_hints: ClassVar[dict[str, str]] = {}  # one per field, set below the class

    model_config = build_settings_config(("integrations", "wflo"))

    ledger_url: SecretStr | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the governance ledger. Empty means an embedded SQLite "
            "file at `<PREFECT_HOME>/wflo/ledger.db`. Teams use PostgreSQL, e.g. "
            "`postgresql+psycopg://user:pass@db:5432/wflo`."
        ),
        examples=["postgresql+psycopg://wflo:secret@db.internal:5432/wflo"],
    )
    ledger_auto_migrate: bool = Field(
        default=True,
        description="Apply the ledger's migrations automatically on first use.",
    )
    ledger_pool_size: int = Field(
        default=5,
        ge=1,
        description="Connections kept open per process for a PostgreSQL ledger.",
    )
    log_format: Literal["json", "console"] = Field(
        default="json",
        description=(
            "How wflo's structured log lines are rendered on stderr: `json` (one object "
            "per line) or `console` (aligned text for people). Prefect's run logs always "
            "get JSON."
        ),
    )
    log_redact_pii: list[Literal["email", "phone", "card"]] = Field(
        default=["email", "phone", "card"],
        description=(
            "Personal data replaced in log lines and exported span attributes (a JSON "
            "list; `[]` keeps it). Secrets are always replaced."
        ),
        examples=[["email", "card"]],
    )
    log_redact_patterns: list[str] = Field(
        default=[],
        description=(
            "More regular expressions (Python `re`) whose matches are replaced in log "
            "lines and exported span attributes, as a JSON list."
        ),
        examples=[[r"ACME-\d{6}"]],
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="Level of the `wflo_prefect` logger.",
    )
    log_to_stderr: bool = Field(
        default=False,
        description=(
            "Also print wflo's JSON lines on stderr. They always reach Prefect's run "
            "logs inside a run."
        ),
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Serve Prometheus metrics on this port; empty: off. The first process on a "
            "host takes it; later ones log `metrics.port_unavailable` and go on (with "
            "`PROMETHEUS_MULTIPROC_DIR` set, the holder exports their values too)."
        ),
    )
    metrics_ledger: bool = Field(
        default=True,
        description=(
            "Add gauges read from the ledger at scrape time (budget use, approvals past "
            "their deadline, compensations by status) to the served metrics."
        ),
    )
    tracing_exporter: Literal["none", "console", "otlp_http", "otlp_grpc"] | None = Field(
        default=None,
        description=(
            "Where wflo's spans go when the application installed no tracer provider: "
            "`otlp_http`, `otlp_grpc`, `console` or `none`. Empty: the standard "
            "`OTEL_TRACES_EXPORTER` (`otlp`, with `OTEL_EXPORTER_OTLP_PROTOCOL`) or none."
        ),
    )
    tracing_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP endpoint, e.g. `http://collector:4318/v1/traces` (HTTP) or "
            "`http://collector:4317` (gRPC). Empty: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / "
            "`OTEL_EXPORTER_OTLP_ENDPOINT`."
        ),
        examples=["http://otel-collector:4318/v1/traces"],
    )
    tracing_headers: SecretStr | None = Field(
        default=None,
        description=(
            "Headers sent with each export, `key=value,key2=value2` (e.g. an API key). "
            "Empty: `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS`."
        ),
    )
    tracing_ledger: bool = Field(
        default=False,
        description=(
            "Also store wflo's spans in the ledger (`wflo_spans`), for `wflo trace RUN_ID` "
            "without a tracing backend. Applies to the provider wflo builds itself."
        ),
    )
    tracing_sample_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Fraction of new traces recorded (a run inside a sampled trace follows its "
            "parent). Empty: `OTEL_TRACES_SAMPLER_ARG`, else 1."
        ),
    )
    docker_host: str | None = Field(
        default=None,
        description=(
            "Docker engine URL; empty means the `DOCKER_HOST` environment or the local socket."
        ),
        examples=["unix:///var/run/docker.sock"],
    )
    sandbox_image: str = Field(
        default="wflo-sandbox:latest",
        description="Image the sandbox runs code in (built by `wflo sandbox build-image`).",
    )

    def ledger_url_value(self) -> str:
        """The ledger's URL, resolving the embedded default under the Prefect home."""
        if self.ledger_url is not None and self.ledger_url.get_secret_value():
            return self.ledger_url.get_secret_value()
        home = Path(get_current_settings().home).expanduser()
        return f"sqlite:///{home / 'wflo' / 'ledger.db'}"


def get_settings() -> WfloSettings:
    """Read the settings now (environment, profile and toml files)."""
    return WfloSettings()


WfloSettings.wflo_hints = {
    name: f"Set PREFECT_INTEGRATIONS_WFLO_{name.upper()} to a valid value (or unset it)"
    for name in WfloSettings.model_fields
}
