"""governed_task(sandbox=...): the task's own function runs in a container, under real Prefect."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

from wflo_prefect import InvalidArgumentError, governed_flow, governed_task
from wflo_prefect.ledger import Ledger
from wflo_prefect.sandbox import (
    SandboxConfig,
    SandboxSerializationError,
    SandboxTaskError,
)
from wflo_prefect.testing import audit_trail

pytestmark = pytest.mark.docker

SANDBOX = SandboxConfig(memory_limit="128m", timeout_seconds=60)
SCALE = 7


def scaled(x: int) -> int:
    """A module-level helper the sandboxed task calls (its module is pickled by value)."""
    return x * SCALE


@governed_task(sandbox=SANDBOX)
def where_am_i(x: int, *, label: str = "a") -> dict[str, Any]:
    """Report where the function ran, plus a value computed with a module helper."""
    import os
    import socket

    return {
        "uid": os.getuid(),
        "hostname": socket.gethostname(),
        "value": scaled(x),
        "label": label,
        "money": Decimal("1.10"),
        "pair": (1, "b"),
    }


@governed_task(sandbox=SANDBOX)
def explode(message: str) -> None:
    """Raise inside the sandbox."""
    raise ValueError(message)


class Opaque:
    """Not plain data."""


@governed_task(sandbox=SANDBOX)
def returns_object() -> Opaque:
    """Return something that must not be unpickled on the host."""
    return Opaque()


@governed_task(sandbox=SANDBOX)
def takes_anything(value: Any) -> str:
    """Accept an argument (which may not pickle)."""
    return repr(value)


@governed_task(sandbox=SANDBOX)
def needs_wflo() -> str:
    """Import a package the sandbox image does not have."""
    import wflo_prefect

    return wflo_prefect.__version__


@governed_task(sandbox=SANDBOX)
async def async_sum(xs: list[int]) -> int:
    """An async task function, awaited inside the sandbox."""
    return sum(xs)


def test_task_function_runs_in_the_sandbox_and_returns_to_the_flow(ledger: Ledger) -> None:
    """The flow gets the task's plain-data result, computed as uid 1000 in the container."""

    @governed_flow
    def agent_flow(x: int) -> dict[str, Any]:
        return where_am_i(x, label="b")

    state = agent_flow(6, return_state=True)
    result = state.result()
    assert result == {
        "uid": 1000,
        "hostname": "sandbox",
        "value": 42,
        "label": "b",
        "money": Decimal("1.10"),
        "pair": (1, "b"),
    }
    events = [e.event for e in audit_trail(state, ledger)]
    assert "sandbox.run" in events
    assert events.index("task_run.started") < events.index("sandbox.run")


def test_async_task_runs_in_the_sandbox(ledger: Ledger) -> None:
    """An async governed task is awaited inside the container."""

    @governed_flow
    async def f() -> int:
        return await async_sum([1, 2, 3])

    import asyncio

    assert asyncio.run(f()) == 6


def test_exception_in_the_sandbox_reaches_the_flow_with_its_traceback(ledger: Ledger) -> None:
    """A task raising in the container fails with SandboxTaskError carrying the remote traceback."""

    @governed_flow
    def f() -> None:
        explode("bad input")

    state = f(return_state=True)
    error = state.result(raise_on_failure=False)
    assert isinstance(error, SandboxTaskError)
    assert "ValueError: bad input" in str(error)
    assert 'test_sandbox_guard.py", line' in str(error)
    assert "in explode" in str(error)


def test_result_that_is_not_plain_data_is_refused(ledger: Ledger) -> None:
    """A result that would need unpickling on the host is refused with what to return instead."""

    @governed_flow
    def f() -> Any:
        return returns_object()

    error = f(return_state=True).result(raise_on_failure=False)
    assert isinstance(error, SandboxSerializationError)
    assert "Opaque" in str(error)
    assert "never unpickled on the host" in str(error)


def test_arguments_that_cannot_be_pickled_are_refused(ledger: Ledger) -> None:
    """An argument cloudpickle cannot serialise fails with a message naming its type."""

    @governed_flow
    def f() -> Any:
        return takes_anything(threading.Lock())

    error = f(return_state=True).result(raise_on_failure=False)
    assert isinstance(error, SandboxSerializationError)
    assert "cannot be pickled" in str(error)
    assert "lock" in str(error)


def test_missing_module_in_the_image_is_explained(ledger: Ledger) -> None:
    """A task that needs a package the image lacks fails saying so."""

    @governed_flow
    def f() -> Any:
        return needs_wflo()

    error = f(return_state=True).result(raise_on_failure=False)
    assert isinstance(error, SandboxTaskError)
    assert "No module named 'wflo_prefect'" in str(error)


def test_sandbox_keyword_is_validated_when_applied() -> None:
    """Wrong values, flows and generator tasks are refused at decoration time."""
    with pytest.raises(InvalidArgumentError, match="takes a SandboxConfig"):

        @governed_task(sandbox="docker")
        def a() -> None: ...

    with pytest.raises(InvalidArgumentError, match="docker-sandbox"):

        @governed_flow(sandbox=SandboxConfig())
        def b() -> None: ...

    with pytest.raises(InvalidArgumentError, match="generator"):

        @governed_task(sandbox=SandboxConfig())
        def c() -> Any:
            yield 1
