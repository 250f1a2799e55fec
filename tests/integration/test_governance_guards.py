"""Capabilities plug into the governed decorators as guards, validated when applied."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Literal

import pytest

from wflo_prefect import InvalidArgumentError, governance, governed_flow, governed_task
from wflo_prefect.governance import ExecutingGuard, GovernedCall, Guard, register_guard
from wflo_prefect.ledger import Ledger


@pytest.fixture
def registry() -> Iterator[dict[str, Guard]]:
    """Restore the guard registry after a test changes it."""
    saved = dict(governance._GUARDS)
    yield governance._GUARDS
    governance._GUARDS.clear()
    governance._GUARDS.update(saved)


class RecordingGuard(Guard):
    """Records what it sees; refuses values that are not strings."""

    keyword: ClassVar[str] = "snapshot"
    order: ClassVar[int] = 10

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def validate(self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]) -> Any:
        if not isinstance(value, str):
            raise InvalidArgumentError("snapshot label must be a string", value=value)
        return value.upper()

    def around(self, call: GovernedCall, value: Any) -> AbstractContextManager[None]:
        @contextmanager
        def cm() -> Iterator[None]:
            self.log.append(f"enter {value} {call.kind} {call.bound_arguments()}")
            yield
            self.log.append("exit")

        return cm()


class Elsewhere(ExecutingGuard):
    """Runs the function itself, doubling its result, to show execution is replaced."""

    keyword: ClassVar[str] = "sandbox"

    def validate(self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]) -> Any:
        return value

    def around(self, call: GovernedCall, value: Any) -> AbstractContextManager[None]:
        @contextmanager
        def cm() -> Iterator[None]:
            yield

        return cm()

    def execute(self, call: GovernedCall, value: Any) -> Any:
        return 2 * call.fn(*call.args, **call.kwargs)


def test_keyword_without_capability_is_refused_when_applied(registry: dict[str, Guard]) -> None:
    """A governance keyword with no guard in this version fails at decoration time."""
    registry.pop("compensate", None)
    with pytest.raises(InvalidArgumentError, match="compensate="):

        @governed_task(compensate=lambda: None)
        def t() -> None: ...


def test_guard_validates_and_wraps_the_run(registry: dict[str, Guard], ledger: Ledger) -> None:
    """The guard's validate runs when applied; its context wraps each run with bound args."""
    log: list[str] = []
    register_guard(RecordingGuard(log))
    with pytest.raises(InvalidArgumentError, match="42"):

        @governed_task(snapshot=42)
        def bad() -> None: ...

    @governed_task(snapshot="before")
    def step(x: int, y: int = 5) -> int:
        log.append("body")
        return x + y

    @governed_flow
    def f() -> int:
        return step(1)

    assert f() == 6
    assert log == ["enter BEFORE task {'x': 1, 'y': 5}", "body", "exit"]


def test_executing_guard_replaces_the_call(registry: dict[str, Guard], ledger: Ledger) -> None:
    """An executing guard runs the function in place of the direct call."""
    register_guard(Elsewhere())

    @governed_task(sandbox="somewhere")
    def three() -> int:
        return 3

    @governed_flow
    def f() -> int:
        return three()

    assert f() == 6


def test_guard_keyword_must_be_known() -> None:
    """A guard for a keyword the decorators do not take is refused."""

    class Odd(RecordingGuard):
        keyword: ClassVar[str] = "odd"

    with pytest.raises(InvalidArgumentError, match="odd"):
        register_guard(Odd([]))
