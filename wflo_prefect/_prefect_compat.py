"""Every private Prefect (and prefect-docker) name wflo relies on, in one module.

Prefect does not promise to keep these. wflo's other modules use the wrappers
here, never the private names themselves (``tests/unit/test_prefect_compat.py``
checks both: that each name still exists with the shape wflo expects, and that
no other module reaches for one). An upgrade that removes or changes one fails
that test, and a call here, with :class:`PrefectInternalsChanged` naming the
internal, what wflo uses it for and the Prefect version, instead of an
``AttributeError`` deep in a gate.

Where a public API covers the need it is used instead: a block is loaded from
synchronous code with ``Block.aload`` run by
``prefect.utilities.asyncutils.run_coro_as_sync`` (not ``Block.load(_sync=True)``),
and ``APILogHandler`` is a public class wflo subclasses only through its public
``logging.Handler`` interface.

What remains is listed, with what each is for, in :data:`INTERNALS` (and in
``docs/architecture.md``, "Prefect internals in one place").
"""

from __future__ import annotations

import abc
import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from prefect.logging.handlers import APILogHandler

from wflo_prefect.errors import WfloRuntimeError

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import State
    from prefect.input import RunInput

__all__ = [
    "INTERNALS",
    "APILogHandler",
    "Internal",
    "PrefectInternalsChanged",
    "block_document_name",
    "docker_worker_base",
    "limit_event_backfill",
    "load_block",
    "load_block_from_ref",
    "paused_state_with_input",
    "run_input_description",
    "run_input_schema",
    "set_flow_entrypoint",
    "suspend_flow_run_sync",
]

T = TypeVar("T")


class PrefectInternalsChanged(WfloRuntimeError):
    """A Prefect internal wflo relies on is gone or changed (a Prefect upgrade)."""


@dataclass(frozen=True)
class Internal:
    """One private name wflo uses: what for, and a check that it still fits."""

    name: str
    used_for: str
    check: Callable[[], None]


#: Every internal wflo uses, by name (tests run each check).
INTERNALS: dict[str, Internal] = {}


def _versions() -> str:
    import prefect

    text = f"prefect {prefect.__version__}"
    try:
        import prefect_docker

        text += f", prefect-docker {getattr(prefect_docker, '__version__', '?')}"
    except ImportError:  # pragma: no cover - a hard dependency
        pass
    return text


def changed(name: str, detail: str) -> PrefectInternalsChanged:
    """The error for an internal that no longer fits."""
    used_for = INTERNALS[name].used_for if name in INTERNALS else "wflo"
    return PrefectInternalsChanged(
        f"Prefect internal {name} changed: {detail}",
        value=_versions(),
        hint=f"wflo uses it for {used_for}; install the Prefect version wflo pins "
        "(pyproject.toml) or update wflo_prefect/_prefect_compat.py",
    )


