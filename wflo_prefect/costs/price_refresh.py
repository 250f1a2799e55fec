"""Opt-in refresh of genai-prices' data (``PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH``).

Off by default: nothing is fetched and calls are priced from the data bundled with
genai-prices. When on, calls are priced from a copy of genai-prices' published data
stored at ``<PREFECT_HOME>/wflo/genai-prices.json``:

- ``wflo costs prices refresh`` (or :func:`refresh_prices`) downloads it, validates it
  with genai-prices' own types and replaces the stored copy atomically; a failure leaves
  the stored copy as it was.
- Each process loads the stored copy once, and again when the file changes. It looks at
  the file at most every few seconds, since pricing is on the path of every LLM call.
- A stored copy that is missing or older than ``price_refresh_max_age_hours`` is
  refreshed in a background thread. Calls never wait for it: they are priced with the
  data at hand, and a failed refresh is logged as a warning, never raised.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from wflo_prefect.costs.settings import CostSettings, get_cost_settings
from wflo_prefect.errors import (
    ConfigurationError,
    InvalidArgumentError,
    ServiceUnavailableError,
    WfloError,
)

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import Provider

__all__ = [
    "StoredPrices",
    "forget_loaded_prices",
    "refresh_prices",
    "stored_prices_path",
    "stored_snapshot",
    "wait_for_background_refresh",
]

_DOCS = "costs.md#refreshing-prices"
_SETTING = "PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH_URL"
#: How often a process looks whether the stored copy changed or went stale.
_CHECK_EVERY_SECONDS = 5.0
#: After a failed background refresh, the next one waits this long (no retry storm).
_RETRY_AFTER_SECONDS = 300.0
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: genai-prices' data is about 1 MB; anything far larger is not it.
_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredPrices:
    """A copy of genai-prices' data that :func:`refresh_prices` stored."""

    path: Path
    url: str
    fetched_at: datetime
    providers: int


@dataclass(frozen=True, slots=True)
class _Loaded:
    """What this process knows of the stored copy, as of ``checked_at`` (monotonic)."""

    path: Path
    stamp: tuple[int, int] | None  # (mtime_ns, size) of the file loaded; None: no file
    snapshot: DataSnapshot | None  # None: no usable copy
    checked_at: float


_state: _Loaded | None = None
_check_lock = threading.Lock()
_refresh_lock = threading.Lock()
_refreshing: threading.Thread | None = None
_failed_at: float | None = None


def _log_warning(event: str, **fields: object) -> None:
    from wflo_prefect.observability.logging import get_logger

    get_logger("costs").warning(event, **fields)