def _internal(name: str, used_for: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(check: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(check)
        def run() -> None:
            try:
                check()
            except PrefectInternalsChanged:
                raise
            except (AttributeError, ImportError, TypeError, KeyError, AssertionError) as exc:
                raise changed(name, f"{type(exc).__name__}: {exc}") from exc

        INTERNALS[name] = Internal(name=name, used_for=used_for, check=run)
        return run

    return register


def _parameters(fn: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(fn).parameters)


# --- run-input forms ---------------------------------------------------------------

_SCHEMA = "prefect._internal.pydantic.v2_schema.create_v2_schema"
_DESCRIPTION = "prefect.input.RunInput._description"
_KEYSET = "prefect StateDetails.run_input_keyset (set by hand)"


def run_input_schema(form: type[RunInput]) -> dict[str, Any]:
    """The JSON schema Prefect stores for a run-input form (as ``RunInput.save`` does)."""
    try:
        from prefect._internal.pydantic.v2_schema import create_v2_schema
    except ImportError as exc:
        raise changed(_SCHEMA, str(exc)) from exc
    return create_v2_schema(form.__name__, model_base=form)


@_internal(_SCHEMA, "the schema of the approval form the UI's Resume dialog is built from")
def _check_schema() -> None:
    from prefect._internal.pydantic.v2_schema import create_v2_schema
    from prefect.input import RunInput

    assert {"name_", "model_base"} <= _parameters(create_v2_schema), "its parameters changed"

    class Probe(RunInput):
        answer: str

    schema = run_input_schema(Probe)
    assert schema.get("properties", {}).get("answer", {}).get("type") == "string", schema


def run_input_description(form: type[RunInput]) -> str | None:
    """The markdown description ``with_initial_data(description=...)`` gave a form."""
    try:
        description = form._description
    except AttributeError as exc:
        raise changed(_DESCRIPTION, str(exc)) from exc
    return description if isinstance(description, str) else None


@_internal(_DESCRIPTION, "the request's markdown shown above the approval form")
def _check_description() -> None:
    from prefect.input import RunInput

    class Probe(RunInput):
        answer: str

    described = Probe.with_initial_data(description="## Hello")
    assert run_input_description(described) == "## Hello", "the description is not kept"
    assert run_input_description(Probe) is None


def paused_state_with_input(
    pause_key: str, timeout_seconds: int | None
) -> tuple[State[Any], Mapping[str, str]]:
    """A ``Paused`` state to propose, with its run-input keyset set (as ``pause_flow_run``)."""
    from prefect.input import keyset_from_paused_state
    from prefect.states import Paused

    state: State[Any] = Paused(
        timeout_seconds=timeout_seconds, reschedule=False, pause_key=pause_key
    )
    keyset = keyset_from_paused_state(state)
    try:
        state.state_details.run_input_keyset = {str(k): v for k, v in keyset.items()}
    except (AttributeError, ValueError) as exc:
        raise changed(_KEYSET, str(exc)) from exc
    return state, {str(k): str(v) for k, v in keyset.items()}


@_internal(_KEYSET, "pausing a run with the approval form without blocking in pause_flow_run")
def _check_keyset() -> None:
    state, keyset = paused_state_with_input("wflo-probe-1", 60)
    assert set(keyset) == {"response", "schema", "description"}, keyset
    assert keyset["response"].endswith("-response"), keyset
    assert state.state_details.run_input_keyset == keyset
    assert state.state_details.pause_key == "wflo-probe-1"


# --- sync dispatch -----------------------------------------------------------------

_SUSPEND = "prefect.flow_runs.suspend_flow_run(_sync=True)"


def load_block(block_type: type[T], name: str) -> T:
    """Load a saved block from synchronous code, also inside an async flow's thread.

    Public API: ``Block.aload`` run by ``run_coro_as_sync`` (``Block.load`` would
    hand back a coroutine where Prefect thinks it is in an async context).
    """
    from prefect.utilities.asyncutils import run_coro_as_sync

    aload: Callable[[str], Coroutine[Any, Any, T]] = block_type.aload  # type: ignore[attr-defined]
    return run_coro_as_sync(aload(name))


def load_block_from_ref(ref: str) -> Any:
    """Load a saved block by its document id from synchronous code (see :func:`load_block`).

    Public API: ``Block.aload_from_ref`` run by ``run_coro_as_sync``.
    """
    from prefect.blocks.core import Block
    from prefect.utilities.asyncutils import run_coro_as_sync

    return run_coro_as_sync(Block.aload_from_ref(ref))


def suspend_flow_run_sync(**kwargs: Any) -> Any:
    """``suspend_flow_run(**kwargs)`` run synchronously, whatever the calling context.

    ``suspend_flow_run`` dispatches on Prefect's idea of the context; a gate in a
    worker thread of an async flow needs the sync implementation, which Prefect's
    ``async_dispatch`` runs when given ``_sync=True``.
    """
    from prefect.flow_runs import suspend_flow_run

    call: Any = suspend_flow_run
    try:
        return call(**kwargs, _sync=True)
    except TypeError as exc:
        if "_sync" in str(exc):
            raise changed(_SUSPEND, str(exc)) from exc
        raise


@_internal(_SUSPEND, "suspending a deployed run at a gate (suspend=True)")
def _check_suspend() -> None:
    from prefect._internal.compatibility import async_dispatch
    from prefect.flow_runs import suspend_flow_run

    assert getattr(suspend_flow_run, "aio", None) is not None, "it no longer dispatches"
    source = inspect.getsource(async_dispatch)
    assert 'kwargs.pop("_sync"' in source, "async_dispatch no longer takes _sync"
    assert {"wait_for_input", "timeout", "key"} <= _parameters(suspend_flow_run), (
        f"its parameters changed: {sorted(_parameters(suspend_flow_run))}"
    )


# --- flows and blocks --------------------------------------------------------------

_ENTRYPOINT = "prefect.Flow._entrypoint"
_BLOCK_NAME = "prefect.blocks.core.Block._block_document_name"


def set_flow_entrypoint(flow: Flow[Any, Any], entrypoint: str) -> None:
    """Tell Prefect where a flow lives (``path.py:qualname``), for a flow in ``__main__``."""
    if not hasattr(flow, "_entrypoint"):
        raise changed(_ENTRYPOINT, "Flow has no _entrypoint attribute")
    flow._entrypoint = entrypoint


@_internal(_ENTRYPOINT, "deploying a governed flow defined in a script run as __main__")
def _check_entrypoint() -> None:
    from prefect import flow

    @flow
    def probe() -> None:
        pass

    assert isinstance(probe._entrypoint, str), "Flow._entrypoint is not a string"
    set_flow_entrypoint(probe, "somewhere.py:probe")
    assert probe._entrypoint == "somewhere.py:probe"


def block_document_name(block: object) -> str | None:
    """The name a block was saved or loaded as (``None`` for an unsaved one)."""
    name = getattr(block, "_block_document_name", None)
    return name if isinstance(name, str) else None


@_internal(_BLOCK_NAME, "naming saved channel and budget blocks so others can load them")
def _check_block_name() -> None:
    from prefect.blocks.core import Block

    assert "_block_document_name" in Block.model_fields or hasattr(Block, "_block_document_name"), (
        "Block no longer has _block_document_name"
    )
    source = inspect.getsource(Block._save)
    assert "_block_document_name" in source, "Block._save no longer records the saved name"


# --- events --------------------------------------------------------------------------

_BACKFILL = "prefect.events.clients.PrefectEventSubscriber._backfill_since"


def limit_event_backfill(subscriber: object, since: datetime) -> None:
    """Replay only events after ``since`` when ``subscriber`` connects (Prefect: a minute)."""
    if "_backfill_since" not in getattr(subscriber, "__dict__", {}) and not hasattr(
        subscriber, "_backfill_since"
    ):
        raise changed(_BACKFILL, f"{type(subscriber).__name__} has no _backfill_since")
    subscriber._backfill_since = since  # type: ignore[attr-defined]


@_internal(_BACKFILL, "a gate waking only for state changes after it paused the run")
def _check_backfill() -> None:
    from prefect.events.clients import PrefectEventSubscriber

    source = inspect.getsource(PrefectEventSubscriber)
    assert "self._backfill_since" in source, "the subscriber no longer has _backfill_since"
    assert "since=self._backfill_since" in source, "it no longer replays from _backfill_since"


# --- logging ---------------------------------------------------------------------------

_LOG_HANDLER = "prefect.logging.handlers.APILogHandler"


@_internal(_LOG_HANDLER, "sending wflo's log lines to the run's Prefect logs")
def _check_log_handler() -> None:
    import logging

    assert issubclass(APILogHandler, logging.Handler), "APILogHandler is not a logging.Handler"
    assert not [
        p
        for p in inspect.signature(APILogHandler.__init__).parameters.values()
        if p.name != "self"
        and p.default is inspect.Parameter.empty
        and p.kind.name != "VAR_KEYWORD"
        and p.kind.name != "VAR_POSITIONAL"
    ], "APILogHandler() now needs arguments"
    assert callable(getattr(APILogHandler, "emit", None))


# --- prefect-docker ------------------------------------------------------------------

_DOCKER_SETTINGS = "prefect_docker.worker.DockerWorker._build_container_settings"
_DOCKER_CLIENT = "prefect_docker.worker.DockerWorker._get_client"
_DOCKER_PULL = "prefect_docker.worker.DockerWorker._pull_image"


@functools.cache
def docker_worker_base() -> type[Any]:
    """prefect-docker's ``DockerWorker`` with its private hooks behind public names.

    Subclasses override :meth:`container_settings` (called where prefect-docker
    builds a container's settings) and call :meth:`docker_client` and
    :meth:`pull_image`.
    """
    from prefect_docker.worker import DockerWorker

    for name, attr in (
        (_DOCKER_SETTINGS, "_build_container_settings"),
        (_DOCKER_CLIENT, "_get_client"),
        (_DOCKER_PULL, "_pull_image"),
    ):
        if not callable(getattr(DockerWorker, attr, None)):
            raise changed(name, f"DockerWorker has no {attr}")

    # abc.ABC among the direct bases: Prefect registers no worker type for it (an
    # abstract base), so `--type docker` stays prefect-docker's own worker.
    class HookedDockerWorker(DockerWorker, abc.ABC):  # type: ignore[misc]
        """DockerWorker whose private hooks wflo reaches through public names."""

        def container_settings(self, docker_client: Any, configuration: Any) -> dict[str, Any]:
            """The keyword arguments prefect-docker creates the container with."""
            settings: dict[str, Any] = super()._build_container_settings(
                docker_client, configuration
            )
            return settings

        def _build_container_settings(
            self, docker_client: Any, configuration: Any
        ) -> dict[str, Any]:
            return self.container_settings(docker_client, configuration)

        def docker_client(self) -> Any:
            """A Docker client configured as the worker's own."""
            return self._get_client()

        def pull_image(self, docker_client: Any, configuration: Any) -> None:
            """Pull the job's image as prefect-docker would before creating the container."""
            self._pull_image(docker_client, configuration)

    return HookedDockerWorker


def _check_docker(attr: str, parameters: set[str]) -> None:
    from prefect_docker.worker import DockerWorker

    method = getattr(DockerWorker, attr)
    assert callable(method), f"DockerWorker.{attr} is not callable"
    assert _parameters(method) == {"self", *parameters}, (
        f"DockerWorker.{attr} takes {sorted(_parameters(method))}, wflo passes {sorted(parameters)}"
    )


@_internal(_DOCKER_SETTINGS, "hardening the containers the docker-sandbox worker creates")
def _check_docker_settings() -> None:
    _check_docker("_build_container_settings", {"docker_client", "configuration"})
    from prefect_docker.worker import DockerWorker

    source = inspect.getsource(DockerWorker)
    assert "self._build_container_settings(" in source, "the hook is no longer called"


@_internal(_DOCKER_CLIENT, "the docker-sandbox worker's own Docker client")
def _check_docker_client() -> None:
    _check_docker("_get_client", set())


@_internal(_DOCKER_PULL, "pulling an image before reading its declared volumes")
def _check_docker_pull() -> None:
    _check_docker("_pull_image", {"docker_client", "configuration"})