def stored_prices_path() -> Path:
    """Where the refreshed copy of genai-prices' data is stored (under the Prefect home)."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home).expanduser() / "wflo" / "genai-prices.json"


def stored_snapshot(settings: CostSettings | None = None) -> DataSnapshot | None:
    """The stored copy of genai-prices' data to price calls with, or None for the bundled one.

    None when ``price_refresh`` is off, or no usable copy is stored yet (then a
    background refresh is started). Cheap: it looks at the file at most every few seconds.
    """
    settings = settings or get_cost_settings()
    if not settings.price_refresh:
        return None
    state = _state
    if state is not None and time.monotonic() - state.checked_at < _CHECK_EVERY_SECONDS:
        return state.snapshot
    # The first load in a process waits for the thread doing it, so no call is priced with
    # the bundled data while a copy is stored; later looks never queue calls behind them.
    if not _check_lock.acquire(blocking=state is None):
        return state.snapshot if state is not None else None
    try:
        if state is None and _state is not None:
            return _state.snapshot  # another thread loaded it while this one waited
        return _check(settings, _state).snapshot
    finally:
        _check_lock.release()


def _check(settings: CostSettings, state: _Loaded | None) -> _Loaded:
    global _state
    path = stored_prices_path()
    snapshot: DataSnapshot | None = None
    stamp: tuple[int, int] | None = None
    modified: float | None = None
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            stamp = (info.st_mtime_ns, info.st_size)
            modified = info.st_mtime
            if state is not None and state.path == path and state.stamp == stamp:
                snapshot = state.snapshot
            else:
                snapshot = _snapshot(_validate(file.read(), str(path)), modified)
    except FileNotFoundError:
        pass
    except (OSError, WfloError) as exc:
        _log_warning(
            "costs.stored_prices_unusable",
            path=str(path),
            error=str(exc),
            hint="priced with genai-prices' bundled data; `wflo costs prices refresh` replaces it",
        )
    checked = _Loaded(path, stamp, snapshot, time.monotonic())
    _state = checked
    max_age = settings.price_refresh_max_age_hours * 3600
    if snapshot is None or modified is None or time.time() - modified > max_age:
        _start_background_refresh(path)
    return checked


def _start_background_refresh(path: Path) -> None:
    global _refreshing
    with _refresh_lock:
        if _refreshing is not None and _refreshing.is_alive():
            return
        if _failed_at is not None and time.monotonic() - _failed_at < _RETRY_AFTER_SECONDS:
            return
        _refreshing = threading.Thread(
            target=_refresh_in_background,
            args=(path,),
            name="wflo-genai-prices-refresh",
            daemon=True,
        )
        _refreshing.start()


def _refresh_in_background(path: Path) -> None:
    global _failed_at
    try:
        refresh_prices(path=path)
    except Exception as exc:  # a refresh must never fail the calls that started it
        with _refresh_lock:
            _failed_at = time.monotonic()
        _log_warning(
            "costs.price_refresh_failed",
            error=str(exc),
            hint=(
                "calls keep being priced with the data at hand (the older stored copy or "
                f"genai-prices' bundled data); retried in {_RETRY_AFTER_SECONDS:.0f}s"
            ),
        )
    else:
        with _refresh_lock:
            _failed_at = None


def wait_for_background_refresh(timeout: float | None = None) -> bool:
    """Wait for a background refresh in flight; False if it is still running after ``timeout``.

    For short scripts that would otherwise exit before it finishes (the thread is a
    daemon and dies with the process), and for tests.
    """
    thread = _refreshing
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


def forget_loaded_prices() -> None:
    """Forget the copy this process loaded and any failed refresh; the next call looks again."""
    global _state, _failed_at
    with _refresh_lock:
        _state = None
        _failed_at = None


def refresh_prices(url: str | None = None, *, path: Path | None = None) -> StoredPrices:
    """Download genai-prices' data, validate it and store it for pricing.

    ``url`` defaults to ``PREFECT_INTEGRATIONS_WFLO_COSTS_PRICE_REFRESH_URL``, then to
    genai-prices' own source; ``path`` to :func:`stored_prices_path`. The copy is
    replaced atomically, and only once the new data validated. It prices calls when
    ``price_refresh`` is on.

    Raises:
        InvalidArgumentError: ``url`` is not an http(s) URL.
        ConfigurationError: the URL setting is not an http(s) URL, the data is not
            genai-prices data, or the copy cannot be written.
        ServiceUnavailableError: the download failed (connection, timeout, HTTP error).
    """
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    global _state
    setting = get_cost_settings().price_refresh_url
    source = url or setting or DEFAULT_UPDATE_URL
    _check_url(source, given=bool(url))
    target = path or stored_prices_path()
    content = _download(source)
    providers = _validate(content, source)
    stamp, modified = _store(content, target)
    _state = _Loaded(target, stamp, _snapshot(providers, modified), time.monotonic())
    return StoredPrices(target, source, datetime.fromtimestamp(modified, UTC), len(providers))


def _check_url(url: str, *, given: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return
    if given:
        raise InvalidArgumentError(
            "--url must be an http(s) URL of genai-prices' data",
            value=url,
            hint="e.g. a mirror of its data.json; leave it out to use the configured source",
            docs=_DOCS,
        )
    raise ConfigurationError(
        f"{_SETTING} must be an http(s) URL of genai-prices' data",
        value=url,
        hint="Fix it, or unset it to use genai-prices' own source",
        docs=_DOCS,
    )


def _download(url: str) -> bytes:
    hint = "Check the URL and the network; the stored copy was not changed"
    try:
        with httpx.stream("GET", url, timeout=_TIMEOUT, follow_redirects=True) as response:
            if response.is_error:
                raise ServiceUnavailableError(
                    "Could not download genai-prices' data: the server answered "
                    f"HTTP {response.status_code} {response.reason_phrase}",
                    value=url,
                    hint=hint,
                    docs=_DOCS,
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > _MAX_BYTES:
                    raise ConfigurationError(
                        f"The data at this URL is over {_MAX_BYTES // 2**20} MiB, "
                        "far larger than genai-prices' data",
                        value=url,
                        hint=f"Point --url or {_SETTING} at genai-prices' data.json",
                        docs=_DOCS,
                    )
                chunks.append(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ServiceUnavailableError(
            f"Could not download genai-prices' data: {type(exc).__name__}: {exc}",
            value=url,
            hint=hint,
            docs=_DOCS,
        ) from exc
    return b"".join(chunks)


def _validate(content: bytes, source: str) -> list[Provider]:
    """The providers in ``content``, validated by genai-prices' own types."""
    # The function genai-prices' UpdatePrices.fetch() validates downloaded data with.
    from genai_prices.types import _providers_from_raw

    hint = (
        f"Point --url or {_SETTING} at genai-prices' data.json (a JSON list of providers); "
        "the stored copy was not changed"
    )
    try:
        raw = json.loads(content)
    except ValueError as exc:
        raise ConfigurationError(
            f"The data is not JSON ({exc})", value=source, hint=hint, docs=_DOCS
        ) from None
    if not isinstance(raw, list) or not raw:
        raise ConfigurationError(
            f"The data is not genai-prices data: expected a non-empty JSON list of providers, "
            f"got {type(raw).__name__} {_preview(raw)}",
            value=source,
            hint=hint,
            docs=_DOCS,
        )
    try:
        providers: list[Provider] = _providers_from_raw(raw)
    except Exception as exc:  # any failure to build genai-prices' types means invalid data
        raise ConfigurationError(
            f"The data is not valid genai-prices data: {_summary(exc)}",
            value=source,
            hint=hint,
            docs=_DOCS,
        ) from None
    return providers


def _preview(raw: object) -> str:
    text = json.dumps(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _summary(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{exc.error_count()} error(s), the first at {where}: {first['msg']}"
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def _store(content: bytes, target: Path) -> tuple[tuple[int, int], float]:
    """Write ``content`` to ``target`` atomically; its (mtime_ns, size) and mtime."""
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".genai-prices-", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
        tmp = None
        info = target.stat()
    except OSError as exc:
        raise ConfigurationError(
            f"Could not store genai-prices' data: {exc}",
            value=str(target),
            hint="Check that the Prefect home (PREFECT_HOME) is writable",
            docs=_DOCS,
        ) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return (info.st_mtime_ns, info.st_size), info.st_mtime


def _snapshot(providers: list[Provider], modified: float) -> DataSnapshot:
    from genai_prices.data_snapshot import DataSnapshot

    # genai-prices stamps snapshots in naive local time (DataSnapshot.timestamp's default).
    fetched = datetime.fromtimestamp(modified)
    return DataSnapshot(providers, from_auto_update=True, timestamp=fetched)
